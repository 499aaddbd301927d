#!/usr/bin/env bash
# Generator benchmark of issue 5 ("Performance"): `mfa-conform load` against wrk and oha,
# on the same single request (GET /mfa/authenticators with one fixed valid access token),
# against the reference server running as its own process:
#   1. closed model, 64 connections: req/s of each tool and the ratios (goal: >= 0.9x wrk);
#   2. open model at a fixed rate: generator CPU seconds per 1000 requests, ours vs oha
#      (goal: <= oha's);
#   3. full otp-login flows/s (the repo's scenarios), with generator and server CPU;
#   4. (--soak) generator RSS every 10 s over a 5-minute open-model run (must stay flat);
#   5. where our generator spends CPU (callgrind + strace), when a goal is missed.
# Prints the summary and writes bench/results/vs-wrk-<date>.md. See bench/vs-wrk/README.md.
#
# Usage: bench/vs-wrk.sh [--soak] [--hotspots | --no-hotspots] [--quick]
#   --soak          also run part 4 (5 more minutes)
#   --hotspots      always run part 5; --no-hotspots never (default: only if a goal is missed)
#   --quick         VSWRK_REPEAT=1, VSWRK_DURATION=5s (a smoke run, not for quoting)
#
# Knobs (environment):
#   VSWRK_DURATION=10s      length of each measured run (parts 1-3)
#   VSWRK_REPEAT=3          runs of each measurement (the machine is shared and noisy)
#   VSWRK_CONNS=64          connections / virtual users for part 1 (wrk uses 2 threads)
#   VSWRK_RATE=auto         part 2 rate; auto: 20000/s if the closed runs show the server
#                           has the headroom, else half the best closed-model rate
#   VSWRK_OPEN_POOL=2000    pool users for our open-model runs (--pool)
#   VSWRK_FLOW_VUS=16       virtual users for part 3
#   VSWRK_SOAK_DURATION=5m  part 4 length (at most 9m: the access token lives 10 minutes)
#   VSWRK_SOAK_RATE=auto    part 4 rate (default: half the part-2 rate, a steady state)
#   VSWRK_OHA=1             1: `cargo install oha --locked` if missing (minutes of compile;
#                           on failure the script says so and goes on without oha); 0: no oha
#   VSWRK_BIN=PATH          use this mfa-conform binary instead of building
#   VSWRK_OUT=FILE          report path (default bench/results/vs-wrk-<date>.md)
#   VSWRK_KEEP=1            keep the work directory (outputs, load reports, callgrind file)
#   VSWRK_NICE=-10          priority of the server and the generators (as root; 0 = as is):
#                           each runs in its own session (setsid), whose autogroup gets this
#                           nice value, so neighbours' jobs (other sessions, other autogroups,
#                           where a plain `nice` has no effect) yield to the benchmark
#   PYTHON=python3
set -euo pipefail

BENCH_NAME=vs-wrk
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
helpers=$bench_dir/vs-wrk
cd "$bench_root"

soak=0
hotspots=auto
quick=0
for arg in "$@"; do
    case $arg in
        --soak) soak=1 ;;
        --hotspots) hotspots=1 ;;
        --no-hotspots) hotspots=0 ;;
        --quick) quick=1 ;;
        -h | --help) usage "$0"; exit 0 ;;
        *) echo "vs-wrk: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

duration=${VSWRK_DURATION:-10s}
repeat=${VSWRK_REPEAT:-3}
if ((quick)); then
    duration=${VSWRK_DURATION:-5s}
    repeat=${VSWRK_REPEAT:-1}
fi
conns=${VSWRK_CONNS:-64}
rate_knob=${VSWRK_RATE:-auto}
open_pool=${VSWRK_OPEN_POOL:-2000}
flow_vus=${VSWRK_FLOW_VUS:-16}
soak_duration=${VSWRK_SOAK_DURATION:-5m}
want_oha=${VSWRK_OHA:-1}
if [[ $(id -u) -eq 0 ]]; then bench_priority "${VSWRK_NICE:--10}"; else bench_priority "${VSWRK_NICE:-0}"; fi
today=$(date +%Y-%m-%d)
out_md=${VSWRK_OUT:-bench/results/vs-wrk-$today.md}
(($(seconds_of "$soak_duration") <= 540)) || die "VSWRK_SOAK_DURATION=$soak_duration: at most 9m (the access token lives 600 s)"

