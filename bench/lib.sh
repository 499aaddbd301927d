# Shared by the benchmark drivers (bench/server.sh, bench/vs-wrk.sh, bench/soak.sh); sourced,
# not run. Set BENCH_NAME (the prefix of log lines) before sourcing. It provides:
#   log, die, seconds_of, usage          messages and argument helpers
#   bench_priority LEVEL                 prio=(setsid -w nice -n LEVEL) and boost PID
#   bench_need_tools, bench_find_oha     wrk and /usr/bin/time (apt-get), oha (cargo install)
#   bench_workdir PREFIX KEEP            $work, removed at exit unless KEEP=1 or a failure;
#                                        every process in bench_pids is stopped at exit
#   bench_binary [BIN]                   $bin: a private copy of BIN or of a fresh release build
#   bench_commit [BIN]                   $commit: what the binary is built from
#   bench_machine_meta                   $machine_meta: date, commit, machine... for reports
#   bench_serve                          the reference server: $server_pid, $base, and the
#                                        target profile $profile (bench/profile.yaml)
#   proc_ticks, server_ticks, machine_ticks, now_s, rss_kib, clk_tck   CPU and memory
#   bench_scenarios DIR NAMES KEY=VALUE...   bench/scenarios/ copied with @KEY@ filled in
#   bench_token SCOPE                    $token: an /mfa/ access token, from `mfa-conform run`
#   bench_grant_bodies USERS VUS FILE    mfa-otp grant bodies, from `mfa-conform load`
# Knob read here: PYTHON (default python3).

# shellcheck shell=bash
# Variables set here are read by the drivers that source this file:
# shellcheck disable=SC2034
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_root=$(cd "$bench_dir/.." && pwd)
python=${PYTHON:-python3}
BENCH_NAME=${BENCH_NAME:-bench}

log() { echo "$BENCH_NAME: $*" >&2; }
die() { echo "$BENCH_NAME: FAILED: $*" >&2; exit 1; }
# usage SCRIPT: the comment block at the top of SCRIPT, up to `set -euo pipefail`.
usage() { sed -n '2,/^set -euo/p' "$1" | sed '$d; s/^# \{0,1\}//'; }

seconds_of() { # 10s, 2m, 1h, 500ms -> seconds (integer, rounded up)
    local d=$1
    case $d in
        *ms) echo $(((${d%ms} + 999) / 1000)) ;;
        *s) echo "${d%s}" ;;
        *m) echo $((${d%m} * 60)) ;;
        *h) echo $((${d%h} * 3600)) ;;
        *) echo "$d" ;;
    esac
}

# --- priority ------------------------------------------------------------------------
# bench_priority LEVEL: the server and the generators run as "${prio[@]}" CMD, each in its
# own session (setsid), and `boost PID` gives that session's autogroup (Linux CFS groups
# tasks by session) the nice value LEVEL, so neighbours' jobs in other sessions, which a
# plain `nice` does not reach, yield to the benchmark. LEVEL 0: as is.
prio=()
nice_level=0
bench_priority() {
    nice_level=$1
    prio=()
    if [[ $nice_level != 0 ]]; then
        prio=(nice -n "$nice_level")
        command -v setsid >/dev/null 2>&1 && prio=(setsid -w nice -n "$nice_level")
    fi
}
boost() {
    [[ $nice_level != 0 && -w /proc/$1/autogroup ]] || return 0
    echo "$nice_level" >"/proc/$1/autogroup" 2>/dev/null || true
}

# --- tools ---------------------------------------------------------------------------
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
    if ((!apt_updated)); then as_root apt-get update -qq >/dev/null; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# bench_need_tools: wrk, /usr/bin/time (apt-get if missing), curl and $python.
bench_need_tools() {
    if ! command -v wrk >/dev/null 2>&1; then log "installing wrk (apt-get)"; apt_install wrk; fi
    if [[ ! -x /usr/bin/time ]]; then log "installing time (apt-get)"; apt_install time; fi
    if ! command -v curl >/dev/null 2>&1; then log "installing curl (apt-get)"; apt_install curl; fi
    command -v "$python" >/dev/null 2>&1 || die "$python not found (set PYTHON)"
}
# bench_find_oha MODE: sets oha_bin (empty if none) and oha_note. MODE 0: no oha; auto: oha
# if installed; 1: also `cargo install oha --locked` if missing (minutes of compiling on 2
# cores; if that fails, oha_note says so and the benchmark goes on without oha).
bench_find_oha() {
    oha_bin='' oha_note=''
    case $1 in
        0) oha_note="oha disabled" ;;
        1 | auto)
            if command -v oha >/dev/null 2>&1; then
                oha_bin=$(command -v oha)
            elif [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/oha ]]; then
                oha_bin=${CARGO_HOME:-$HOME/.cargo}/bin/oha
            elif [[ $1 == 1 ]]; then
                log "installing oha (cargo install oha --locked; takes several minutes on 2 cores)"
                if cargo install oha --locked --quiet; then
                    oha_bin=${CARGO_HOME:-$HOME/.cargo}/bin/oha
                else
                    oha_note="oha could not be installed (cargo install oha --locked failed); wrk only"
                    log "$oha_note"
                fi
            fi
            ;;
        *) die "the oha knob must be 0, 1 or auto, not $1" ;;
    esac
}

