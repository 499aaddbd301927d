#!/usr/bin/env python3
"""RSS and CPU sampler of bench/soak.sh (Python standard library only).

  sample.py --gen PID --server PID --gen-stderr FILE --out FILE.jsonl [--interval 10]
            [--duration SECONDS]

Waits until the generator (`mfa-conform load`, PID --gen) prints "provisioned in" on its
stderr (FILE): that is t = 0, the start of the measured run. Then, every --interval
seconds while the generator lives (and once more 1 s before --duration, the end of the
measured run, so the last sample is not lost to the generator's exit), appends one JSON
line to --out:

  {"t": seconds since t=0, "kind": "run", "gen_rss_kib", "gen_ticks", "srv_rss_kib",
   "srv_ticks", "busy_ticks", "total_ticks", "loadavg"}

RSS is VmRSS from /proc/PID/status; ticks are utime + stime from /proc/PID/stat (clock
ticks, see `getconf CLK_TCK`); busy/total ticks are the machine's, from /proc/stat.
Also writes one "after" line (the server only, once the generator has exited). Progress
goes to stderr.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # Fields after the command name (which is in parentheses and may hold spaces).
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[11]) + int(rest[12])  # utime, stime (fields 14 and 15)


def machine() -> tuple[int, int]:
    with open("/proc/stat") as f:
        cpu = f.readline().split()
    values = [int(v) for v in cpu[1:]]
    # user nice system idle iowait irq softirq steal
    busy = values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
    total = sum(values[:8])
    return busy, total


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def sample(kind: str, t: float, gen: int | None, server: int) -> dict:
    busy, total = machine()
    rec = {"t": round(t, 2), "kind": kind}
    if gen is not None:
        rec["gen_rss_kib"] = rss_kib(gen)
        rec["gen_ticks"] = ticks(gen)
    rec["srv_rss_kib"] = rss_kib(server)
    rec["srv_ticks"] = ticks(server)
    rec["busy_ticks"] = busy
    rec["total_ticks"] = total
    rec["loadavg"] = loadavg()
    return rec


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gen", type=int, required=True)
    p.add_argument("--server", type=int, required=True)
    p.add_argument("--gen-stderr", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--duration", type=float, default=0.0)
    args = p.parse_args()

    out = open(args.out, "a", buffering=1)

    def write(rec: dict) -> None:
        out.write(json.dumps(rec) + "\n")

    # t = 0: the generator has provisioned its pool and starts the measured run.
    while alive(args.gen):
        try:
            with open(args.gen_stderr, errors="replace") as f:
                if "provisioned in" in f.read():
                    break
        except OSError:
            pass
        time.sleep(0.05)
    else:
        print("soak: the generator exited before its run started", file=sys.stderr)
        write(sample("after", 0.0, None, args.server))
        return 1
    t0 = time.monotonic()
    if args.duration > 0:
        last = args.duration - 1
        times = [i * args.interval for i in range(int(last // args.interval) + 1) if i * args.interval < last - 1]
        times.append(last)
    else:
        times = itertools.count(0, args.interval)
    for at in times:
        while time.monotonic() < t0 + at and alive(args.gen):
            time.sleep(min(0.2, max(0.0, t0 + at - time.monotonic())))
        if not alive(args.gen):
            break
        rec = sample("run", time.monotonic() - t0, args.gen, args.server)
        if rec.get("gen_rss_kib") is None or not alive(args.gen):
            break
        write(rec)
        print(
            f"soak: {rec['t']:6.0f} s  generator RSS {rec['gen_rss_kib'] / 1024:6.1f} MiB"
            f"  server RSS {rec['srv_rss_kib'] / 1024:6.1f} MiB  load {rec['loadavg']}",
            file=sys.stderr,
        )
    # The server once the generator is gone.
    time.sleep(0.5)
    write(sample("after", time.monotonic() - t0, None, args.server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
