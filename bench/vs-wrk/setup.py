#!/usr/bin/env python3
"""Access token for the generator benchmark (bench/vs-wrk.sh), Python standard library only.

  setup.py token --base http://127.0.0.1:PORT [--scope "read:authenticators"]

One fresh user (POST /__control/users), password-realm login with audience <base>/mfa/
(403 mfa_required -> mfa_token), OTP enrollment (POST /mfa/associate), the mfa-otp grant
with the current TOTP code (RFC 6238, SHA1, 6 digits, 30 s, server clock offset included).
Checks that GET /mfa/authenticators answers 200 with the token, then prints the token.
Any unexpected answer: exit 1 with the endpoint, status and body.
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
import time
from urllib.parse import urlencode, urlsplit

CLIENT_ID = "mfa-conform-client"
CLIENT_SECRET = "mfa-conform-secret"
REALM = "Username-Password-Authentication"
GRANT_PASSWORD_REALM = "http://auth0.com/oauth/grant-type/password-realm"
GRANT_MFA_OTP = "http://auth0.com/oauth/grant-type/mfa-otp"


class SetupError(Exception):
    pass


def totp(secret_b32: str, at: float) -> str:
    cleaned = secret_b32.strip().replace(" ", "").upper().rstrip("=")
    key = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("token")
    p.add_argument("--base", required=True)
    p.add_argument("--scope", default="read:authenticators")
    args = parser.parse_args()

    parts = urlsplit(args.base)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise SetupError(f"--base must be http://HOST:PORT, got {args.base!r}")
    base = args.base.rstrip("/")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def call(method, path, *, form=None, json_body=None, bearer=None, expect=200):
        headers, body = {}, None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body)
            headers["Content-Type"] = "application/json"
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
        except (http.client.HTTPException, OSError) as e:
            raise SetupError(f"{method} {path}: connection failed: {e!r}") from e
        if resp.status != expect:
            raise SetupError(f"{method} {path}: expected HTTP {expect}, got {resp.status}: {text[:500]}")
        try:
            return json.loads(text) if text else None
        except ValueError as e:
            raise SetupError(f"{method} {path}: body is not JSON: {text[:500]}") from e

    offset = int(call("GET", "/__control/clock")["offset_seconds"])
    user = call("POST", "/__control/users", expect=201)
    login = call(
        "POST",
        "/oauth/token",
        form={
            "grant_type": GRANT_PASSWORD_REALM,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "username": user["username"],
            "password": user["password"],
            "realm": REALM,
            "audience": f"{base}/mfa/",
            "scope": args.scope,
        },
        expect=403,
    )
    if not isinstance(login, dict) or login.get("error") != "mfa_required" or not login.get("mfa_token"):
        raise SetupError(f"POST /oauth/token (password-realm): 403 without mfa_token: {login}")
    mfa_token = login["mfa_token"]
    assoc = call("POST", "/mfa/associate", json_body={"authenticator_types": ["otp"]}, bearer=mfa_token)
    if not isinstance(assoc, dict) or not assoc.get("secret"):
        raise SetupError(f"POST /mfa/associate: no secret in {assoc}")
    grant = call(
        "POST",
        "/oauth/token",
        form={
            "grant_type": GRANT_MFA_OTP,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "mfa_token": mfa_token,
            "otp": totp(assoc["secret"], time.time() + offset),
        },
    )
    token = grant.get("access_token") if isinstance(grant, dict) else None
    if not token:
        raise SetupError(f"POST /oauth/token (mfa-otp): no access_token in {grant}")
    listed = call("GET", "/mfa/authenticators", bearer=token)
    if not isinstance(listed, list):
        raise SetupError(f"GET /mfa/authenticators: expected a list, got {listed}")
    print(token)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SetupError as e:
        print(f"vs-wrk setup: {e}", file=sys.stderr)
        sys.exit(1)