# --- tools, binary, server (bench/lib.sh) -----------------------------------------------
bench_need_tools
if [[ $want_oha == 0 ]]; then bench_find_oha 0; oha_note="oha disabled (VSWRK_OHA=0)"; else bench_find_oha 1; fi
bench_commit "${VSWRK_BIN:-}"
bench_workdir vs-wrk "${VSWRK_KEEP:-}"
bench_binary "${VSWRK_BIN:-}"
[[ -n ${VSWRK_BIN:-} ]] && bin_note="$VSWRK_BIN (VSWRK_BIN, not rebuilt)"
results=$work/results.jsonl
meta=$work/meta.json
bench_serve

# --- CPU accounting ----------------------------------------------------------------
# measure TAG MODE CMD...: runs CMD under /usr/bin/time (stdout/stderr to $work/TAG.out/.err)
# and sets `m` to key=value pairs for `report.py record`:
#   gen_user_s gen_sys_s gen_maxrss_kib wall_s server_cpu_s server_cores gen_cores
#   irq_cores noise_cores (other processes + steal)
# MODE window: also the window from our generator's "provisioned in" line to its exit
#   (win_gen_cpu_s win_server_cpu_s win_wall_s win_gen_cores win_server_cores win_noise_cores).
# MODE soak: window, plus the generator's RSS every 10 s (rss_samples_kib).
measure() {
    local tag=$1 mode=$2
    shift 2
    local s0 m0 t0 s1 m1 t1 rc=0 tpid child='' wg0='' ws0='' wm0='' wt0='' samples=''
    server_alive
    s0=$(server_ticks) m0=$(machine_ticks) t0=$(now_s)
    /usr/bin/time -f '%e %U %S %M' -o "$work/$tag.time" "${prio[@]}" "$@" >"$work/$tag.out" 2>"$work/$tag.err" </dev/null &
    tpid=$!
    child=$(real_pid "$tpid" "$(basename "$1")" || true)
    if [[ -n $child ]]; then boost "$child"; fi
    if [[ $mode != plain ]]; then
        while kill -0 "$tpid" 2>/dev/null && ! grep -q 'provisioned in' "$work/$tag.err" 2>/dev/null; do
            sleep 0.05
        done
        if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
            wg0=$(proc_ticks "$child") ws0=$(server_ticks) wm0=$(machine_ticks) wt0=$(now_s)
        fi
        if [[ $mode == soak && -n $child ]]; then
            local start=$SECONDS next=$((SECONDS + 10)) r
            while kill -0 "$child" 2>/dev/null; do
                if ((SECONDS >= next)); then
                    r=$(rss_kib "$child")
                    if [[ -n $r ]]; then
                        samples+="${samples:+,}$r"
                        log "  soak: $((SECONDS - start)) s, generator RSS $r KiB"
                    fi
                    next=$((next + 10))
                fi
                sleep 0.5
            done
        fi
    fi
    wait "$tpid" || rc=$?
    s1=$(server_ticks) m1=$(machine_ticks) t1=$(now_s)
    server_alive
    local times
    times=$(tail -n1 "$work/$tag.time")
    read -r -a m < <(awk -v s0="$s0" -v s1="$s1" -v m0="$m0" -v m1="$m1" -v t0="$t0" -v t1="$t1" \
        -v hz="$clk_tck" -v times="$times" -v wg0="$wg0" -v ws0="$ws0" -v wm0="$wm0" -v wt0="$wt0" 'BEGIN {
            split(times, c, " "); split(m0, a, " "); split(m1, b, " ")
            wall = t1 - t0; gen = c[2] + c[3]; server = (s1 - s0) / hz
            busy = (b[1] - a[1]) / hz; irq = (b[2] - a[2]) / hz
            noise = busy - server - gen - irq; if (noise < 0) noise = 0
            printf "gen_user_s=%.3f gen_sys_s=%.3f gen_maxrss_kib=%d wall_s=%.3f server_cpu_s=%.3f " \
                "server_cores=%.3f gen_cores=%.3f irq_cores=%.3f noise_cores=%.3f", \
                c[2], c[3], c[4], wall, server, server / wall, gen / wall, irq / wall, noise / wall
            if (wt0 != "") {
                split(wm0, w, " ")
                ww = t1 - wt0; wgen = gen - wg0 / hz; wsrv = (s1 - ws0) / hz
                wbusy = (b[1] - w[1]) / hz; wirq = (b[2] - w[2]) / hz
                wnoise = wbusy - wsrv - wgen - wirq; if (wnoise < 0) wnoise = 0
                printf " win_gen_cpu_s=%.3f win_server_cpu_s=%.3f win_wall_s=%.3f win_gen_cores=%.3f " \
                    "win_server_cores=%.3f win_noise_cores=%.3f", wgen, wsrv, ww, wgen / ww, wsrv / ww, wnoise / ww
            }
            printf "\n" }')
    [[ -n $samples ]] && m+=("rss_samples_kib=$samples")
    if ((rc != 0)); then
        echo "--- $tag stderr ---" >&2
        tail -n 30 "$work/$tag.err" >&2
        echo "--- $tag stdout ---" >&2
        tail -n 30 "$work/$tag.out" >&2
        die "$tag: exited $rc"
    fi
}

