#!/usr/bin/env bash
# Soak test: `mfa-conform load` (open model, fixed rate) against `mfa-conform serve`, each its
# own process, for 21 minutes; RSS and CPU of both every 10 s. Fails (exit 1) if either
# process's RSS at the end exceeds its value at the start sample (t = 660 s) by more than
# 10%, or if the run reports any error (request errors by kind, failed flows, check
# failures, dropped starts). Writes bench/results/soak-<date>.md. The server keeps every
# mfa_token and every verified access token for its 10-minute life (by design), so its
# memory rises for the first 600 s; the start sample comes after that, and the compared
# window is 10 minutes.
#
# The flow (bench/soak/scenario.sh): setup (once per pool user, not measured) logs in and
# associates an OTP authenticator; each measured flow logs in (audience <base>/mfa/), does
# the mfa-otp grant with the current TOTP code, and lists the authenticators with the new
# access token. Nothing in it expires during the run (every flow gets a fresh mfa_token
# and access token), and the generator sizes its pool so that a user runs at most once per
# 30-s TOTP step. See bench/soak/README.md.
#
# Usage: bench/soak.sh [--quick]
#   --quick   SOAK_DURATION=60s, SOAK_EARLY=20 (a smoke run, not for quoting)
#
# Knobs (environment):
#   SOAK_DURATION=21m     measured length of the load run (`30s`, `10m`, `1h`)
#   SOAK_RATE=100         flows started per second (open model; 3 requests per flow). The
#                         default is well below saturation on 2 shared cores: the server
#                         spends ~1 ms of CPU per flow and the generator about as much
#                         (each report prints the measured figures and the headroom)
#   SOAK_EARLY=660        seconds into the run of the start sample the end is compared with
#   SOAK_MAX_GROWTH=10    allowed RSS growth from the start sample to the end, in percent
#   SOAK_INTERVAL=10      seconds between samples
#   SOAK_LIST_WITH=access_token  the bearer of the last step: access_token (the grant's), or
#                         mfa_token (the login's; no access token reaches the server's
#                         verified-token cache: tells that cache's share of server growth)
#   SOAK_BIN=PATH         use this mfa-conform binary instead of `cargo build --release`
#   SOAK_OUT=FILE         report path (default bench/results/soak-<date>.md)
#   SOAK_KEEP=1           keep the work directory (samples, load reports, server output)
#   SOAK_NICE=-10         priority of the server and the generator (as root; 0 = as is):
#                         each runs in its own session (setsid), whose autogroup gets this
#                         nice value, so neighbours' jobs (other sessions) yield to them
#   PYTHON=python3
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
helpers=$here/soak
cd "$root"

quick=0
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "soak: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

duration=${SOAK_DURATION:-21m}
early=${SOAK_EARLY:-660}
if ((quick)); then
    duration=${SOAK_DURATION:-60s}
    early=${SOAK_EARLY:-20}
fi
rate=${SOAK_RATE:-100}
rate=${rate%/s}
max_growth=${SOAK_MAX_GROWTH:-10}
list_with=${SOAK_LIST_WITH:-access_token}
interval=${SOAK_INTERVAL:-10}
python=${PYTHON:-python3}
if [[ $(id -u) -eq 0 ]]; then nice_level=${SOAK_NICE:--10}; else nice_level=${SOAK_NICE:-0}; fi
prio=()
if [[ $nice_level != 0 ]]; then
    prio=(nice -n "$nice_level")
    command -v setsid >/dev/null 2>&1 && prio=(setsid -w nice -n "$nice_level")
fi
# boost PID: the autogroup (Linux CFS groups tasks by session) of PID gets $nice_level.
boost() {
    [[ $nice_level != 0 && -w /proc/$1/autogroup ]] || return 0
    echo "$nice_level" >"/proc/$1/autogroup" 2>/dev/null || true
}
today=$(date +%Y-%m-%d)
out_md=${SOAK_OUT:-bench/results/soak-$today.md}

log() { echo "soak: $*" >&2; }
die() { echo "soak: FAILED: $*" >&2; exit 1; }

