#!/usr/bin/env python3
"""Real-client interop test: drive `mfa-conform serve` with Auth0's official
Python SDK (`auth0-server-python`, pinned in requirements.txt).

Every MFA API call goes through the SDK's own, unmodified `MfaClient`
(obtained the way applications get it: `ServerClient(...).mfa`):

  enroll_authenticator   -> POST   /mfa/associate
  challenge_authenticator-> POST   /mfa/challenge
  verify                 -> POST   /oauth/token (mfa-otp / mfa-oob grants)
  list_authenticators    -> GET    /mfa/authenticators

Plain httpx is used only where the SDK has no method:
  * the password-realm login that yields the mfa_token (the SDK has no
    resource-owner-password login);
  * DELETE /mfa/authenticators/{id} (MfaClient 1.0.0b20 has no delete method);
  * the server's test control API (/__control/...).

The SDK never accepts a raw mfa_token: its methods take the JWE-encrypted
token that the SDK itself produces when it sees an `mfa_required` error.  We
hand the 403 body of the login to the SDK's own handler
(`MfaClient._raise_mfa_required`, which the SDK's passwordless and passkey
logins call on an `mfa_required` response) and take the encrypted token from
the MfaRequiredError it raises.

TLS: the SDK builds `httpx.AsyncClient()` with default verification, and httpx
(trust_env=True) loads the CA bundle named by SSL_CERT_FILE.  `--cacert`
sets SSL_CERT_FILE before any client is created.

Flows (each counted once):
  otp: fresh user -> login -> enroll OTP -> TOTP -> verify -> list (active)
       -> delete -> list (gone)
  sms: fresh user -> login -> enroll SMS -> read code from control API ->
       verify (oob_code + binding_code) -> list (active sms)
       -> login again -> challenge the sms authenticator -> verify the new code

Prints one line per step, then `N passed, M failed`; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import secrets
import sys
import traceback
import warnings
from typing import Any
from urllib.parse import quote, urlsplit

# The SDK imports Authlib's httpx integration, which warns on import that it is
# deprecated (Authlib 1.9).  authlib.deprecate installs an "always" filter at
# import, so ours must be installed after it to take precedence.
import authlib.deprecate  # noqa: E402,F401

warnings.filterwarnings("ignore", message="The httpx module is deprecated")

import httpx  # noqa: E402
import pyotp  # noqa: E402
from auth0_server_python.auth_server import MfaClient, ServerClient  # noqa: E402
from auth0_server_python.auth_types import (  # noqa: E402
    AuthenticatorResponse,
    ChallengeResponse,
    MfaVerifyResponse,
    OobEnrollmentResponse,
    OtpEnrollmentResponse,
)
from auth0_server_python.error import MfaRequiredError  # noqa: E402

PASSWORD_REALM_GRANT = "http://auth0.com/oauth/grant-type/password-realm"
MFA_SCOPE = "enroll read:authenticators remove:authenticators"


class StepFailed(Exception):
    pass


def describe_exc(e: BaseException) -> str:
    """One-line description of an exception and its cause chain (the SDK
    wraps transport/parse errors with `raise ... from e`)."""
    parts = []
    seen = 0
    cur: BaseException | None = e
    while cur is not None and seen < 6:
        text = f"{type(cur).__name__}: {cur}"
        cause = getattr(cur, "cause", None)  # MfaApiError keeps the error body here
        if isinstance(cause, dict) and cause:
            text += f" [error body: {json.dumps(cause, sort_keys=True)}]"
        text = text.replace("\n", " | ")
        if not parts or parts[-1] != text:
            parts.append(text)
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return " <- caused by ".join(parts)


def short(value: Any, n: int = 24) -> str:
    """A secret-free stand-in for a token or code in the log: its length only."""
    del n
    return f"<{len(str(value))} chars>"


def jwt_claims(token: str) -> dict[str, Any] | None:
    """Unverified JWT payload, or None when the token is not a JWT."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return claims if isinstance(claims, dict) else None
    except Exception:
        return None


class Flow:
    """Runs the steps of one flow; the first failing step ends the flow."""

    def __init__(self, name: str):
        self.name = name
        self.ok = True

    async def step(self, title: str, make):
        """Run `make()` (returning an awaitable) unless an earlier step failed."""
        if not self.ok:
            return None
        try:
            result = await make()
        except StepFailed as e:
            self.ok = False
            print(f"FAIL [{self.name}] {title}: {e}", flush=True)
            return None
        except Exception as e:  # SDK errors, transport errors, bugs
            self.ok = False
            print(f"FAIL [{self.name}] {title}: {describe_exc(e)}", flush=True)
            if os.environ.get("INTEROP_TRACEBACK"):
                traceback.print_exc()
            return None
        detail = ""
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
            result, detail = result
        print(f"ok   [{self.name}] {title}" + (f": {detail}" if detail else ""), flush=True)
        return result


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise StepFailed(msg)