report() { "$python" "$helpers/report.py" "$@"; }
record() { # record [--tolerate-check-failures] --tool TOOL --output OUTPUT key=value...
    report record --results "$results" "$@" >/dev/null || die "a run had errors (see above); outputs in $work"
}

bench_machine_meta
report meta --meta "$meta" "${machine_meta[@]}" \
    "bin=$bin_note" \
    "duration=$duration" "repeat=$repeat" "conns=$conns" "flow_vus=$flow_vus" \
    "soak_duration=$soak_duration" \
    "notes=server and generators: nice $nice_level, each in its own session (setsid) whose autogroup has nice $nice_level, so neighbours' jobs yield to them"
cmd_note() { report meta --meta "$meta" "commands+=$(printf '%s' "$1" | "$python" -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"; }

# --- scenarios ----------------------------------------------------------------------
# The profile is bench/profile.yaml (the server bench_serve started). The two measured
# scenarios (bench/scenarios/authenticators*.yaml) carry the access token written in, so
# they are written again with each new token (they live 600 s): fresh_token.
#   authenticators: the request with the token written in `bearer:`, plus one unmeasured
#     setup request. Builds before 9d0c1c9 treat a scenario without setup as single-use
#     even with `user: false` (each flow uses up a pool user; the pool is sized to the
#     whole run, capped at 100000, and closed-model users stop when it runs dry); with the
#     setup, every build measures the same thing.
#   authenticators-naive: the obvious spelling (token in `vars`, no setup); measured beside
#     it in part 1 because it is what a user would write first.
sc=$work/scenarios
mkdir -p "$work/reports"
token=
fresh_token() {
    bench_token read:authenticators
    bench_scenarios "$sc" "authenticators authenticators-naive" "TOKEN=$token"
}
url=$base/mfa/authenticators

run_wrk() { # TAG BENCH REP
    measure "$1" plain wrk -t2 -c"$conns" -d"$duration" --timeout 5s --latency \
        -H "Authorization: Bearer $token" "$url"
    record --tool wrk --output "$work/$1.out" "bench=$2" "rep=$3" "${m[@]}"
}
run_oha() { # TAG BENCH REP [oha args...]
    local tag=$1 bench=$2 rep=$3
    shift 3
    measure "$tag" plain "$oha_bin" --no-tui --output-format json -c "$conns" -z "$duration" "$@" \
        -H "Authorization: Bearer $token" "$url"
    record --tool oha --output "$work/$tag.out" "bench=$bench" "rep=$rep" "${m[@]}"
}
run_ours() { # TAG BENCH REP SCENARIO [load args...]
    local tag=$1 bench=$2 rep=$3 scenario=$4 variant=ours
    shift 4
    [[ $scenario == authenticators-naive ]] && variant=ours-naive
    measure "$tag" window "$bin" load --profile "$profile" --scenarios "$sc" \
        --scenario "$scenario" --report-dir "$work/reports/$tag" "$@"
    record --tool ours --output "$work/reports/$tag/load.json" "bench=$bench" "rep=$rep" \
        "variant=$variant" "${m[@]}"
}