seconds_of() { # 10s, 2m, 1h -> seconds
    local d=$1
    case $d in
        *ms) echo $(((${d%ms} + 999) / 1000)) ;;
        *s) echo "${d%s}" ;;
        *m) echo $((${d%m} * 60)) ;;
        *h) echo $((${d%h} * 3600)) ;;
        *) echo "$d" ;;
    esac
}
duration_s=$(seconds_of "$duration")
[[ $duration_s =~ ^[0-9]+$ ]] || die "SOAK_DURATION=$duration: use 30s, 10m or 1h"
((duration_s > early)) || die "SOAK_DURATION=$duration must be longer than SOAK_EARLY=$early s"
[[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SOAK_RATE=$rate: a number of flows per second"
command -v "$python" >/dev/null 2>&1 || die "$python not found (set PYTHON)"

# --- build -------------------------------------------------------------------------
# The commit the binary is built from: taken before the build (others may commit meanwhile).
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -z ${SOAK_BIN:-} && -n $(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
    commit="$commit (+ uncommitted changes in src/Cargo, built at $(date -u +%H:%M) UTC)"
elif [[ -n ${SOAK_BIN:-} ]]; then
    commit="$commit (checked out when the run started; SOAK_BIN may be older)"
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/soak.XXXXXX")
if [[ -n ${SOAK_BIN:-} ]]; then
    src_bin=$SOAK_BIN
    bin_note="$SOAK_BIN (SOAK_BIN, not rebuilt)"
else
    log "cargo build --release"
    cargo build --release --quiet || die "cargo build --release failed (SOAK_BIN=path/to/mfa-conform uses an existing binary)"
    src_bin=target/release/mfa-conform
    bin_note="target/release/mfa-conform (built by this run)"
fi
[[ -x $src_bin ]] || die "$src_bin not found"
# A private copy: a rebuild during the soak must not swap the binary under it.
bin=$work/mfa-conform
cp "$src_bin" "$bin"

# --- processes ---------------------------------------------------------------------
server_wrapper= server_pid= gen_wrapper= gen_pid= sampler_pid=
stop_pid() { # PID: TERM, then wait for it (our own children only)
    [[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 0
    kill "$1" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    stop_pid "$sampler_pid"
    stop_pid "$gen_pid"
    stop_pid "$gen_wrapper"
    stop_pid "$server_pid"
    stop_pid "$server_wrapper"
    wait 2>/dev/null || true
    if [[ ${SOAK_KEEP:-} == 1 || $rc -ne 0 ]]; then
        log "work directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# real_pid PID: the mfa-conform process behind a wrapper PID (setsid may fork; nice execs).
real_pid() {
    local p=$1 c
    for _ in $(seq 1 300); do
        kill -0 "$p" 2>/dev/null || break
        if [[ $(cat "/proc/$p/comm" 2>/dev/null) == mfa-conform ]]; then
            echo "$p"
            return 0
        fi
        c=$(pgrep -P "$p" | head -n1 || true)
        [[ -n $c ]] && p=$c
        sleep 0.01
    done
    return 1
}

show_server_log() {
    echo "--- server stderr (last 30 lines) ---" >&2
    tail -n 30 "$work/server.stderr" >&2 || true
}

"${prio[@]}" "$bin" serve --addr 127.0.0.1:0 >"$work/server.stdout" 2>"$work/server.stderr" </dev/null &
server_wrapper=$!
server_pid=$(real_pid "$server_wrapper") || { show_server_log; die "the server did not start"; }
[[ $server_pid == "$server_wrapper" ]] && server_wrapper=
boost "$server_pid"
base=
deadline=$((SECONDS + 20))
while ((SECONDS < deadline)); do
    line=$(head -n1 "$work/server.stdout" 2>/dev/null || true)
    if [[ $line =~ ^listening\ on\ (http://127\.0\.0\.1:[0-9]+) ]]; then
        base=${BASH_REMATCH[1]}
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || { show_server_log; die "server exited before listening"; }
    sleep 0.1
done
[[ -n $base ]] || { show_server_log; die "server did not print its address within 20 s"; }
log "server at $base (pid $server_pid)"

# --- profile and scenario ------------------------------------------------------------
sc=$work/scenarios
# shellcheck source=soak/scenario.sh
source "$helpers/scenario.sh"
write_scenarios "$sc" "$list_with"
cat >"$work/profile.yaml" <<EOF
# The separate reference server started by bench/soak.sh.
base_url: $base
client_id: mfa-conform-client
client_secret: mfa-conform-secret
realm: Username-Password-Authentication
capabilities: [otp, sms, voice, email, recovery-code, clock]
control:
  users: $base/__control/users
  messages: $base/__control/messages
  clock: $base/__control/clock
EOF

# --- the run -------------------------------------------------------------------------
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
srv_rss_before=$(awk '/^VmRSS:/{print $2}' "/proc/$server_pid/status")
reports=$work/report
samples=$work/samples.jsonl
load_cmd=(load --profile "$work/profile.yaml" --scenarios "$sc" --scenario soak-otp
    --rate "$rate/s" --duration "$duration" --report-dir "$reports" --progress-every 30s)
log "load: $rate flows/s for $duration (open model), samples every $interval s; start sample at $early s"
"${prio[@]}" "$bin" "${load_cmd[@]}" >"$work/load.stdout" 2>"$work/load.stderr" </dev/null &
gen_wrapper=$!
gen_pid=$(real_pid "$gen_wrapper") || {
    tail -n 30 "$work/load.stderr" >&2
    die "the generator did not start"
}
[[ $gen_pid == "$gen_wrapper" ]] && gen_wrapper=
boost "$gen_pid"
"$python" "$helpers/sample.py" --gen "$gen_pid" --server "$server_pid" --gen-stderr "$work/load.stderr" \
    --out "$samples" --interval "$interval" --duration "$duration_s" &
sampler_pid=$!
gen_rc=0
wait "${gen_wrapper:-$gen_pid}" || gen_rc=$?
gen_wrapper= gen_pid=
wait "$sampler_pid" || true
sampler_pid=
kill -0 "$server_pid" 2>/dev/null || { show_server_log; die "the server died during the run"; }
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
if ((gen_rc != 0)); then
    echo "--- load stderr (last 30 lines) ---" >&2
    tail -n 30 "$work/load.stderr" >&2
fi
provision_s=$(sed -n 's/^provisioned in \([0-9.]*\)s.*/\1/p' "$work/load.stderr" | head -n1)

# --- report --------------------------------------------------------------------------
meta=$work/meta.json
"$python" - "$meta" <<EOF
import json, sys
json.dump({
    "date": "$today $(date +%H:%M:%S%z)",
    "quick": "$quick",
    "commit": "$commit",
    "machine": "$(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr)",
    "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')",
    "bin": "$bin_note, run from a private copy",
    "rate": "$rate",
    "list_with": "$list_with",
    "rate_note": "$rate flows/s scheduled (open model: starts on a fixed schedule whatever the latency; 3 requests per flow)"
        + ("" if "${SOAK_RATE:-}" else ": the default, chosen well below saturation (see CPU: headroom)"),
    "duration": "$duration",
    "flow": "scenario soak-otp (bench/soak/scenario.sh): setup per pool user (not measured): log in, associate OTP; "
            "measured steps: log in (password-realm, audience <base>/mfa/, scope read:authenticators) -> mfa-otp grant "
            "with the current TOTP code -> GET /mfa/authenticators with the new access token"
            + ("" if "$list_with" == "access_token" else " (here SOAK_LIST_WITH=$list_with: with the login's mfa_token instead)"),
    "priority": "server and generator: nice $nice_level, each in its own session (setsid) whose autogroup has nice "
                "$nice_level, so neighbours' jobs yield to them" if "$nice_level" != "0" else "as is (not root)",
    "interval": "$interval",
    "provision_s": "${provision_s:-?}",
    "load_before": "$load_before",
    "srv_rss_before_kib": "$srv_rss_before",
    "load_after": "$load_after",
    "gen_rc": "$gen_rc",
    "commands": [
        "mfa-conform serve --addr 127.0.0.1:0",
        "mfa-conform load --profile profile.yaml --scenarios SCENARIOS --scenario soak-otp --rate $rate/s --duration $duration --report-dir REPORT --progress-every 30s",
        "# every $interval s: VmRSS of /proc/PID/status, utime+stime of /proc/PID/stat (both processes)",
    ],
    "notes": [
        "What the server keeps by design, and what grows with the flows: every login adds an mfa_token session "
        "(src/server/store.rs Store.sessions), dropped only once 600 s old by the purger (src/server/mod.rs, every 5 s), "
        "so during the first 10 minutes the map grows by one entry per flow; every access token presented to "
        "/mfa/authenticators is added to the verified-token cache (src/server/jwt.rs Signer.verified), which the "
        "same purger empties of expired tokens (600 s after issue). "
        "Neither is a leak, but both grow linearly for the first 600 s; the default start sample (660 s) comes "
        "after both have settled, so growth after it would be a real leak.",
        "Users: the pool (provisioned before t = 0) stays; its size is fixed by the generator for the rate.",
    ],
}, open(sys.argv[1], "w"), indent=1)
EOF

mkdir -p "$(dirname "$out_md")"
echo
report_rc=0
"$python" "$helpers/report.py" --samples "$samples" --load-json "$reports/load.json" --meta "$meta" \
    --out "$out_md" --early "$early" --max-growth "$max_growth" --clk-tck "$(getconf CLK_TCK)" || report_rc=$?
log "report written to $out_md"
if [[ ${SOAK_KEEP:-} == 1 ]]; then log "load reports: $reports"; fi
exit "$report_rc"