class Harness:
    def __init__(self, args: argparse.Namespace):
        self.base_url = args.base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme != "https" or not parts.netloc:
            raise SystemExit(f"--base-url must be https://host[:port], got {args.base_url!r}")
        # The SDK forms every URL as f"https://{domain}" (mfa_client.py:136),
        # so the domain is host:port.
        self.domain = parts.netloc
        self.audience = f"https://{self.domain}/mfa/"
        self.client_id = args.client_id
        self.client_secret = args.client_secret
        self.realm = args.realm
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=15.0)
        server = ServerClient(
            domain=self.domain,
            client_id=self.client_id,
            client_secret=self.client_secret,
            secret=secrets.token_urlsafe(32),  # key for the SDK's encrypted mfa_token
        )
        self.mfa: MfaClient = server.mfa
        assert isinstance(self.mfa, MfaClient)

    async def aclose(self):
        await self.http.aclose()

    # ---- plain-HTTP helpers (no SDK equivalent) ---------------------------

    async def create_user(self) -> tuple[dict, str]:
        r = await self.http.post("/__control/users")
        check(r.status_code == 201, f"POST /__control/users -> {r.status_code}, want 201; body={r.text[:300]!r}")
        user = r.json()
        check(isinstance(user, dict) and user.get("username") and user.get("password"),
              f"POST /__control/users body lacks username/password: {r.text[:300]!r}")
        return user, f"username={user['username']}"

    async def login(self, user: dict) -> tuple[str, str]:
        """password-realm login; returns the SDK-encrypted mfa_token."""
        form = {
            "grant_type": PASSWORD_REALM_GRANT,
            "username": user["username"],
            "password": user["password"],
            "realm": self.realm,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "audience": self.audience,
            "scope": MFA_SCOPE,
        }
        r = await self.http.post("/oauth/token", data=form)
        check(r.status_code == 403,
              f"POST /oauth/token (password-realm) -> {r.status_code}, want 403; body={r.text[:300]!r}")
        ctype = r.headers.get("content-type", "")
        check(ctype.startswith("application/json"), f"mfa_required response content-type {ctype!r}, want application/json")
        body = r.json()
        check(body.get("error") == "mfa_required", f"error={body.get('error')!r}, want 'mfa_required'; body={r.text[:300]!r}")
        check(isinstance(body.get("mfa_token"), str) and body["mfa_token"],
              f"mfa_required body has no mfa_token: {r.text[:300]!r}")
        # Let the SDK process the mfa_required body exactly as it does for its
        # own token requests (also parses `mfa_requirements` if present).
        try:
            await self.mfa._raise_mfa_required(
                body, audience=self.audience, scope=MFA_SCOPE,
                default_description="Multifactor authentication required",
            )
        except MfaRequiredError as e:
            check(bool(e.mfa_token), "SDK raised MfaRequiredError without an encrypted token")
            ctx = self.mfa.decrypt_mfa_token(e.mfa_token)
            check(ctx.mfa_token == body["mfa_token"], "SDK-encrypted token does not round-trip")
            reqs = e.mfa_requirements.model_dump(exclude_none=True) if e.mfa_requirements else None
            return e.mfa_token, f"403 mfa_required, mfa_token={short(body['mfa_token'])}, mfa_requirements={reqs}"
        raise StepFailed("SDK did not raise MfaRequiredError for the mfa_required body")

    async def messages(self, to: str) -> list[dict]:
        r = await self.http.get("/__control/messages", params={"to": to})
        check(r.status_code == 200, f"GET /__control/messages -> {r.status_code}, want 200; body={r.text[:300]!r}")
        msgs = r.json()
        check(isinstance(msgs, list), f"GET /__control/messages body is not a list: {r.text[:300]!r}")
        return msgs

    async def delete_authenticator(self, access_token: str, authenticator_id: str) -> tuple[None, str]:
        r = await self.http.delete(
            f"/mfa/authenticators/{quote(authenticator_id, safe='')}",
            headers={"Authorization": f"Bearer {access_token}"},
        )
        check(r.status_code in (200, 204),
              f"DELETE /mfa/authenticators/{authenticator_id} -> {r.status_code}, want 204; body={r.text[:300]!r}")
        return None, f"HTTP {r.status_code} (plain httpx: MfaClient has no delete method)"

    # ---- SDK-driven steps -------------------------------------------------

    async def enroll(self, mfa_token: str, **opts) -> Any:
        return await self.mfa.enroll_authenticator({"mfa_token": mfa_token, **opts})

    async def verify(self, mfa_token: str, **opts) -> tuple[MfaVerifyResponse, str]:
        resp = await self.mfa.verify({"mfa_token": mfa_token, **opts})
        check(isinstance(resp, MfaVerifyResponse), f"verify returned {type(resp).__name__}")
        check(bool(resp.access_token), "verify: empty access_token")
        check(resp.token_type.lower() == "bearer", f"verify: token_type={resp.token_type!r}, want Bearer")
        check(resp.expires_in > 0, f"verify: expires_in={resp.expires_in}")
        claims = jwt_claims(resp.access_token) or {}
        scope = resp.scope if resp.scope is not None else claims.get("scope")
        granted = set((scope or "").split())
        missing = set(MFA_SCOPE.split()) - granted
        check(not missing, f"verify: access token lacks scopes {sorted(missing)} (scope={scope!r})")
        aud = claims.get("aud")
        if aud is not None:
            auds = aud if isinstance(aud, list) else [aud]
            check(self.audience in auds, f"verify: access token aud={aud!r}, want {self.audience!r}")
        return resp, f"access_token={short(resp.access_token)}, expires_in={resp.expires_in}, scope={scope!r}"

    async def list_auth(self, mfa_token: str) -> tuple[list[AuthenticatorResponse], str]:
        auths = await self.mfa.list_authenticators({"mfa_token": mfa_token})
        check(isinstance(auths, list), f"list_authenticators returned {type(auths).__name__}")
        summary = ", ".join(
            f"{a.id}({a.authenticator_type}{'/' + a.oob_channel if a.oob_channel else ''},"
            f"active={a.active})" for a in auths
        )
        return auths, f"[{summary}]"

    # ---- flows -------------------------------------------------------------

    async def flow_otp(self) -> bool:
        f = Flow("otp")
        user = await f.step("create user (POST /__control/users)", self.create_user)
        token = await f.step("login password-realm -> mfa_required", lambda: self.login(user))

        async def enroll_otp():
            r = await self.enroll(token, factor_type="otp")
            check(isinstance(r, OtpEnrollmentResponse), f"enroll returned {type(r).__name__}, want OtpEnrollmentResponse")
            try:
                pyotp.TOTP(r.secret).now()
            except Exception as e:
                raise StepFailed(f"secret {r.secret!r} is not base32: {e}")
            check(r.barcode_uri.startswith("otpauth://totp/"), f"barcode_uri={r.barcode_uri!r}")
            check(f"secret={r.secret}" in r.barcode_uri, "barcode_uri does not carry the same secret")
            return r, f"secret={short(r.secret, 12)}, recovery_codes={len(r.recovery_codes or [])}"

        enrolled = await f.step("SDK enroll_authenticator(otp)", enroll_otp)

        async def verify_otp():
            code = pyotp.TOTP(enrolled.secret).now()
            resp, detail = await self.verify(token, otp=code)
            return resp, f"otp=<{len(code)} digits>, {detail}"

        verified = await f.step("SDK verify(otp)", verify_otp)

        async def list_active():
            auths, detail = await self.list_auth(token)
            otp = [a for a in auths if a.authenticator_type == "otp"]
            check(len(otp) == 1, f"want exactly one otp authenticator, got {detail}")
            check(otp[0].active is True, f"otp authenticator not active: {detail}")
            return otp[0], detail

        otp_auth = await f.step("SDK list_authenticators -> active otp", list_active)
        await f.step("delete otp authenticator (DELETE /mfa/authenticators/{id})",
                     lambda: self.delete_authenticator(verified.access_token, otp_auth.id))

        async def list_gone():
            auths, detail = await self.list_auth(token)
            check(all(a.id != otp_auth.id for a in auths), f"deleted authenticator still listed: {detail}")
            return None, detail

        await f.step("SDK list_authenticators -> otp gone", list_gone)
        return f.ok

    async def flow_sms(self) -> bool:
        f = Flow("sms")
        phone = "+1555" + "".join(secrets.choice("0123456789") for _ in range(7))
        user = await f.step("create user (POST /__control/users)", self.create_user)
        token = await f.step("login password-realm -> mfa_required", lambda: self.login(user))

        async def enroll_sms():
            r = await self.enroll(token, factor_type="sms", phone_number=phone)
            check(isinstance(r, OobEnrollmentResponse), f"enroll returned {type(r).__name__}, want OobEnrollmentResponse")
            check(r.oob_channel == "sms", f"oob_channel={r.oob_channel!r}, want 'sms'")
            check(bool(r.oob_code), "enroll response has no oob_code")
            check(r.binding_method == "prompt", f"binding_method={r.binding_method!r}, want 'prompt'")
            return r, f"phone={phone}, oob_code={short(r.oob_code)}, binding_method={r.binding_method}"

        enrolled = await f.step("SDK enroll_authenticator(sms)", enroll_sms)

        async def read_code(expect_count: int):
            msgs = await self.messages(phone)
            check(len(msgs) == expect_count, f"want {expect_count} message(s) to {phone}, got {msgs!r}")
            last = msgs[-1]
            check(last.get("to") == phone, f"message 'to'={last.get('to')!r}, want {phone!r}")
            check(last.get("channel") == "sms", f"message channel={last.get('channel')!r}, want 'sms'")
            check(isinstance(last.get("code"), str) and last["code"], f"message has no code: {last!r}")
            return last["code"], f"code=<{len(last['code'])} digits> ({len(msgs)} message(s))"

        code = await f.step("read SMS code (GET /__control/messages)", lambda: read_code(1))

        await f.step("SDK verify(oob_code + binding_code)",
                     lambda: self.verify(token, oob_code=enrolled.oob_code, binding_code=code))

        async def list_active():
            auths, detail = await self.list_auth(token)
            sms = [a for a in auths if a.authenticator_type == "oob" and a.oob_channel == "sms"]
            check(len(sms) == 1, f"want exactly one oob/sms authenticator, got {detail}")
            check(sms[0].active is True, f"sms authenticator not active: {detail}")
            return sms[0], detail

        sms_auth = await f.step("SDK list_authenticators -> active sms", list_active)

        # Second login of the now-enrolled user: exercises challenge_authenticator.
        token2 = await f.step("login again -> mfa_required", lambda: self.login(user))

        async def challenge():
            r = await self.mfa.challenge_authenticator(
                {"mfa_token": token2, "factor_type": "sms", "authenticator_id": sms_auth.id})
            check(isinstance(r, ChallengeResponse), f"challenge returned {type(r).__name__}")
            check(r.challenge_type == "oob", f"challenge_type={r.challenge_type!r}, want 'oob'")
            check(bool(r.oob_code), "challenge response has no oob_code")
            check(r.binding_method == "prompt", f"binding_method={r.binding_method!r}, want 'prompt'")
            return r, f"oob_code={short(r.oob_code)}, binding_method={r.binding_method}"

        chal = await f.step("SDK challenge_authenticator(sms, authenticator_id)", challenge)
        code2 = await f.step("read second SMS code (GET /__control/messages)", lambda: read_code(2))
        await f.step("SDK verify(challenge oob_code + binding_code)",
                     lambda: self.verify(token2, oob_code=chal.oob_code, binding_code=code2))
        return f.ok


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", default=os.environ.get("MFA_CONFORM_URL"),
                   help="https://127.0.0.1:PORT of a running `mfa-conform serve --tls` (env MFA_CONFORM_URL)")
    p.add_argument("--cacert", default=os.environ.get("MFA_CONFORM_CACERT"),
                   help="PEM certificate to trust (sets SSL_CERT_FILE for the SDK's httpx clients)")
    p.add_argument("--client-id", default="mfa-conform-client")
    p.add_argument("--client-secret", default="mfa-conform-secret")
    p.add_argument("--realm", default="Username-Password-Authentication")
    p.add_argument("-v", "--verbose", action="store_true", help="log every HTTP request (httpx logger)")
    args = p.parse_args()
    if not args.base_url:
        p.error("--base-url (or MFA_CONFORM_URL) is required")
    if args.cacert:
        # httpx reads SSL_CERT_FILE when each AsyncClient is constructed
        # (httpx/_config.py create_ssl_context), i.e. inside every SDK call.
        os.environ["SSL_CERT_FILE"] = os.path.abspath(args.cacert)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="     %(name)s: %(message)s")
        logging.getLogger("httpcore").setLevel(logging.WARNING)

    h = Harness(args)
    passed = failed = 0
    try:
        for name, flow in (("otp", h.flow_otp), ("sms", h.flow_sms)):
            try:
                ok = await flow()
            except Exception as e:  # a bug in this script, reported as a failure
                print(f"FAIL [{name}] unexpected error: {describe_exc(e)}", flush=True)
                traceback.print_exc()
                ok = False
            print(f"{'PASS' if ok else 'FAIL'} flow {name}", flush=True)
            passed += ok
            failed += not ok
    finally:
        await h.aclose()
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
