#!/usr/bin/env bash
# Benchmark of the reference server (`mfa-conform serve`, release build) with wrk:
#   1. GET /mfa/authenticators with a valid bearer (RS256 verify per request);
#   2. the mfa-otp grant on POST /oauth/token, each request a different user with an
#      unused TOTP code (RS256 sign per request).
# Writes bench/results/server-<date>.md and prints the summary table. Fails on any non-200
# response or socket error. See bench/README.md.
#
# Knobs (environment):
#   BENCH_DURATION=10s          length of each GET /mfa/authenticators run
#   BENCH_REPEAT=2              runs of each measurement (the machine is noisy)
#   BENCH_AUTH_MATRIX="1:32 2:64"   wrk THREADS:CONNECTIONS for GET /mfa/authenticators
#   BENCH_POOL_USERS=4000       users (= grants) per mfa-otp run
#   BENCH_GRANT_CONNECTIONS=32  wrk connections for the mfa-otp runs (always 1 thread)
#   BENCH_SETUP_CONCURRENCY=8   Python threads preparing the user pools
#   BENCH_AUTH_TARGET=20000     req/s target for GET /mfa/authenticators (reported only)
#   BENCH_OHA=auto              auto: also run oha if it is on PATH; 1: `cargo install oha
#                               --locked` if missing (several minutes on 2 cores); 0: no oha
#   BENCH_SKIP_BUILD=1          use target/release/mfa-conform as it is
#   BENCH_OUT=FILE              report path (default bench/results/server-<date>.md)
#   BENCH_KEEP=1                keep the work directory (server log, wrk outputs)
#   PYTHON=python3
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

duration=${BENCH_DURATION:-10s}
repeat=${BENCH_REPEAT:-2}
auth_matrix=${BENCH_AUTH_MATRIX:-"1:32 2:64"}
pool_users=${BENCH_POOL_USERS:-4000}
grant_conns=${BENCH_GRANT_CONNECTIONS:-32}
setup_concurrency=${BENCH_SETUP_CONCURRENCY:-8}
auth_target=${BENCH_AUTH_TARGET:-20000}
want_oha=${BENCH_OHA:-auto}
python=${PYTHON:-python3}
today=$(date +%Y-%m-%d)
out_md=${BENCH_OUT:-bench/results/server-$today.md}

log() { echo "bench: $*" >&2; }
die() { echo "bench: FAILED: $*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk (apt-get)"
    as_root apt-get update -qq >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
# grants.lua needs LuaJIT's ffi (Debian's wrk is built on LuaJIT).
if ! ldd "$(command -v wrk)" 2>/dev/null | grep -q luajit; then
    die "$(command -v wrk) is not linked against LuaJIT; bench/lua/grants.lua needs its ffi"
fi
command -v "$python" >/dev/null 2>&1 || die "$python not found (set PYTHON)"

oha_bin=
case $want_oha in
    0) ;;
    1 | auto)
        if command -v oha >/dev/null 2>&1; then
            oha_bin=$(command -v oha)
        elif [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/oha ]]; then
            oha_bin=${CARGO_HOME:-$HOME/.cargo}/bin/oha
        elif [[ $want_oha == 1 ]]; then
            log "installing oha (cargo install oha --locked; takes minutes on 2 cores)"
            cargo install oha --locked --quiet
            oha_bin=${CARGO_HOME:-$HOME/.cargo}/bin/oha
        fi
        ;;
    *) die "BENCH_OHA must be 0, 1 or auto" ;;
esac

# --- build -------------------------------------------------------------------------
if [[ ${BENCH_SKIP_BUILD:-} != 1 ]]; then
    log "cargo build --release"
    cargo build --release --quiet
fi
bin=target/release/mfa-conform
[[ -x $bin ]] || die "$bin not found"

# --- server ------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/mfa-bench.XXXXXX")
results=$work/results.jsonl
meta=$work/meta.json
server_pid=

cleanup() {
    local rc=$?
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ ${BENCH_KEEP:-} == 1 || $rc -ne 0 ]]; then
        log "work directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_server_log() {
    echo "--- server stderr ($work/server.stderr, last 30 lines) ---" >&2
    tail -n 30 "$work/server.stderr" >&2 || true
}