# --- warm-up -------------------------------------------------------------------------
fresh_token
log "warm-up: wrk 2 s"
measure warmup plain wrk -t2 -c"$conns" -d2s -H "Authorization: Bearer $token" "$url"

# --- 1. closed model -------------------------------------------------------------------
cmd_note "wrk -t2 -c$conns -d$duration --timeout 5s --latency -H 'Authorization: Bearer TOKEN' http://127.0.0.1:PORT/mfa/authenticators"
[[ -n $oha_bin ]] && cmd_note "oha --no-tui --output-format json -c $conns -z $duration -H 'Authorization: Bearer TOKEN' http://127.0.0.1:PORT/mfa/authenticators"
cmd_note "mfa-conform load --profile profile.yaml --scenarios SCENARIOS --scenario authenticators --vus $conns --duration $duration   # and --scenario authenticators-naive"
for rep in $(seq 1 "$repeat"); do
    fresh_token
    log "part 1 (closed, $conns connections), run $rep/$repeat: wrk"
    run_wrk "closed-wrk-$rep" closed "$rep"
    if [[ -n $oha_bin ]]; then
        log "part 1, run $rep/$repeat: oha"
        run_oha "closed-oha-$rep" closed "$rep"
    fi
    log "part 1, run $rep/$repeat: mfa-conform load"
    run_ours "closed-ours-$rep" closed "$rep" authenticators --vus "$conns" --duration "$duration"
    log "part 1, run $rep/$repeat: mfa-conform load (naive scenario)"
    run_ours "closed-naive-$rep" closed "$rep" authenticators-naive --vus "$conns" --duration "$duration"
done

# --- 2. open model -----------------------------------------------------------------------
# The open-model rate must be one the whole machine sustains with every generator (the
# server, the generator and the neighbours share 2 cores): half the closed-model rate of the
# slowest generator (mean of its runs), or 20k/s if even that leaves room.
best=$(report get --results "$results" --field rps bench=closed | sort -g | tail -n1)
best=${best%.*}
slowest=$("$python" - "$results" <<'EOF'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in recs:
    if r.get("bench") == "closed" and r.get("variant", r["tool"]) in ("wrk", "oha", "ours"):
        by.setdefault(r.get("variant", r["tool"]), []).append(r["rps"])
name, rps = min(((k, statistics.mean(v)) for k, v in by.items()), key=lambda kv: kv[1])
print(f"{int(rps)} {name}")
EOF
)
read -r slowest_rps slowest_tool <<<"$slowest"
if [[ $rate_knob == auto ]]; then
    if ((slowest_rps / 2 >= 20000)); then
        rate=20000
        reason="20,000 req/s (the issue's figure): the slowest generator's closed-model runs averaged $slowest_rps req/s ($slowest_tool), so the server has headroom."
    else
        rate=$((slowest_rps / 2 / 1000 * 1000))
        ((rate >= 1000)) || rate=1000
        reason="$rate req/s, not 20,000: on these 2 shared cores the best closed-model run (any tool) reached $best req/s and the slowest generator ($slowest_tool) averaged $slowest_rps req/s; the server verifies an RS256 signature per request and shares the cores with the generator and the neighbours, so 20k/s cannot be sustained. Half the slowest generator's closed rate leaves headroom, so the schedule, not a saturated machine, sets the pace."
    fi
else
    rate=$rate_knob
    reason="$rate req/s (VSWRK_RATE); the best closed-model run reached $best req/s."
