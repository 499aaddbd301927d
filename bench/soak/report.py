#!/usr/bin/env python3
"""Results of bench/soak.sh (Python standard library only).

  report.py --samples S.jsonl --load-json load.json --meta META.json --out FILE.md
            [--early 60] [--max-growth 10] [--clk-tck 100]

S.jsonl comes from sample.py (RSS and CPU ticks of the generator and the server every
10 s), load.json from `mfa-conform load`, META.json holds the setup facts (written by
soak.sh). Writes FILE.md, prints a summary, and exits 1 when the soak failed:
  - either process's RSS at the end exceeds its value at the early sample (the first
    sample at or after --early seconds) by more than --max-growth percent;
  - the run reported any error: request errors (by kind), failed flows, flows with check
    failures, or dropped starts (the scheduled load did not run);
  - the generator exited non-zero (meta gen_rc).
"""

from __future__ import annotations

import argparse
import json
import sys

MFA_TOKEN_SECONDS = 600  # src/server/store.rs MFA_TOKEN_SECONDS
PURGE_EVERY = 5  # src/server/mod.rs spawn_purger
VERIFIED_CACHE = 100_000  # src/server/jwt.rs VERIFIED_CACHE


def mib(kib) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


def fmt_ms(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", required=True)
    p.add_argument("--load-json", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--early", type=float, default=60.0)
    p.add_argument("--max-growth", type=float, default=10.0)
    p.add_argument("--clk-tck", type=int, default=100)
    args = p.parse_args()

    meta = json.load(open(args.meta))
    samples = [json.loads(l) for l in open(args.samples) if l.strip()]
    before = meta.get("srv_rss_before_kib")
    after = next((s for s in samples if s["kind"] == "after"), None)
    run = [s for s in samples if s["kind"] == "run"]
    try:
        load = json.load(open(args.load_json))
    except (OSError, ValueError) as e:
        load = None
        load_error = str(e)
    failures: list[str] = []
    notes: list[str] = []

    rate = float(meta["rate"])
    hz = args.clk_tck

    # Cumulative flows at time t, from load.json's per-second timeline.
    timeline = (load or {}).get("timeline", [])

    def flows_by(t: float) -> int:
        return sum(p["flows"] for p in timeline if p["t"] <= t + 0.5)

    def flows_between(a: float, b: float) -> int:
        return sum(p["flows"] for p in timeline if a + 0.5 < p["t"] <= b + 0.5)

    pool = ((load or {}).get("options") or {}).get("pool_size", 0)

    def sessions_at(t: float) -> int:
        # Live mfa_token sessions: one per login (pool setup, the calibration flow, every
        # measured flow), dropped by the purger once 600 s old.
        setup = pool + 2 if t < MFA_TOKEN_SECONDS - PURGE_EVERY else 0
        return setup + flows_between(t - MFA_TOKEN_SECONDS, t)

    def cache_at(t: float) -> int:
        if meta.get("list_with", "access_token") != "access_token":
            return 0  # the flow lists with its mfa_token: no access token is presented
        # One entry per access token presented, dropped by the purger when the token
        # expires (600 s after issue, like the mfa_token).
        return min(flows_between(t - MFA_TOKEN_SECONDS, t) + (1 if t < MFA_TOKEN_SECONDS else 0), VERIFIED_CACHE)

    # --- early and end samples ---------------------------------------------------------
    early = next((s for s in run if s["t"] >= args.early - 1), None)
    end = run[-1] if run else None
    if not run:
        failures.append("no RSS sample was taken during the run (the generator exited before or at once)")
    elif early is None or early is end:
        failures.append(f"the run was too short for an early sample at {args.early:.0f} s and a later end sample")
    rss_rows = []
    if early is not None and end is not None and early is not end:
        dflows = max(flows_between(early["t"], end["t"]), 1)
        for name, key in (("generator (`mfa-conform load`)", "gen_rss_kib"), ("server (`mfa-conform serve`)", "srv_rss_kib")):
            e, z = early.get(key), end.get(key)
            peak = max(s.get(key) or 0 for s in run)
            if not e or not z:
                failures.append(f"{name}: RSS missing in the samples")
                continue
            ratio = z / e
            verdict = "ok" if ratio <= 1 + args.max_growth / 100 else f"**grew > {args.max_growth:g}%**"
            if ratio > 1 + args.max_growth / 100:
                failures.append(
                    f"{name}: RSS {mib(e)} MiB at {early['t']:.0f} s -> {mib(z)} MiB at {end['t']:.0f} s "
                    f"(x{ratio:.3f}, +{(z - e) / 1024:.1f} MiB, {(z - e) * 1024 / dflows:.0f} bytes per flow)"
                )
            rss_rows.append((name, e, z, ratio, (z - e) * 1024 / dflows, peak, verdict))

    # --- CPU --------------------------------------------------------------------------
    cpu = {}
    if len(run) >= 2:
        a, b = run[0], run[-1]
        wall = b["t"] - a["t"]
        if wall > 0:
            gen = (b["gen_ticks"] - a["gen_ticks"]) / hz
            srv = (b["srv_ticks"] - a["srv_ticks"]) / hz
            busy = (b["busy_ticks"] - a["busy_ticks"]) / hz
            ncpu = (b["total_ticks"] - a["total_ticks"]) / hz / wall
            flows = max(flows_between(a["t"], b["t"]), 1)
            cpu = {
                "wall": wall,
                "gen_cores": gen / wall,
                "srv_cores": srv / wall,
                "busy_cores": busy / wall,
                "other_cores": max(busy - gen - srv, 0) / wall,
                "ncpu": ncpu,
                "gen_ms_per_flow": gen * 1000 / flows,
                "srv_ms_per_flow": srv * 1000 / flows,
                "from": a["t"],
                "to": b["t"],
            }

    # --- load.json --------------------------------------------------------------------
    if load is None:
        failures.append(f"no load.json ({load_error})")
        load = {}
    flows = load.get("flows", {})
    reqs = load.get("requests", {})
    starts = load.get("starts", {})
    errors_by_kind = load.get("errors_by_kind") or {}
    checks = load.get("check_failures") or []
    if reqs.get("errors"):
        failures.append(f"{reqs['errors']} request errors: " + ", ".join(f"{k} {v}" for k, v in errors_by_kind.items()))
    elif errors_by_kind:
        failures.append("errors by kind: " + ", ".join(f"{k} {v}" for k, v in errors_by_kind.items()))
    if flows.get("failed"):
        failures.append(f"{flows['failed']} failed flows")
    if flows.get("with_check_failures"):
        failures.append(f"{flows['with_check_failures']} flows with check failures")
    for c in checks:
        failures.append(f"check {c.get('requirement')} ({c.get('severity')}) failed {c.get('count')} times, e.g. {c.get('sample')}")
    dropped = (starts.get("dropped_pool") or 0) + (starts.get("dropped_in_flight") or 0)
    if dropped:
        failures.append(f"{dropped} starts dropped (pool {starts.get('dropped_pool')}, in flight {starts.get('dropped_in_flight')})")
    if load.get("interrupted"):
        failures.append("the run was interrupted")
    gen_rc = int(meta.get("gen_rc", 0))
    if gen_rc != 0:
        failures.append(f"`mfa-conform load` exited {gen_rc}")

    # --- markdown ---------------------------------------------------------------------
    md: list[str] = []
    verdict = "PASS" if not failures else "FAIL"
    md.append(f"# Soak: `mfa-conform load` against `mfa-conform serve`, {meta['duration']} at {rate:g} flows/s")
    md.append("")
    md.append(f"Generated by `bench/soak.sh{' --quick' if meta.get('quick') == '1' else ''}` on {meta['date']}. **{verdict}**"
              + (":" if failures else ": RSS flat within "
                 f"{args.max_growth:g}% for both processes, no errors, no dropped starts."))
    for f in failures:
        md.append(f"- {f}")
    md.append("")
    md.append("## Setup")
    md.append("")
    for key, label in (
        ("commit", "commit"),
        ("machine", "machine"),
        ("cpu", "cpu"),
        ("bin", "binary"),
        ("rate_note", "rate"),
        ("duration", "duration (measured)"),
        ("flow", "flow"),
        ("priority", "priority"),
    ):
        if meta.get(key):
            md.append(f"- {label}: {meta[key]}")
    if load.get("options"):
        o = load["options"]
        md.append(f"- pool: {o.get('pool_size')} users provisioned (the generator's own sizing for one-time TOTP codes: "
                  f"{o.get('pool_needed')} needed), before t = 0; provisioning took {meta.get('provision_s', '?')} s")
    md.append(f"- samples: every {meta.get('interval', 10)} s from t = 0 (the generator's \"provisioned in\" line, the start of "
              f"the measured run); **start value = the sample at t = {early['t']:.0f} s** (after the first "
              f"{args.early:g} s of warm-up), **end value = the last sample while the generator ran** "
              f"(t = {end['t']:.0f} s)" if early and end else "- samples: too few")
    md.append(f"- machine load average (1, 5, 15 min): before {meta.get('load_before')}, after {meta.get('load_after')}")
    if meta.get("commands"):
        md.append("- commands:")
        md.append("")
        md.append("```sh")
        md.extend(meta["commands"])
        md.append("```")
    md.append("")

    md.append("## Memory (RSS) over time")
    md.append("")
    md.append("`sessions` and `token cache` are what the server keeps *by design*, computed from the flows the "
              "generator completed: live `mfa_token` sessions (one per login, purged 600 s after issue) and "
              f"entries of the verified-access-token cache (one per access token presented, purged when the "
              f"token expires 600 s after issue; at most {VERIFIED_CACHE:,}).")
    md.append("")
    md.append("| t (s) | flows so far | generator RSS MiB | server RSS MiB | server: sessions (est.) | server: token cache (est.) | load avg |")
    md.append("|---|---|---|---|---|---|---|")
    if before:
        md.append(f"| idle server, before the generator started | 0 | - | {mib(int(before))} | 0 | 0 | {meta.get('load_before')} |")
    for s in run:
        mark = " (start)" if s is early else (" (end)" if s is end else "")
        md.append(f"| {s['t']:.0f}{mark} | {flows_by(s['t']):,} | {mib(s.get('gen_rss_kib'))} | {mib(s.get('srv_rss_kib'))} | "
                  f"{sessions_at(s['t']):,} | {cache_at(s['t']):,} | {s.get('loadavg')} |")
    if after:
        md.append(f"| after the generator exited ({after['t']:.0f}) | {flows.get('count', 0):,} | - | {mib(after.get('srv_rss_kib'))} | "
                  f"{sessions_at(after['t']):,} | {cache_at(after['t']):,} | {after.get('loadavg')} |")
    md.append("")
    md.append(f"| process | start (t = {early['t']:.0f} s) MiB | end (t = {end['t']:.0f} s) MiB | end / start | growth per flow (bytes) | max MiB | limit +{args.max_growth:g}% |"
              if early and end else "| process | start | end | end / start | growth per flow | max | limit |")
    md.append("|---|---|---|---|---|---|---|")
    for name, e, z, ratio, per_flow, peak, v in rss_rows:
        md.append(f"| {name} | {mib(e)} | {mib(z)} | {ratio:.3f} | {per_flow:.0f} | {mib(peak)} | {v} |")
    md.append("")
    if meta.get("growth_note"):
        md.append(meta["growth_note"])
        md.append("")

    md.append("## Throughput and starts")
    md.append("")
    duration_s = load.get("duration_s") or 0
    md.append("| scheduled flows | rate scheduled | flows/s achieved | requests/s | flows | late starts (> 10 ms) | dropped: no pool user | dropped: max in flight |")
    md.append("|---|---|---|---|---|---|---|---|")
    if flows:
        md.append(f"| {starts.get('scheduled', 0):,} | {rate:g}/s over {duration_s:.1f} s | {flows.get('throughput_per_s', 0):.2f} | "
                  f"{reqs.get('throughput_per_s', 0):.1f} | {flows.get('count', 0):,} | {starts.get('late', 0):,} "
                  f"({100 * starts.get('late', 0) / max(starts.get('scheduled', 1), 1):.2f}%) | {starts.get('dropped_pool', 0)} | "
                  f"{starts.get('dropped_in_flight', 0)} |")
    if timeline:
        per_s = [p["flows"] for p in timeline]
        md.append("")
        md.append(f"Per-second flows: min {min(per_s)}, max {max(per_s)}; seconds with any error: "
                  f"{sum(1 for p in timeline if p['errors'])}. Per-second flow p99 (ms): max {max(p['p99_ms'] for p in timeline):.2f}, "
                  f"median {sorted(p['p99_ms'] for p in timeline)[len(timeline) // 2]:.2f}.")
    md.append("")

    md.append("## Latency (ms)")
    md.append("")
    md.append("| | count | p50 | p90 | p99 | p99.9 | max |")
    md.append("|---|---|---|---|---|---|---|")
    rows = []
    if flows.get("latency"):
        rows.append(("flow (from the intended start)", flows["latency"]))
    if flows.get("latency_uncorrected"):
        rows.append(("flow (uncorrected, from the actual start)", flows["latency_uncorrected"]))
    for s in load.get("steps", []):
        rows.append((f"step `{s['name']}`", s["latency"]))
    for label, l in rows:
        md.append(f"| {label} | {l.get('count', 0):,} | {fmt_ms(l.get('p50'))} | {fmt_ms(l.get('p90'))} | {fmt_ms(l.get('p99'))} | "
                  f"{fmt_ms(l.get('p999'))} | {fmt_ms(l.get('max'))} |")
    md.append("")

    md.append("## Errors")
    md.append("")
    md.append(f"- request errors: {reqs.get('errors', '?')}; by kind: "
              + (", ".join(f"`{k}` {v}" for k, v in errors_by_kind.items()) or "none"))
    md.append(f"- failed flows: {flows.get('failed', '?')}; flows with check failures: {flows.get('with_check_failures', '?')}")
    md.append("- check failures: " + ("none" if not checks else ""))
    for c in checks:
        md.append(f"  - `{c.get('requirement')}` ({c.get('severity')}): {c.get('count')}, e.g. {c.get('sample')}")
    if load.get("warnings"):
        md.append("- generator warnings: " + "; ".join(load["warnings"]))
    md.append(f"- `mfa-conform load` exit code: {gen_rc}")
    md.append("")

    md.append("## CPU")
    md.append("")
    if cpu:
        md.append(f"From t = {cpu['from']:.0f} s to t = {cpu['to']:.0f} s (utime + stime from /proc/PID/stat; the machine "
                  f"from /proc/stat, {cpu['ncpu']:.1f} cores):")
        md.append("")
        md.append("| | cores used | CPU ms per flow |")
        md.append("|---|---|---|")
        md.append(f"| generator (`mfa-conform load`) | {cpu['gen_cores']:.3f} | {cpu['gen_ms_per_flow']:.3f} |")
        md.append(f"| server (`mfa-conform serve`) | {cpu['srv_cores']:.3f} | {cpu['srv_ms_per_flow']:.3f} |")
        md.append(f"| everything else on the machine (other jobs, irq) | {cpu['other_cores']:.3f} | |")
        md.append(f"| machine busy in all | {cpu['busy_cores']:.3f} of {cpu['ncpu']:.1f} | |")
        md.append("")
        if cpu["srv_ms_per_flow"] > 0:
            sat = 1000 / cpu["srv_ms_per_flow"]
            md.append(f"Headroom: at {cpu['srv_ms_per_flow']:.2f} ms of server CPU per flow, one core of server would carry "
                      f"~{sat:,.0f} flows/s; the generator needs {cpu['gen_ms_per_flow']:.2f} ms per flow. The soak rate "
                      f"{rate:g}/s is {100 * rate / sat:.0f}% of one core's worth of server, so the schedule, not a "
                      f"saturated machine, set the pace.")
            md.append("")
    else:
        md.append("Too few samples.")
        md.append("")

    if meta.get("notes"):
        md.append("## Notes")
        md.append("")
        for n in meta["notes"]:
            md.append(f"- {n}")
        md.append("")

    text = "\n".join(md).rstrip() + "\n"
    with open(args.out, "w") as f:
        f.write(text)

    # --- summary ----------------------------------------------------------------------
    print(f"soak {verdict}: {meta['duration']} at {rate:g} flows/s, {flows.get('count', 0):,} flows "
          f"({flows.get('throughput_per_s', 0):.2f}/s), late {starts.get('late', 0)}, dropped {dropped}")
    for name, e, z, ratio, per_flow, peak, v in rss_rows:
        print(f"  {name}: RSS {mib(e)} -> {mib(z)} MiB (x{ratio:.3f}, {per_flow:.0f} bytes/flow)")
    if flows.get("latency"):
        l = flows["latency"]
        print(f"  flow latency p50 {l['p50']:.2f} ms, p99 {l['p99']:.2f} ms, max {l['max']:.2f} ms")
    if cpu:
        print(f"  CPU: generator {cpu['gen_cores']:.3f} cores, server {cpu['srv_cores']:.3f} cores, other {cpu['other_cores']:.3f}")
    print(f"  errors {reqs.get('errors', '?')}, failed flows {flows.get('failed', '?')}, check failures {len(checks)}")
    for f in failures:
        print(f"soak: FAILED: {f}", file=sys.stderr)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