"$bin" serve --addr 127.0.0.1:0 >"$work/server.stdout" 2>"$work/server.stderr" </dev/null &
server_pid=$!
base=
deadline=$((SECONDS + 20))
while ((SECONDS < deadline)); do
    line=$(grep -m1 -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$work/server.stdout" 2>/dev/null || true)
    if [[ -n $line ]]; then
        base=${line#listening on }
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || { show_server_log; die "server exited before listening"; }
    sleep 0.1
done
[[ -n $base ]] || { show_server_log; die "no 'listening on http://127.0.0.1:PORT' within 20 s"; }
log "server pid $server_pid at $base"

rss_kib() { ps -o rss= -p "$server_pid" | tr -d ' '; }
clk_tck=$(getconf CLK_TCK)
# CPU accounting of one measured run, so a noisy neighbour shows in the report, as
# average cores busy over the run's wall time: server = utime + stime of the server
# (fields 14, 15 of /proc/PID/stat); client = user + sys of the load generator (bash
# `time`); irq = irq + softirq time of all CPUs (loopback networking, mostly the run's own);
# steal = time the hypervisor gave to other guests; other = everything else that was busy
# (other processes on this machine).
server_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
# busy (user nice system irq softirq steal), irq + softirq, steal
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $7 + $8, $9; exit}' /proc/stat; }
now_s() { date +%s.%N; }
cpu_begin() { cpu_s0=$(server_ticks) cpu_m0=$(machine_ticks) cpu_t0=$(now_s); }
# cpu_end TIMEFILE: sets cpu_meta to key=value arguments for `report record`.
cpu_end() {
    local s1 m1 t1
    s1=$(server_ticks) m1=$(machine_ticks) t1=$(now_s)
    read -r -a cpu_meta < <(awk -v s0="$cpu_s0" -v s1="$s1" -v m0="$cpu_m0" -v m1="$m1" \
        -v t0="$cpu_t0" -v t1="$t1" -v hz="$clk_tck" -v client="$(cat "$1")" 'BEGIN {
            wall = t1 - t0; split(client, c, " "); split(m0, a, " "); split(m1, b, " ")
            server = (s1 - s0) / hz / wall; gen = (c[1] + c[2]) / wall
            busy = (b[1] - a[1]) / hz / wall; irq = (b[2] - a[2]) / hz / wall
            steal = (b[3] - a[3]) / hz / wall
            other = busy - server - gen - irq - steal
            if (other < 0) other = 0
            printf "server_cpu_cores=%.2f client_cpu_cores=%.2f irq_cpu_cores=%.2f " \
                "steal_cpu_cores=%.2f other_cpu_cores=%.2f wall_s=%.2f\n",
                server, gen, irq, steal, other, wall }')
}
TIMEFORMAT='%3U %3S'
server_alive() {
    kill -0 "$server_pid" 2>/dev/null || { show_server_log; die "the server died"; }
}

report() { "$python" "$here/report.py" "$@"; }

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
    commit="$commit (+ uncommitted changes in src/Cargo)"
fi
report meta --meta "$meta" \
    "date=$today $(date +%H:%M:%S%z)" \
    "commit=$commit" \
    "machine=$(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB" \
    "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    "load_before=$(cut -d' ' -f1-3 /proc/loadavg)" \
    "wrk=$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)" \
    "oha=${oha_bin:+$("$oha_bin" --version 2>/dev/null | head -1)}" \
    "duration=$duration per GET /mfa/authenticators run" \
    "grant_pool_users=$pool_users" \
    "grant_connections=$grant_conns (1 wrk thread)" \
    "auth_target_rps=$auth_target" \
    "rss_start_kib=$(rss_kib)"

# --- 1. GET /mfa/authenticators ------------------------------------------------------
log "preparing an access token (provision, login, associate, mfa-otp)"
token=$("$python" "$here/mfa_setup.py" token --base "$base") || die "access-token setup failed (see above)"
auth_url=$base/mfa/authenticators