# --- work directory and the processes to stop ------------------------------------------
bench_pids=()
bench_keep=
work=
bench_cleanup() {
    local rc=$? i pid
    for ((i = ${#bench_pids[@]} - 1; i >= 0; i--)); do stop_pid "${bench_pids[i]}"; done
    wait 2>/dev/null || true
    if [[ -n $work ]]; then
        if [[ $bench_keep == 1 || $rc -ne 0 ]]; then
            log "work directory kept: $work"
        else
            rm -rf "$work"
        fi
    fi
}
# bench_forget PID: PID has been waited for; it is no longer ours to stop.
bench_forget() {
    local p keep=()
    for p in "${bench_pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    bench_pids=(${keep[@]+"${keep[@]}"})
}
# stop_pid PID: TERM, then KILL after 5 s (our own children only).
stop_pid() {
    [[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 0
    kill "$1" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
}
# bench_workdir PREFIX KEEP: a new $work under $TMPDIR; at exit the processes in bench_pids
# are stopped (last started first) and $work is removed, unless KEEP is 1 or the script
# failed (it is then kept for the outputs).
bench_workdir() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    bench_keep=$2
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# --- the binary ------------------------------------------------------------------------
# bench_binary [BIN]: $bin, a private copy (in $work) of BIN, or of target/profiling/mfa-conform
# after `cargo build --profile profiling` (the release build with line tables, so callgrind
# names files and lines); a rebuild during the benchmark cannot swap it. $bin_note says which.
bench_binary() {
    local src
    if [[ -n ${1:-} ]]; then
        src=$1
        bin_note="$1 (not rebuilt)"
    else
        log "cargo build --profile profiling"
        (cd "$bench_root" && cargo build --profile profiling --quiet) ||
            die "cargo build --profile profiling failed (see the script's knobs to use an existing binary)"
        src=$bench_root/target/profiling/mfa-conform
        bin_note="target/profiling/mfa-conform (built by this run)"
    fi
    [[ -x $src ]] || die "$src not found"
    bin=$work/mfa-conform
    cp "$src" "$bin"
}

# bench_commit [BIN]: $commit, the checked-out commit, taken before the build (others may
# commit meanwhile), with a note when the binary is not built from it as committed.
bench_commit() {
    commit=$(git -C "$bench_root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n ${1:-} ]]; then
        commit="$commit (checked out when the run started; $1 may be older)"
    elif [[ -n $(git -C "$bench_root" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
        commit="$commit (+ uncommitted changes in src/Cargo, built at $(date -u +%H:%M) UTC)"
    fi
}

# bench_machine_meta: $machine_meta, the key=value pairs every report starts with: date,
# commit (bench_commit first), machine, CPU, load before the run, wrk and oha.
bench_machine_meta() {
    local wrk_version oha_version=
    wrk_version=$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2 || true) # `wrk -v` exits 1
    [[ -n $oha_bin ]] && oha_version=$("$oha_bin" --version 2>/dev/null | head -1 || true)
    machine_meta=(
        "date=$(date '+%Y-%m-%d %H:%M:%S%z')"
        "commit=$commit"
        "machine=$(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB"
        "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
        "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
        "wrk=$wrk_version"
        "oha=$oha_version$oha_note"
    )
}

# --- the reference server -----------------------------------------------------------------
server_pid=
base=
show_server_log() {
    echo "--- server stderr ($work/server.stderr, last 30 lines) ---" >&2
    tail -n 30 "$work/server.stderr" >&2 || true
}
server_alive() { kill -0 "$server_pid" 2>/dev/null || { show_server_log; die "the server died"; }; }

# real_pid PID [NAME]: the process named NAME (default mfa-conform) that PID becomes or
# starts (/usr/bin/time forks; setsid may fork; nice execs). Only that process is in the
# new session: `boost` before it exists would raise the caller's own autogroup instead.
real_pid() {
    local p=$1 name=${2:-mfa-conform} c
    for _ in $(seq 1 300); do
        kill -0 "$p" 2>/dev/null || break
        if [[ $(cat "/proc/$p/comm" 2>/dev/null) == "${name:0:15}" ]]; then
            echo "$p"
            return 0
        fi
        c=$(pgrep -P "$p" | head -n1 || true)
        [[ -n $c ]] && p=$c
        sleep 0.01
    done
    return 1
}

# wait_listening PID STDOUT: $listening_on, the URL of the `listening on URL` line that
# PID prints first on STDOUT (within 20 s).
wait_listening() {
    local pid=$1 out=$2 line deadline=$((SECONDS + 20))
    listening_on=
    while ((SECONDS < deadline)); do
        line=$(head -n1 "$out" 2>/dev/null || true)
        if [[ $line =~ ^listening\ on\ (http://127\.0\.0\.1:[0-9]+) ]]; then
            listening_on=${BASH_REMATCH[1]}
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# bench_serve: starts `mfa-conform serve` on a free loopback port, as "${prio[@]}", with a
# configuration whose one client has a secret drawn for this run ($work/serve.yaml), and
# exports what bench/profile.yaml reads (BENCH_BASE, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET):
# the profile is then the only place the scenarios and the driver take the client from.
bench_serve() {
    local wrapper secret
    export BENCH_CLIENT_ID=mfa-conform-client
    secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    export BENCH_CLIENT_SECRET=$secret
    cat >"$work/serve.yaml" <<EOF
clients:
  - {client_id: "$BENCH_CLIENT_ID", client_secret: "$BENCH_CLIENT_SECRET"}
EOF
    "${prio[@]}" "$bin" serve --addr 127.0.0.1:0 --config "$work/serve.yaml" \
        >"$work/server.stdout" 2>"$work/server.stderr" </dev/null &
    wrapper=$!
    bench_pids+=("$wrapper")
    server_pid=$(real_pid "$wrapper") || { show_server_log; die "the server did not start"; }
    [[ $server_pid != "$wrapper" ]] && bench_pids+=("$server_pid")
    boost "$server_pid"
    wait_listening "$server_pid" "$work/server.stdout" ||
        { show_server_log; die "the server did not print 'listening on http://127.0.0.1:PORT' within 20 s"; }
    base=$listening_on
    export BENCH_BASE=$base
    profile=$bench_dir/profile.yaml
    log "server at $base (pid $server_pid)"
}

# --- CPU and memory ------------------------------------------------------------------------
clk_tck=$(getconf CLK_TCK)
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
server_ticks() { proc_ticks "$server_pid"; }
# busy (user nice system irq softirq steal), irq + softirq, steal
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $7 + $8, $9; exit}' /proc/stat; }
now_s() { date +%s.%N; }
rss_kib() { ps -o rss= -p "$1" 2>/dev/null | tr -d ' ' || true; }

# --- scenarios -----------------------------------------------------------------------------
# bench_scenarios DIR "NAME..." KEY=VALUE...: DIR gets bench/scenarios/requirements.yaml and
# the scenarios NAME.yaml, with every @KEY@ replaced by VALUE.
bench_scenarios() {
    local dir=$1 names=$2 name kv script=
    shift 2
    for kv in "$@"; do
        script+="s|@${kv%%=*}@|$(printf '%s' "${kv#*=}" | sed 's/[|&\\]/\\&/g')|g;"
    done
    mkdir -p "$dir"
    cp "$bench_dir/scenarios/requirements.yaml" "$dir/"
    for name in $names; do
        sed "$script" "$bench_dir/scenarios/$name.yaml" >"$dir/$name.yaml"
    done
}

# collector_start NAME: bench/collector.py appending to $work/NAME.lines; $collector_url,
# $collector_pid. collector_stop: stops it.
collector_pid=
collector_start() {
    : >"$work/$1.lines"
    : >"$work/$1.collector.out"
    "$python" "$bench_dir/collector.py" --out "$work/$1.lines" >"$work/$1.collector.out" 2>"$work/$1.collector.err" &
    collector_pid=$!
    bench_pids+=("$collector_pid")
    wait_listening "$collector_pid" "$work/$1.collector.out" ||
        { cat "$work/$1.collector.err" >&2; die "the collector did not start"; }
    collector_url=$listening_on
}
collector_stop() {
    stop_pid "$collector_pid"
    wait "$collector_pid" 2>/dev/null || true
    bench_forget "$collector_pid"
    collector_pid=
}

# bench_token SCOPE: $token, a fresh /mfa/ access token with SCOPE (they live 600 s). The
# scenario bench-token (bench/scenarios/bench-token.yaml), run by `mfa-conform run` against
# the server, provisions a user, logs in, enrolls OTP, passes the mfa-otp grant, checks the
# token on GET /mfa/authenticators and posts it to the collector.
bench_token() {
    local dir=$work/token report rc=0
    server_alive
    rm -rf "$dir"
    collector_start token
    bench_scenarios "$dir" bench-token "COLLECTOR=$collector_url/token" "SCOPE=$1"
    report=$work/token.report.json
    "$bin" run --profile "$profile" --scenarios "$dir" --name bench-token --quiet \
        --json "$report" >"$work/token.out" 2>&1 || rc=$?
    collector_stop
    if ((rc != 0)); then
        cat "$work/token.out" >&2
        die "access-token setup (mfa-conform run, scenario bench-token) exited $rc; report: $report"
    fi
    [[ $(wc -l <"$work/token.lines") == 1 ]] || die "access-token setup: expected 1 token, got $(wc -l <"$work/token.lines")"
    token=$(cat "$work/token.lines")
}

# bench_grant_bodies USERS VUS FILE: FILE gets USERS mfa-otp grant bodies (one form body a
# line), each for a different fresh user with a fresh mfa_token and the TOTP code of the
# server's next 30-s step; then the server's clock is moved 30 s forward, so that step is
# the current one and every body succeeds exactly once. Scenario grant-body, run by
# `mfa-conform load` (USERS flows on VUS virtual users; every flow uses up its pool user).
# $grant_pool: a JSON object (users, setup_seconds, requests, server_step,
# codes_valid_for_seconds).
bench_grant_bodies() {
    local users=$1 vus=$2 out=$3 dir=$work/grant-scenarios reports=$work/grant-reports
    local started t0 rc=0 got now
    server_alive
    rm -rf "$dir" "$reports"
    collector_start grants
    bench_scenarios "$dir" grant-body "COLLECTOR=$collector_url/grant"
    started=$(now_s)
    t0=$(curl -fsS "$base/__control/clock" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["now"])') ||
        die "GET /__control/clock failed"
    # --iterations is the count; --duration only a bound. A failed flow fails the thresholds.
    "$bin" load --profile "$profile" --scenarios "$dir" --scenario grant-body --vus "$vus" \
        --iterations "$users" --duration 600s --threshold 'checks<0.001%' --threshold 'errors<0.001%' \
        --report-dir "$reports" >"$work/grants.out" 2>&1 || rc=$?
    collector_stop
    if ((rc != 0)); then
        tail -n 30 "$work/grants.out" >&2
        die "grant-body setup (mfa-conform load, scenario grant-body) exited $rc; reports: $reports"
    fi
    # One body more than flows: the generator's calibration flow before the run.
    got=$(wc -l <"$work/grants.lines")
    ((got >= users)) || die "grant-body setup: expected $users bodies, got $got"
    head -n "$users" "$work/grants.lines" >"$out"
    curl -fsS -X POST -H 'content-type: application/json' -d '{"advance_seconds": 30}' \
        "$base/__control/clock" || die "POST /__control/clock failed"
    now=$(curl -fsS "$base/__control/clock" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["now"])') ||
        die "GET /__control/clock failed"
    grant_pool=$("$python" - "$users" "$got" "$started" "$(now_s)" "$t0" "$now" <<'EOF'
import json, sys
users, got, started, ended, t0, now = int(sys.argv[1]), int(sys.argv[2]), *map(float, sys.argv[3:5]), *map(int, sys.argv[5:7])
# The earliest body carries the code of step (t0 + 30) // 30 or a later one; the server
# accepts a step while it is the current or the previous one.
earliest = (t0 + 30) // 30
print(json.dumps({
    "users": users,
    "setup_seconds": round(ended - started, 2),
    "requests": 6 * got + 3,  # per body: user, clock, login, associate, confirm, login
    "server_step": now // 30,
    "codes_valid_for_seconds": (earliest + 2) * 30 - now,
}))
EOF
)
    "$python" -c 'import json,sys; sys.exit(json.loads(sys.argv[1])["codes_valid_for_seconds"] < 5)' "$grant_pool" ||
        die "grant-body setup took too long: the codes are valid for less than 5 s ($grant_pool)"
}
