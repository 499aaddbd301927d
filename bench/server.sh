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
#   BENCH_SETUP_CONCURRENCY=8   virtual users of `mfa-conform load` preparing the user pools
#   BENCH_AUTH_TARGET=20000     req/s target for GET /mfa/authenticators (reported only)
#   BENCH_OHA=auto              auto: also run oha if it is on PATH; 1: `cargo install oha
#                               --locked` if missing (several minutes on 2 cores; on failure
#                               the script goes on without oha); 0: no oha
#   BENCH_SKIP_BUILD=1          use target/profiling/mfa-conform as it is
#   BENCH_BIN=PATH              use this mfa-conform binary instead of building
#   BENCH_OUT=FILE              report path (default bench/results/server-<date>.md)
#   BENCH_KEEP=1                keep the work directory (server log, wrk outputs)
#   PYTHON=python3
set -euo pipefail

BENCH_NAME=bench
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$bench_root"

duration=${BENCH_DURATION:-10s}
repeat=${BENCH_REPEAT:-2}
auth_matrix=${BENCH_AUTH_MATRIX:-"1:32 2:64"}
pool_users=${BENCH_POOL_USERS:-4000}
grant_conns=${BENCH_GRANT_CONNECTIONS:-32}
setup_concurrency=${BENCH_SETUP_CONCURRENCY:-8}
auth_target=${BENCH_AUTH_TARGET:-20000}
want_oha=${BENCH_OHA:-auto}
today=$(date +%Y-%m-%d)
out_md=${BENCH_OUT:-bench/results/server-$today.md}

# --- tools, binary, server (bench/lib.sh) ----------------------------------------------
bench_need_tools
# grants.lua needs LuaJIT's ffi (Debian's wrk is built on LuaJIT).
if ! ldd "$(command -v wrk)" 2>/dev/null | grep -q luajit; then
    die "$(command -v wrk) is not linked against LuaJIT; bench/lua/grants.lua needs its ffi"
fi
bench_find_oha "$want_oha"
bin_arg=${BENCH_BIN:-}
[[ -z $bin_arg && ${BENCH_SKIP_BUILD:-} == 1 ]] && bin_arg=target/profiling/mfa-conform
bench_commit "$bin_arg"
bench_workdir mfa-bench "${BENCH_KEEP:-}"
bench_binary "$bin_arg"
results=$work/results.jsonl
meta=$work/meta.json
bench_serve

server_rss() { rss_kib "$server_pid"; }
# CPU accounting of one measured run, so a noisy neighbour shows in the report, as
# average cores busy over the run's wall time: server = utime + stime of the server
# (fields 14, 15 of /proc/PID/stat); client = user + sys of the load generator (bash
# `time`); irq = irq + softirq time of all CPUs (loopback networking, mostly the run's own);
# steal = time the hypervisor gave to other guests; other = everything else that was busy
# (other processes on this machine).
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
# timed TAG WHAT CMD...: runs CMD (stdout and stderr to $work/TAG.out and .err) under bash's
# `time`, sets cpu_meta (cpu_end), and fails naming WHAT if CMD fails.
timed() {
    local tag=$1 what=$2 rc=0
    shift 2
    server_alive
    cpu_begin
    { time "$@" >"$work/$tag.out" 2>"$work/$tag.err"; } 2>"$work/$tag.time" || rc=$?
    cpu_end "$work/$tag.time"
    server_alive
    if ((rc != 0)); then
        cat "$work/$tag.err" >&2
        die "$what exited $rc"
    fi
    if [[ -s $work/$tag.err ]]; then sed 's/^/  /' "$work/$tag.err" >&2; fi
}

report() { "$python" "$bench_dir/report.py" "$@"; }

bench_machine_meta
report meta --meta "$meta" "${machine_meta[@]}" \
    "duration=$duration per GET /mfa/authenticators run" \
    "grant_pool_users=$pool_users" \
    "grant_connections=$grant_conns (1 wrk thread)" \
    "auth_target_rps=$auth_target" \
    "rss_start_kib=$(server_rss)"

# --- 1. GET /mfa/authenticators ------------------------------------------------------
log "preparing an access token (mfa-conform run, scenario bench-token: provision, login, associate, mfa-otp)"
bench_token "enroll read:authenticators remove:authenticators"
auth_url=$base/mfa/authenticators

# run_auth TOOL THREADS CONNS REP DURATION [record]
run_auth() {
    local tool=$1 threads=$2 conns=$3 rep=$4 dur=$5 record=${6:-}
    local tag=auth-$tool-t$threads-c$conns-$rep
    if [[ $tool == wrk ]]; then
        timed "$tag" "wrk on GET /mfa/authenticators" env BENCH_BEARER="$token" \
            wrk -t"$threads" -c"$conns" -d"$dur" --timeout 5s -s "$bench_dir/lua/authenticators.lua" "$auth_url"
    else
        timed "$tag" "oha on GET /mfa/authenticators" "$oha_bin" --no-tui -z "$dur" -c "$conns" \
            -H "Authorization: Bearer $token" --output-format json "$auth_url"
    fi
    if [[ -z $record ]]; then
        # Warm-up: still checked, not recorded.
        report record --results "$work/warmup.jsonl" --tool "$tool" --output "$work/$tag.out" \
            bench=warmup >/dev/null || die "warm-up on GET /mfa/authenticators had errors (see above)"
        return
    fi
    report record --results "$results" --tool "$tool" --output "$work/$tag.out" \
        bench=authenticators "threads=$threads" "conns=$conns" "rep=$rep" \
        "${cpu_meta[@]}" "rss_after_kib=$(server_rss)" ||
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
report meta --meta "$meta" "rss_after_auth_kib=$(server_rss)"

# --- 2. mfa-otp grants ----------------------------------------------------------------
for rep in $(seq 1 "$repeat"); do
    bodies=$work/grant-bodies-$rep.txt
    log "grant run $rep: preparing $pool_users enrolled users (fresh mfa_token + unused TOTP code each)"
    server_alive
    bench_grant_bodies "$pool_users" "$setup_concurrency" "$bodies"
    log "pool: $grant_pool"
    report meta --meta "$meta" "pools+=$("$python" -c 'import json,sys; d=json.loads(sys.argv[1]); d["rep"]=int(sys.argv[2]); print(json.dumps(d))' "$grant_pool" "$rep")"
    tag=grants-$rep
    # -d is only an upper bound: the script stops wrk when the last body is answered.
    timed "$tag" "wrk on POST /oauth/token (mfa-otp)" env BENCH_BODIES="$bodies" \
        wrk -t1 -c"$grant_conns" -d60s --timeout 10s -s "$bench_dir/lua/grants.lua" "$base/oauth/token"
    report record --results "$results" --tool wrk --output "$work/$tag.out" --expect "$pool_users" \
        bench=mfa-otp threads=1 "conns=$grant_conns" "rep=$rep" \
        "${cpu_meta[@]}" "rss_after_kib=$(server_rss)" ||
        die "mfa-otp grants (run $rep) had errors (see above)"
done

# --- report ----------------------------------------------------------------------------
report meta --meta "$meta" "rss_end_kib=$(server_rss)"
mkdir -p "$(dirname "$out_md")"
echo
report render --results "$results" --meta "$meta" --out "$out_md"
echo
rss_start=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["rss_start_kib"])' "$meta")
log "server RSS: $rss_start KiB at start, $(server_rss) KiB at the end"
log "report written to $out_md"
