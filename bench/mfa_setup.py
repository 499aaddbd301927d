#!/usr/bin/env python3
"""Prepares the state that bench/server.sh measures (Python standard library only).

  token --base URL
      One fresh user, enrolled in OTP, logged in through the mfa-otp grant. Prints the
      access token (audience <base>/mfa/, scope "enroll read:authenticators
      remove:authenticators") on stdout, after checking that GET /mfa/authenticators
      answers 200 with it.

  pool --base URL --users K --out FILE
      K fresh users, each enrolled in OTP (associate + mfa-otp confirmation) and then
      logged in again for a fresh mfa_token. The server clock is then advanced by 30 s
      (POST /__control/clock), so every TOTP step used for the confirmations is in the
      past, and FILE gets one form body per user for the mfa-otp grant: that user's
      fresh mfa_token and the code of the server's current step. Each body succeeds
      exactly once: a benchmark must send each line once, within ~30 s (the server
      accepts the current and the previous 30-s step).

Any unexpected answer stops the script with the endpoint, status and body (exit 1).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

CLIENT_ID = "mfa-conform-client"
CLIENT_SECRET = "mfa-conform-secret"
REALM = "Username-Password-Authentication"
SCOPE = "enroll read:authenticators remove:authenticators"
GRANT_PASSWORD_REALM = "http://auth0.com/oauth/grant-type/password-realm"
GRANT_MFA_OTP = "http://auth0.com/oauth/grant-type/mfa-otp"
STEP = 30


class SetupError(Exception):
    pass


def totp(secret_b32: str, step: int) -> str:
    """RFC 6238 code (HMAC-SHA1, 6 digits) of `step` (a 30-s step number)."""
    cleaned = secret_b32.strip().replace(" ", "").upper().rstrip("=")
    key = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


class Client:
    """One keep-alive HTTP/1.1 connection per thread."""

    def __init__(self, base: str):
        parts = urlsplit(base)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise SetupError(f"--base must be http://HOST:PORT, got {base!r}")
        self.host, self.port = parts.hostname, parts.port
        self.base = base.rstrip("/")
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self.local.conn = conn
        return conn

    def request(self, method, path, *, form=None, json_body=None, bearer=None, expect=200):
        headers = {}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body)
            headers["Content-Type"] = "application/json"
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        conn = self._conn()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError) as e:
            # No retry: a resent grant or confirmation could be a second use of a code.
            conn.close()
            self.local.conn = None
            raise SetupError(f"{method} {path}: connection failed: {e!r}") from e
        text = data.decode("utf-8", "replace")
        if resp.status != expect:
            raise SetupError(
                f"{method} {path}: expected HTTP {expect}, got {resp.status}: {text[:500]}"
            )
        try:
            return json.loads(text) if text else None
        except ValueError as e:
            raise SetupError(f"{method} {path}: HTTP {resp.status} body is not JSON: {text[:500]}") from e

    # --- the flows -------------------------------------------------------------

    def clock_offset(self) -> int:
        return int(self.request("GET", "/__control/clock")["offset_seconds"])

    def provision(self) -> tuple[str, str]:
        user = self.request("POST", "/__control/users", expect=201)
        return user["username"], user["password"]

    def login(self, username: str, password: str) -> str:
        """password-realm login of an MFA user: the mfa_token of the 403 mfa_required."""
        body = self.request(
            "POST",
            "/oauth/token",
            form={
                "grant_type": GRANT_PASSWORD_REALM,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "username": username,
                "password": password,
                "realm": REALM,
                "audience": f"{self.base}/mfa/",
                "scope": SCOPE,
            },
            expect=403,
        )
        if not isinstance(body, dict) or body.get("error") != "mfa_required" or not body.get("mfa_token"):
            raise SetupError(f"POST /oauth/token (password-realm): 403 without mfa_token: {body}")
        return body["mfa_token"]

    def associate_otp(self, mfa_token: str) -> str:
        body = self.request(
            "POST", "/mfa/associate", json_body={"authenticator_types": ["otp"]}, bearer=mfa_token
        )
        if not body.get("secret"):
            raise SetupError(f"POST /mfa/associate: no secret in {body}")
        return body["secret"]

    def mfa_otp(self, mfa_token: str, otp: str) -> dict:
        return self.request(
            "POST",
            "/oauth/token",
            form={
                "grant_type": GRANT_MFA_OTP,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "mfa_token": mfa_token,
                "otp": otp,
            },
        )

    def enrolled_user(self, offset: int) -> tuple[str, str, str, dict]:
        """A fresh user with a confirmed OTP authenticator: (username, password, secret,
        the mfa-otp grant's answer). The confirmation uses the code of the server's
        current step (the server's clock is the wall clock plus `offset`)."""
        username, password = self.provision()
        mfa_token = self.login(username, password)
        secret = self.associate_otp(mfa_token)
        step = int(time.time() + offset) // STEP
        grant = self.mfa_otp(mfa_token, totp(secret, step))
        if not grant.get("access_token"):
            raise SetupError(f"POST /oauth/token (mfa-otp): no access_token in {grant}")
        return username, password, secret, grant


def cmd_token(args) -> int:
    client = Client(args.base)
    offset = client.clock_offset()
    _, _, _, grant = client.enrolled_user(offset)
    token = grant["access_token"]
    listed = client.request("GET", "/mfa/authenticators", bearer=token)
    if not (isinstance(listed, list) and any(a.get("active") for a in listed)):
        raise SetupError(f"GET /mfa/authenticators: expected an active authenticator, got {listed}")
    print(token)
    return 0


def cmd_pool(args) -> int:
    client = Client(args.base)
    offset = client.clock_offset()
    started = time.monotonic()

    def one(_):
        username, password, secret, _ = client.enrolled_user(offset)
        # A second login: the mfa_token the benchmark's grant will use.
        return client.login(username, password), secret

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        users = list(pool.map(one, range(args.users)))
    enrolled = time.monotonic() - started

    # Every confirmation used a step <= the current one; 30 s later all of them are past,
    # and the new current step is one no authenticator has accepted yet.
    client.request("POST", "/__control/clock", json_body={"advance_seconds": STEP}, expect=204)
    now = int(client.request("GET", "/__control/clock")["now"])
    step = now // STEP
    valid_for = (step + 2) * STEP - now  # the current and the previous step are accepted
    with open(args.out, "w") as out:
        for mfa_token, secret in users:
            out.write(
                urlencode(
                    {
                        "grant_type": GRANT_MFA_OTP,
                        "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET,
                        "mfa_token": mfa_token,
                        "otp": totp(secret, step),
                    }
                )
                + "\n"
            )
    print(
        json.dumps(
            {
                "users": len(users),
                "setup_seconds": round(time.monotonic() - started, 2),
                "enroll_seconds": round(enrolled, 2),
                "requests": 5 * len(users) + 2,
                "server_step": step,
                "codes_valid_for_seconds": valid_for,
            }
        )
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("token")
    p.add_argument("--base", required=True)
    p.set_defaults(func=cmd_token)
    p = sub.add_parser("pool")
    p.add_argument("--base", required=True)
    p.add_argument("--users", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_pool)
    args = parser.parse_args()
    try:
        return args.func(args)
    except SetupError as e:
        print(f"mfa_setup: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