# run_auth TOOL THREADS CONNS REP DURATION [record]
run_auth() {
    local tool=$1 threads=$2 conns=$3 rep=$4 dur=$5 record=${6:-}
    local tag=auth-$tool-t$threads-c$conns-$rep
    local rc=0
    server_alive
    cpu_begin
    if [[ $tool == wrk ]]; then
        { time BENCH_BEARER=$token wrk -t"$threads" -c"$conns" -d"$dur" --timeout 5s \
            -s "$here/lua/authenticators.lua" "$auth_url" >"$work/$tag.out" 2>"$work/$tag.err"; } \
            2>"$work/$tag.time" || rc=$?
    else
        { time "$oha_bin" --no-tui -z "$dur" -c "$conns" -H "Authorization: Bearer $token" \
            --output-format json "$auth_url" >"$work/$tag.out" 2>"$work/$tag.err"; } \
            2>"$work/$tag.time" || rc=$?
    fi
    cpu_end "$work/$tag.time"
    server_alive
    if ((rc != 0)); then
        cat "$work/$tag.err" >&2
        die "$tool on GET /mfa/authenticators exited $rc"
    fi
    if [[ -s $work/$tag.err ]]; then sed 's/^/  /' "$work/$tag.err" >&2; fi
    if [[ -z $record ]]; then
        # Warm-up: still checked, not recorded.
        report record --results "$work/warmup.jsonl" --tool "$tool" --output "$work/$tag.out" \
            bench=warmup >/dev/null || die "warm-up on GET /mfa/authenticators had errors (see above)"
        return
    fi
    report record --results "$results" --tool "$tool" --output "$work/$tag.out" \
        bench=authenticators "threads=$threads" "conns=$conns" "rep=$rep" \
        "${cpu_meta[@]}" "rss_after_kib=$(rss_kib)" ||
        die "GET /mfa/authenticators ($tool -t$threads -c$conns, run $rep) had errors (see above)"
}

log "warm-up: 2 s of GET /mfa/authenticators"
run_auth wrk 1 32 0 2s
for rep in $(seq 1 "$repeat"); do
    for cfg in $auth_matrix; do
        run_auth wrk "${cfg%%:*}" "${cfg##*:}" "$rep" "$duration" record
        if [[ -n $oha_bin ]]; then
            # oha has no thread count: it uses all cores.
            run_auth oha - "${cfg##*:}" "$rep" "$duration" record
        fi
    done
done
report meta --meta "$meta" "rss_after_auth_kib=$(rss_kib)"

# --- 2. mfa-otp grants ----------------------------------------------------------------
for rep in $(seq 1 "$repeat"); do
    bodies=$work/grant-bodies-$rep.txt
    log "grant run $rep: preparing $pool_users enrolled users (fresh mfa_token + unused TOTP code each)"
    server_alive
    pool=$("$python" "$here/mfa_setup.py" pool --base "$base" --users "$pool_users" \
        --concurrency "$setup_concurrency" --out "$bodies") || die "grant pool setup failed (see above)"
    log "pool: $pool"
    report meta --meta "$meta" "pools+=$("$python" -c 'import json,sys; d=json.loads(sys.argv[1]); d["rep"]=int(sys.argv[2]); print(json.dumps(d))' "$pool" "$rep")"
    tag=grants-$rep
    rc=0
    cpu_begin
    # -d is only an upper bound: the script stops wrk when the last body is answered.
    { time BENCH_BODIES=$bodies wrk -t1 -c"$grant_conns" -d60s --timeout 10s \
        -s "$here/lua/grants.lua" "$base/oauth/token" >"$work/$tag.out" 2>"$work/$tag.err"; } \
        2>"$work/$tag.time" || rc=$?
    cpu_end "$work/$tag.time"
    server_alive
    if ((rc != 0)); then
        cat "$work/$tag.err" >&2
        die "wrk on POST /oauth/token (mfa-otp) exited $rc"
    fi
    if [[ -s $work/$tag.err ]]; then sed 's/^/  /' "$work/$tag.err" >&2; fi
    report record --results "$results" --tool wrk --output "$work/$tag.out" --expect "$pool_users" \
        bench=mfa-otp threads=1 "conns=$grant_conns" "rep=$rep" \
        "${cpu_meta[@]}" "rss_after_kib=$(rss_kib)" ||
        die "mfa-otp grants (run $rep) had errors (see above)"
done

# --- report ----------------------------------------------------------------------------
report meta --meta "$meta" "rss_end_kib=$(rss_kib)"
mkdir -p "$(dirname "$out_md")"
echo
report render --results "$results" --meta "$meta" --out "$out_md"
echo
rss_start=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["rss_start_kib"])' "$meta")
log "server RSS: $rss_start KiB at start, $(rss_kib) KiB at the end"
log "report written to $out_md"
