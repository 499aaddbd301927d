#!/usr/bin/env python3
"""Result bookkeeping for bench/server.sh (Python standard library only).

  record --results FILE --tool wrk|oha --output OUT [--expect N] [key=value ...]
      Reads the tool's output file OUT (wrk: the `RESULT {...}` line printed by the Lua
      script; oha: its --output-format json), checks it, and appends one JSON line to FILE
      with the key=value metadata. Exit 1, saying why, if any response was not 200, any
      socket error or timeout happened, or (with --expect) not exactly N responses came.

  meta --meta META.json key=value ... [list+=value ...]
      Merges run facts (values parsed as JSON where they parse) into META.json.

  render --results FILE --meta META.json --out MD
      Writes the Markdown report (summary table and run details) to MD, after what MD
      already holds (one file per day, runs in order), and prints the table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def parse_wrk(path: str) -> dict:
    with open(path) as f:
        lines = [l for l in f if l.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"report: no RESULT line in {path} (did the Lua script load?)")
    r = json.loads(lines[-1][len("RESULT ") :])
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    return {
        "requests": r["requests"],
        "responses_counted": r["responses_counted"],
        "rps": r["rps"],
        "p50_ms": r["p50_us"] / 1000,
        "p90_ms": r["p90_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "non200": r["non200"],
        "socket_errors": errors,
        "socket_errors_detail": {
            k: r[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
        },
        "elapsed_s": r.get("elapsed_s", r.get("duration_us", 0) / 1e6),
    }


def parse_oha(path: str) -> dict:
    with open(path) as f:
        r = json.load(f)
    summary = r["summary"]
    codes = {str(k): v for k, v in (r.get("statusCodeDistribution") or {}).items()}
    ok = codes.get("200", 0)
    total = sum(codes.values())
    errors = sum((r.get("errorDistribution") or {}).values())
    pct = r.get("latencyPercentiles") or {}

    def ms(key):
        v = pct.get(key)
        return None if v is None else v * 1000

    return {
        "requests": total,
        "responses_counted": total,
        "rps": summary["requestsPerSec"],
        "p50_ms": ms("p50"),
        "p90_ms": ms("p90"),
        "p99_ms": ms("p99"),
        "max_ms": summary["slowest"] * 1000 if summary.get("slowest") is not None else None,
        "non200": total - ok,
        "non200_detail": codes,
        # oha counts requests cut off at the end of -z as "aborted due to deadline".
        "socket_errors": sum(
            v for k, v in (r.get("errorDistribution") or {}).items() if "deadline" not in k
        ),
        "socket_errors_detail": r.get("errorDistribution") or {},
        "elapsed_s": summary.get("total"),
    }


def cmd_record(args) -> int:
    result = parse_wrk(args.output) if args.tool == "wrk" else parse_oha(args.output)
    meta = {}
    for item in args.meta:
        key, _, value = item.partition("=")
        try:
            meta[key] = json.loads(value)
        except ValueError:
            meta[key] = value
    row = {"tool": args.tool, **meta, **result}
    problems = []
    if result["non200"]:
        problems.append(f"{result['non200']} non-200 responses")
    if result["socket_errors"]:
        problems.append(f"socket errors {result['socket_errors_detail']}")
    if result["responses_counted"] != result["requests"]:
        problems.append(
            f"{result['responses_counted']} responses counted by the script, "
            f"{result['requests']} by the tool"
        )
    if args.expect is not None and result["responses_counted"] != args.expect:
        problems.append(f"{result['responses_counted']} responses, expected {args.expect}")
    row["ok"] = not problems
    with open(args.results, "a") as f:
        f.write(json.dumps(row) + "\n")
    label = " ".join(f"{k}={v}" for k, v in meta.items())
    p99 = "-" if result["p99_ms"] is None else f"{result['p99_ms']:.2f}"
    print(
        f"bench: {args.tool} {label}: {result['rps']:.0f} req/s, "
        f"p50 {result['p50_ms']:.2f} ms, p99 {p99} ms, "
        f"{result['requests']} requests, non-200 {result['non200']}"
    )
    if problems:
        print(f"bench: FAILED {args.tool} {label}: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def per_request(row, key):
    """CPU microseconds per response of the `key` CPU share (cores) of a run."""
    cores, rps = row.get(key), row.get("rps")
    if cores is None or not rps:
        return None
    return cores / rps * 1e6


def idle_estimate(row, cores=2):
    """Responses per second if the run's own CPU cost per response (server + load
    generator + interrupts) had all `cores` to itself: an estimate for an idle machine."""
    costs = [per_request(row, k) for k in ("server_cpu_cores", "client_cpu_cores", "irq_cpu_cores")]
    if any(c is None for c in costs) or sum(costs) <= 0:
        return None
    return cores / (sum(costs) / 1e6)


def cmd_render(args) -> int:
    with open(args.meta) as f:
        meta = json.load(f)
    rows = []
    with open(args.results) as f:
        rows = [json.loads(l) for l in f if l.strip()]
    table = [
        "| benchmark | tool | threads | conns | run | requests | req/s | p50 ms | p99 ms | errors "
        "| CPU cores: server / load gen / irq / steal / other | server CPU µs/req | server RSS after (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        errors = r["non200"] + r["socket_errors"]
        cpu = " / ".join(
            fmt(r.get(k), ".2f") for k in (
                "server_cpu_cores",
                "client_cpu_cores",
                "irq_cpu_cores",
                "steal_cpu_cores",
                "other_cpu_cores",
            )
        )
        rss = r.get("rss_after_kib")
        table.append(
            f"| {r.get('bench', '?')} | {r['tool']} | {r.get('threads', '-')} | {r.get('conns', '-')} "
            f"| {r.get('rep', '-')} | {r['requests']} | {fmt(r['rps'], ',.0f')} "
            f"| {fmt(r['p50_ms'], '.2f')} | {fmt(r['p99_ms'], '.2f')} | {errors} | {cpu} "
            f"| {fmt(per_request(r, 'server_cpu_cores'), '.0f')} "
            f"| {fmt(rss / 1024 if rss else None, '.1f')} |"
        )
    target = meta.get("auth_target_rps")
    auth_wrk = [r for r in rows if r.get("bench") == "authenticators" and r["tool"] == "wrk"]
    target_line = None
    if target and auth_wrk:
        met = sum(1 for r in auth_wrk if r["rps"] >= target)
        target_line = (
            f"Target for `GET /mfa/authenticators` (wrk): >= {target:,} req/s: "
            f"met in {met} of {len(auth_wrk)} runs "
            f"(best {max(r['rps'] for r in auth_wrk):,.0f}, worst {min(r['rps'] for r in auth_wrk):,.0f})."
        )
    lines = [f"# mfa-conform server benchmark, run of {meta.get('date', '?')}", ""]
    lines += ["## Summary", ""] + table + [""]
    if target_line:
        lines += [target_line, ""]
    estimates = []
    for r in rows:
        est = idle_estimate(r)
        if est is not None and (r.get("other_cpu_cores", 0) + r.get("steal_cpu_cores", 0)) > 0.1:
            estimates.append(
                f"- {r.get('bench')} {r['tool']} -t{r.get('threads')} -c{r.get('conns')} run {r.get('rep')}: "
                f"{r['rps']:,.0f} req/s measured while other processes/steal took "
                f"{r.get('other_cpu_cores', 0) + r.get('steal_cpu_cores', 0):.2f} cores; "
                f"~{est:,.0f} req/s if the run had both cores"
            )
    if estimates:
        lines += [
            "Runs that shared the machine with a neighbour, and what their own CPU cost per",
            "response (server + load generator + irq) would give with both cores to themselves",
            "(an estimate, not a measurement):",
            "",
        ] + estimates + [""]
    lines += ["## Server memory (RSS)", ""]
    for label, key in (
        ("at start", "rss_start_kib"),
        ("after the authenticators runs", "rss_after_auth_kib"),
        ("at the end", "rss_end_kib"),
    ):
        if meta.get(key):
            lines.append(f"- {label}: {meta[key] / 1024:.1f} MiB ({meta[key]} KiB)")
    lines.append("")
    lines += ["## Setup", ""]
    for key in (
        "commit",
        "machine",
        "cpu",
        "load_before",
        "wrk",
        "oha",
        "duration",
        "grant_pool_users",
        "grant_connections",
    ):
        if key in meta:
            lines.append(f"- {key}: {meta[key]}")
    for p in meta.get("pools", []):
        lines.append(
            f"- grant pool {p.get('rep')}: {p.get('users')} users prepared in {p.get('setup_seconds')} s "
            f"({p.get('requests')} setup requests), codes valid {p.get('codes_valid_for_seconds')} s"
        )
    lines.append("")
    lines += [
        "## How to read it",
        "",
        "- req/s: completed responses per second (wrk: over the whole run; grants: from the",
        "  first body sent to the last answer). p50/p99: wrk's latency percentiles.",
        "- errors: non-200 responses plus socket errors and timeouts; any error fails the run.",
        "- CPU cores: average cores busy during the run: the server process, the load",
        "  generator (wrk/oha), interrupt/softirq time (loopback networking), time stolen by",
        "  the hypervisor, and other processes on the machine. The machine has 2 cores in all;",
        "  other or steal above ~0.1 means a neighbour took CPU from the run, and its numbers",
        "  are low by roughly that share.",
        "- authenticators: one access token, RS256 verified on every request.",
        "- mfa-otp: each request a different user, fresh mfa_token and an unused TOTP code;",
        "  each answer carries one RS256-signed access token.",
        "",
    ]
    # One file per day: a later run of the same day is appended, newest last.
    mode = "a" if os.path.exists(args.out) and os.path.getsize(args.out) > 0 else "w"
    with open(args.out, mode) as f:
        if mode == "a":
            f.write("\n---\n\n")
        f.write("\n".join(lines))
    print("\n".join(table))
    if target_line:
        print(target_line)
    if estimates:
        print(
            f"WARNING: {len(estimates)} of {len(rows)} runs shared the CPU with other processes "
            "(see the CPU column; the report estimates their rate on an idle machine)."
        )
    return 0


def cmd_meta(args) -> int:
    """Merges key=value (values parsed as JSON when they parse) into the META file;
    `pools+={...}` appends to a list."""
    try:
        with open(args.meta) as f:
            meta = json.load(f)
    except FileNotFoundError:
        meta = {}
    for item in args.items:
        key, _, value = item.partition("=")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        if key.endswith("+"):
            meta.setdefault(key[:-1], []).append(parsed)
        else:
            meta[key] = parsed
    with open(args.meta, "w") as f:
        json.dump(meta, f, indent=1)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("record")
    p.add_argument("--results", required=True)
    p.add_argument("--tool", choices=["wrk", "oha"], required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--expect", type=int)
    p.add_argument("meta", nargs="*")
    p.set_defaults(func=cmd_record)
    p = sub.add_parser("render")
    p.add_argument("--results", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_render)
    p = sub.add_parser("meta")
    p.add_argument("--meta", required=True)
    p.add_argument("items", nargs="*")
    p.set_defaults(func=cmd_meta)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