fi
soak_rate=${VSWRK_SOAK_RATE:-$((rate / 2 / 500 * 500))}
((soak_rate >= 500)) || soak_rate=500
report meta --meta "$meta" "open_rate=$rate" "open_rate_reason=$reason"
log "part 2 rate: $reason"
[[ -n $oha_bin ]] && cmd_note "oha --no-tui --output-format json -c $conns -z $duration -q $rate --latency-correction -H 'Authorization: Bearer TOKEN' http://127.0.0.1:PORT/mfa/authenticators"
cmd_note "mfa-conform load --profile profile.yaml --scenarios SCENARIOS --scenario authenticators --rate $rate/s --duration $duration --pool $open_pool"
for rep in $(seq 1 "$repeat"); do
    fresh_token
    if [[ -n $oha_bin ]]; then
        log "part 2 (open, $rate/s), run $rep/$repeat: oha"
        run_oha "open-oha-$rep" open "$rep" -q "$rate" --latency-correction
    fi
    log "part 2, run $rep/$repeat: mfa-conform load"
    run_ours "open-ours-$rep" open "$rep" authenticators --rate "$rate/s" --duration "$duration" --pool "$open_pool"
done

# --- 3. full flows -------------------------------------------------------------------------
cmd_note "mfa-conform load --profile profile.yaml --scenarios scenarios --scenario otp-login --vus $flow_vus --duration $duration"
for rep in $(seq 1 "$repeat"); do
    log "part 3 (otp-login flows, $flow_vus VUs), run $rep/$repeat"
    tag=flows-$rep
    measure "$tag" window "$bin" load --profile "$profile" --scenarios "$bench_root/scenarios" \
        --scenario otp-login --vus "$flow_vus" --duration "$duration" --report-dir "$work/reports/$tag"
    # A failed check here (e.g. a TOTP code that crossed a 30-s step boundary under load) is
    # a finding about the target or the scenario: reported, not fatal.
    record --tolerate-check-failures --tool ours --output "$work/reports/$tag/load.json" \
        bench=flows "rep=$rep" "${m[@]}"
done

# --- 4. soak -------------------------------------------------------------------------------
if ((soak)); then
    fresh_token
    cmd_note "mfa-conform load --profile profile.yaml --scenarios SCENARIOS --scenario authenticators --rate $soak_rate/s --duration $soak_duration --pool $open_pool   # RSS: ps -o rss= every 10 s"
    log "part 4 (soak): $soak_duration open model at $soak_rate/s, RSS every 10 s"
    tag=soak
    measure "$tag" soak "$bin" load --profile "$profile" --scenarios "$sc" \
        --scenario authenticators --rate "$soak_rate/s" --duration "$soak_duration" --pool "$open_pool" \
        --report-dir "$work/reports/$tag"
    record --tool ours --output "$work/reports/$tag/load.json" bench=soak rep=1 "rate=$soak_rate" "${m[@]}"
else
    report meta --meta "$meta" "soak_skipped=not requested"
fi

