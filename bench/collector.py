#!/usr/bin/env python3
"""Collects what the benchmark scenarios hand over (Python standard library only).

  collector.py --out FILE

Listens on a free loopback port and prints `listening on http://127.0.0.1:PORT` as its
first stdout line. Every POST body it receives is appended to FILE as one line, and
answered 204. The scenarios in bench/scenarios/ (run by `mfa-conform run` or `load`, see
bench/lib.sh) post the values a benchmark needs here (an access token, an mfa-otp grant
body), because every report of mfa-conform redacts them. Runs until it is terminated.
"""

from __future__ import annotations

import argparse
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = open(args.out, "a", encoding="utf-8")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the generator's clients expect

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8")
            if "\n" in body or not body:
                self.send_error(400, "one non-empty line per request")
                return
            with lock:
                out.write(body + "\n")
                out.flush()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args) -> None:  # no access log: bodies are secrets
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
