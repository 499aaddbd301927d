#!/usr/bin/env python3
"""Where `mfa-conform load` spends CPU, as Markdown (Python standard library only).

  hotspots.py --inclusive FILE --exclusive FILE --requests N
              [--strace-ours FILE --strace-ours-requests N --strace-wrk FILE --strace-wrk-requests N]

--inclusive / --exclusive: `callgrind_annotate --inclusive=yes|no` of a short run of
`mfa-conform load` under `valgrind --tool=callgrind`. Instruction counts are divided by
the run's requests (N), so the figures read as "instructions per request". The strace
files are `strace -f -c` summaries of a generator run each, to count syscalls per request.
"""

from __future__ import annotations

import argparse
import re

LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*)$")

# (label, regex on the function part of a callgrind_annotate line)
GROUPS = [
    ("whole flow: `load::driver::run_flow`", r"mfa_conform::load::driver::run_flow::\{\{closure\}\}$"),
    ("`engine::Session::run_step` (templating, request, checks, captures)", r"mfa_conform::engine::Session::run_step::\{\{closure\}\}$"),
    ("`reqwest::RequestBuilder::send` -> `Client::execute_request`", r"reqwest::async_impl::client::Client::execute_request$"),
    ("`reqwest::Client::request(method, &String)`: parses the URL string (`IntoUrl`)", r"reqwest::async_impl::client::Client::request$"),
    ("`url::ParseOptions::parse` (all URL parsing)", r"url::ParseOptions::parse$"),
    ("`url::parser::Parser::parse_host` (host `127.0.0.1`)", r"url::parser::Parser::parse_host$"),
    ("`idna::domain_to_ascii_from_cow` (IDNA on an IP host)", r"idna::domain_to_ascii_from_cow$"),
    ("reqwest `TowerRedirectPolicy::on_request` (re-parses the URI into a `Url`, even with redirects off)", r"TowerRedirectPolicy as tower_http::follow_redirect::policy::Policy.*on_request$"),
    ("`serde_json::from_slice` (every response body parsed into a `Value`)", r"^serde_json::de::from_slice$"),
    ("`<IndexMap as Clone>::clone` (session vars cloned per step)", r"<indexmap::inner::Core<K,V> as core::clone::Clone>::clone$"),
    ("`drop_in_place<serde_json::Value>`", r"core::ptr::drop_in_place<serde_json::value::Value>$"),
    ("`String::from_utf8_lossy` (response headers copied to `Vec<(String, String)>`)", r"<alloc::string::String>::from_utf8_lossy$"),
    ("`alloc::fmt::format` (format!: URL, `Bearer …`, errors)", r"^alloc::fmt::format::format_inner$"),
    ("`engine::template::Templates::render`", r"mfa_conform::engine::template::Templates::render$"),
    ("`engine::check::evaluate`", r"mfa_conform::engine::check::evaluate$"),
    ("`load::metrics::Recorder::step`", r"mfa_conform::load::metrics::Recorder::step$"),
    ("`load::spawn_ticker` (once a second: percentiles, new histograms, .hlog)", r"mfa_conform::load::spawn_ticker::\{\{closure\}\}$"),
    ("hyper HTTP/1 client connection (`Dispatcher::poll_catch`)", r"hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T>::poll_catch$"),
    ("hyper-util pool checkout (`Checkout::poll`)", r"hyper_util::client::legacy::pool::Checkout<T,K> as core::future::future::Future>::poll$"),
    ("`malloc`", r"^malloc$"),
    ("`free`", r"^free$"),
    ("`realloc`", r"^realloc$"),
]


