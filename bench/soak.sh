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
# The flow (bench/scenarios/soak-otp.yaml): setup (once per pool user, not measured) logs in and
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

BENCH_NAME=soak
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
helpers=$bench_dir/soak
cd "$bench_root"

quick=0
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        -h | --help) usage "$0"; exit 0 ;;
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
if [[ $(id -u) -eq 0 ]]; then bench_priority "${SOAK_NICE:--10}"; else bench_priority "${SOAK_NICE:-0}"; fi
today=$(date +%Y-%m-%d)
out_md=${SOAK_OUT:-bench/results/soak-$today.md}
duration_s=$(seconds_of "$duration")
[[ $duration_s =~ ^[0-9]+$ ]] || die "SOAK_DURATION=$duration: use 30s, 10m or 1h"
((duration_s > early)) || die "SOAK_DURATION=$duration must be longer than SOAK_EARLY=$early s"
[[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SOAK_RATE=$rate: a number of flows per second"
command -v "$python" >/dev/null 2>&1 || die "$python not found (set PYTHON)"

case $list_with in
    access_token) bearer=access_token ;;
    mfa_token) bearer=login_mfa_token ;;
    *) die "SOAK_LIST_WITH=$list_with: access_token or mfa_token" ;;
esac

# --- binary, server, scenario (bench/lib.sh) -------------------------------------------
bench_commit "${SOAK_BIN:-}"
bench_workdir soak "${SOAK_KEEP:-}"
bench_binary "${SOAK_BIN:-}"
[[ -n ${SOAK_BIN:-} ]] && bin_note="$SOAK_BIN (SOAK_BIN, not rebuilt)"
bench_serve
# soak-otp lists the authenticators with BEARER: the mfa-otp grant's access token (the
# default), or the login's mfa_token (no access token reaches the server's verified-token
# cache: an attribution run for memory growth).
sc=$work/scenarios
bench_scenarios "$sc" soak-otp "BEARER=$bearer"

# --- the run -------------------------------------------------------------------------
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
srv_rss_before=$(awk '/^VmRSS:/{print $2}' "/proc/$server_pid/status")
reports=$work/report
samples=$work/samples.jsonl
load_cmd=(load --profile "$profile" --scenarios "$sc" --scenario soak-otp
    --rate "$rate/s" --duration "$duration" --report-dir "$reports" --progress-every 30s)
log "load: $rate flows/s for $duration (open model), samples every $interval s; start sample at $early s"
"${prio[@]}" "$bin" "${load_cmd[@]}" >"$work/load.stdout" 2>"$work/load.stderr" </dev/null &
gen_wrapper=$!
bench_pids+=("$gen_wrapper")
gen_pid=$(real_pid "$gen_wrapper") || {
    tail -n 30 "$work/load.stderr" >&2
    die "the generator did not start"
}
[[ $gen_pid == "$gen_wrapper" ]] && gen_wrapper=
bench_pids+=("$gen_pid")
boost "$gen_pid"
"$python" "$helpers/sample.py" --gen "$gen_pid" --server "$server_pid" --gen-stderr "$work/load.stderr" \
    --out "$samples" --interval "$interval" --duration "$duration_s" &
sampler_pid=$!
bench_pids+=("$sampler_pid")
gen_rc=0
wait "${gen_wrapper:-$gen_pid}" || gen_rc=$?
wait "$sampler_pid" || true
for pid in "$gen_wrapper" "$gen_pid" "$sampler_pid"; do if [[ -n $pid ]]; then bench_forget "$pid"; fi; done
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
    "flow": "scenario soak-otp (bench/scenarios/soak-otp.yaml): setup per pool user (not measured): log in, associate OTP; "
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