# --- 5. hot spots --------------------------------------------------------------------------
goal_missed() {
    "$python" - "$results" <<'EOF'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def avg(bench, tool, key, variant=None):
    xs = [r[key] for r in recs if r.get("bench") == bench and r["tool"] == tool
          and (variant is None or r.get("variant") == variant) and r.get(key) is not None]
    return statistics.mean(xs) if xs else None
ours, wrk = avg("closed", "ours", "rps", "ours"), avg("closed", "wrk", "rps")
o, h = avg("open", "ours", "gen_cpu_us_per_req"), avg("open", "oha", "gen_cpu_us_per_req")
missed = (ours and wrk and ours < 0.9 * wrk) or (o and h and o > h)
sys.exit(0 if missed else 1)
EOF
}
if [[ $hotspots == 1 ]] || { [[ $hotspots == auto ]] && goal_missed; }; then
    if command -v valgrind >/dev/null 2>&1 && command -v callgrind_annotate >/dev/null 2>&1; then
        fresh_token
        log "part 5: callgrind on a short closed run (8 VUs, 3000 requests; ~20 s)"
        cg_cmd=(load --profile "$profile" --scenarios "$sc" --scenario authenticators
            --vus 8 --iterations 3000 --duration 120s --report-dir "$work/reports/callgrind")
        valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$bin" "${cg_cmd[@]}" \
            >"$work/callgrind.stdout" 2>"$work/callgrind.stderr" || die "callgrind run failed (see $work/callgrind.stderr)"
        cg_requests=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"]["count"])' "$work/reports/callgrind/load.json")
        callgrind_annotate --inclusive=yes "$work/callgrind.out" >"$work/callgrind.inclusive.txt" 2>/dev/null
        callgrind_annotate --inclusive=no "$work/callgrind.out" >"$work/callgrind.exclusive.txt" 2>/dev/null
        cg_total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n {gsub(",", "", $1); n = $1} END {print n}'; }
        scale_args=()
        log "part 5: callgrind of wrk (3 s) and oha (3000 requests), for scale"
        valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.wrk.out" wrk -t1 -c8 -d3s \
            -H "Authorization: Bearer $token" "$url" >"$work/callgrind.wrk.stdout" 2>/dev/null || die "callgrind of wrk failed"
        scale_args+=(--scale "wrk:$(cg_total "$work/callgrind.wrk.out"):$(awk '/requests in/{print $1}' "$work/callgrind.wrk.stdout")")
        if [[ -n $oha_bin ]]; then
            valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.oha.out" "$oha_bin" --no-tui \
                --output-format json -c 8 -n 3000 -H "Authorization: Bearer $token" "$url" \
                >"$work/callgrind.oha.stdout" 2>/dev/null || die "callgrind of oha failed"
            scale_args+=(--scale "oha:$(cg_total "$work/callgrind.oha.out"):3000")
        fi
        strace_args=()
        if command -v strace >/dev/null 2>&1; then
            log "part 5: syscalls per request (strace -f -c; ours 20000 requests, wrk 3 s)"
            strace -f -c -o "$work/strace.ours.txt" "$bin" load --profile "$profile" --scenarios "$sc" \
                --scenario authenticators --vus "$conns" --iterations 20000 --duration 120s \
                --report-dir "$work/reports/strace" >/dev/null 2>&1 || die "strace run of ours failed"
            st_ours=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"]["count"])' "$work/reports/strace/load.json")
            strace -f -c -o "$work/strace.wrk.txt" wrk -t2 -c"$conns" -d3s -H "Authorization: Bearer $token" "$url" \
                >"$work/strace.wrk.out" 2>&1 || die "strace run of wrk failed"
            st_wrk=$(awk '/requests in/{print $1}' "$work/strace.wrk.out")
            strace_args=(--strace-ours "$work/strace.ours.txt" --strace-ours-requests "$st_ours"
                --strace-wrk "$work/strace.wrk.txt" --strace-wrk-requests "$st_wrk")
            if [[ -n $oha_bin ]]; then
                strace -f -c -o "$work/strace.oha.txt" "$oha_bin" --no-tui --output-format json -c "$conns" -n 20000 \
                    -H "Authorization: Bearer $token" "$url" >"$work/strace.oha.out" 2>&1 || die "strace run of oha failed"
                strace_args+=(--strace-oha "$work/strace.oha.txt" --strace-oha-requests 20000)
            fi
        fi
        cg_shown=${cg_cmd[*]//$work\//}
        hot=$("$python" "$helpers/hotspots.py" --inclusive "$work/callgrind.inclusive.txt" \
            --exclusive "$work/callgrind.exclusive.txt" --requests "$cg_requests" \
            --command "valgrind --tool=callgrind mfa-conform ${cg_shown//$bench_root\//}" "${scale_args[@]}" "${strace_args[@]}")
        report meta --meta "$meta" "hotspots=$hot"
    else
        report meta --meta "$meta" "hotspots=valgrind not installed: no callgrind profile (apt-get install valgrind)"
    fi
fi

# --- report --------------------------------------------------------------------------------
mkdir -p "$(dirname "$out_md")"
echo
report render --results "$results" --meta "$meta" --out "$out_md"
log "report written to $out_md"