def parse(path):
    rows = []
    total = None
    for line in open(path, encoding="utf-8", errors="replace"):
        m = LINE.match(line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        rest = m.group(3)
        if rest.startswith("PROGRAM TOTALS"):
            total = ir
            continue
        rest = re.sub(r"\s+\[[^\]]*\]\s*$", "", rest)
        file_, _, func = rest.partition(":")
        if not func:
            func = file_
        rows.append((ir, float(m.group(2)), file_, func.strip()))
    return total, rows


def short(func: str) -> str:
    return func if len(func) <= 140 else func[:137] + "..."


def strace_calls(path):
    calls = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        parts = line.split()
        if len(parts) >= 5 and parts[0].replace(".", "").isdigit() and parts[-1] not in ("total",):
            try:
                n = int(parts[3])
            except ValueError:
                continue
            calls[parts[-1]] = n
    return calls


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--inclusive", required=True)
    p.add_argument("--exclusive", required=True)
    p.add_argument("--requests", type=int, required=True)
    p.add_argument("--command", default="")
    p.add_argument("--strace-ours")
    p.add_argument("--strace-ours-requests", type=int)
    p.add_argument("--strace-wrk")
    p.add_argument("--strace-wrk-requests", type=int)
    p.add_argument("--strace-oha")
    p.add_argument("--strace-oha-requests", type=int)
    p.add_argument("--scale", action="append", default=[],
                   help="TOOL:INSTRUCTIONS:REQUESTS of another generator under callgrind (whole process)")
    a = p.parse_args()
    n = max(a.requests, 1)
    total, inc = parse(a.inclusive)
    _, exc = parse(a.exclusive)
    out = []
    w = out.append
    w(f"### callgrind: instructions per request ({a.requests} requests)")
    w("")
    if a.command:
        w(f"`{a.command}`")
        w("")
    w(f"Whole process: {total / n:,.0f} instructions per request (start-up and provisioning included).")
    for item in a.scale:
        tool, ins, req = item.split(":")
        ins, req = int(ins), max(int(req), 1)
        w(f"For scale, {tool} under callgrind on the same request: {ins / req:,.0f} instructions per request "
          f"({req} requests, whole process): ours/{tool} = {total / n / (ins / req):.1f}x.")
    w("")
    w("Inclusive cost of the functions that matter (a function's callees included; the rows overlap):")
    w("")
    w("| function | instructions / request | % of process |")
    w("|---|---|---|")
    for label, pattern in GROUPS:
        rx = re.compile(pattern)
        best = max((r for r in inc if rx.search(r[3])), default=None, key=lambda r: r[0])
        if best:
            w(f"| {label} | {best[0] / n:,.0f} | {best[1]:.1f}% |")
    w("")
    w("Top self cost (exclusive; instructions in the function itself):")
    w("")
    w("| instructions / request | % | function | source |")
    w("|---|---|---|---|")
    for ir, pct, file_, func in exc[:25]:
        src = re.sub(r"^.*/(registry/src/[^/]+/|rustc/[0-9a-f]+/)", "", file_)
        w(f"| {ir / n:,.0f} | {pct:.1f}% | `{short(func)}` | {src} |")
    w("")
    tools = [(t, getattr(a, f"strace_{t}"), getattr(a, f"strace_{t}_requests")) for t in ("ours", "wrk", "oha")]
    tools = [(t, f, r) for t, f, r in tools if f and r]
    if tools:
        w("### Syscalls per request (`strace -f -c`)")
        w("")
        data = {t: strace_calls(f) for t, f, _ in tools}
        reqs = {t: r for t, _, r in tools}
        names = sorted({k for d in data.values() for k in d}, key=lambda k: -max(data[t].get(k, 0) / reqs[t] for t in data))
        names = [k for k in names if max(data[t].get(k, 0) / reqs[t] for t in data) >= 0.01][:12]
        w("| syscall | " + " | ".join(f"{t} ({reqs[t]} req)" for t in data) + " |")
        w("|---|" + "---|" * len(data))
        for k in names:
            w(f"| {k} | " + " | ".join(f"{data[t].get(k, 0) / reqs[t]:.2f}" for t in data) + " |")
        w("| **all** | " + " | ".join(f"**{sum(data[t].values()) / reqs[t]:.2f}**" for t in data) + " |")
        w("")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
