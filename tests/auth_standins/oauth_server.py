"""A local OAuth 2.0 / OpenID Connect provider for the web sign-in flow's tests (loopback only).

- ``GET /authorize``: no login page; the "user" is ``login_hint`` (else ``default_sub``) and is sent
  straight back to ``redirect_uri`` with a code. Requires PKCE S256, as providers do for public
  clients and Bastion always sends; refuses unknown clients and unregistered redirect URIs.
- ``POST /token``: checks the client secret (form or HTTP Basic), the code (single use, not expired),
  that ``redirect_uri`` is the authorization request's, and that S256(``code_verifier``) is its
  ``code_challenge``; answers an access token and an RS256 ID token with the request's ``nonce``.
- ``GET /userinfo`` and ``GET /me`` (Bearer access token; ``/me`` answers ``{"id"}`` as Microsoft Graph), ``/jwks`` and ``/.well-known/openid-configuration``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from bastion.domain.auth_providers import AuthAdapter, AuthRequest, AuthResult
from bastion.errors import Code, ParseError
from tests.oidc_issuer import SigningKey, rsa_key, sign

CLIENT_ID = "web-client"
CLIENT_SECRET = "web-secret-" + secrets.token_hex(4)


@dataclass
class OAuthStandIn:
    url: str = ""
    key: SigningKey = field(default_factory=lambda: rsa_key("web-k1"))
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    callback_prefix: str = "http://127.0.0.1:"  # redirect URIs allowed (Bastion's callback)
    default_sub: str = "standin-user"
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)  # token -> sub
    token_requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def id_token(self, sub: str, nonce: str | None, audience: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.url, "aud": audience, "sub": sub, "iat": now, "exp": now + 300}
        if nonce is not None:
            claims["nonce"] = nonce
        return sign(self.key, claims)

    # --- endpoints ------------------------------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri.startswith(self.callback_prefix):
            return 400, {}, {"error": "invalid_request", "error_description": "unknown client or redirect_uri"}
        back: dict[str, str] = {"state": query.get("state", "")}
        if query.get("response_type") != "code":
            back["error"] = "unsupported_response_type"
        elif query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            back["error"] = "invalid_request"  # PKCE required
        elif query.get("deny"):
            back["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(24)
            with self.lock:
                self.codes[code] = {"redirect_uri": redirect_uri, "challenge": query["code_challenge"],
                                    "nonce": query.get("nonce"), "sub": query.get("login_hint") or self.default_sub,
                                    "expires": time.time() + 60}
            back["code"] = code
        return 302, {"Location": redirect_uri + "?" + urlencode(back)}, None

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, str], Any]:
        self.token_requests.append(form)
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        if client_id != self.client_id or not secrets.compare_digest(secret or "", self.client_secret):
            return 401, {}, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {}, {"error": "unsupported_grant_type"}
        with self.lock:
            grant = self.codes.pop(form.get("code", ""), None)  # single use
        if grant is None or grant["expires"] < time.time() or grant["redirect_uri"] != form.get("redirect_uri"):
            return 400, {}, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or not secrets.compare_digest(computed, grant["challenge"]):
            return 400, {}, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        access = secrets.token_urlsafe(24)
        with self.lock:
            self.access_tokens[access] = grant["sub"]
        return 200, {}, {"access_token": access, "token_type": "Bearer", "expires_in": 300,
                         "id_token": self.id_token(grant["sub"], grant["nonce"], self.client_id)}

    def userinfo(self, authorization: str | None) -> tuple[int, dict[str, str], Any]:
        token = (authorization or "").removeprefix("Bearer ")
        sub = self.access_tokens.get(token)
        if sub is None:
            return 401, {}, {"error": "invalid_token"}
        return 200, {}, {"sub": sub}


def _server(standin: OAuthStandIn) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, headers: dict[str, str], body: Any) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            if parts.path == "/authorize":
                self._answer(*standin.authorize(query))
            elif parts.path == "/userinfo":
                self._answer(*standin.userinfo(self.headers.get("Authorization")))
            elif parts.path == "/me":  # as Microsoft Graph's /me: the account as {"id": …}
                status, headers, body = standin.userinfo(self.headers.get("Authorization"))
                self._answer(status, headers, {"id": body["sub"]} if status == 200 else body)
            elif parts.path == "/jwks":
                self._answer(200, {}, {"keys": [standin.key.jwk()]})
            elif parts.path == "/.well-known/openid-configuration":
                self._answer(200, {}, {"issuer": standin.url, "jwks_uri": standin.url + "/jwks",
                                       "authorization_endpoint": standin.url + "/authorize",
                                       "token_endpoint": standin.url + "/token"})
            else:
                self._answer(404, {}, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            if urlsplit(self.path).path == "/token":
                self._answer(*standin.token(form, self.headers.get("Authorization")))
            else:
                self._answer(404, {}, {"error": "not found"})

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@contextmanager
def running_standin() -> Iterator[OAuthStandIn]:
    standin = OAuthStandIn()
    http = _server(standin)
    standin.url = f"http://127.0.0.1:{http.server_address[1]}"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        http.shutdown()
        http.server_close()


class UserInfoAdapter(AuthAdapter):
    """An access-token adapter as Parse's GitHub or Microsoft ones work: the token must name the
    account ``authData.id`` at the provider's user-info endpoint (option ``userInfoUrl``)."""

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        url = str(self.options.get("userInfoUrl"))
        try:
            response = await self.http.get(url, headers={"Authorization": f"Bearer {auth_data.get('access_token')}"})
        except httpx.HTTPError:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Failed to validate this access token.") from None
        if response.status_code != 200 or response.json().get("sub") != auth_data.get("id"):
            raise ParseError(Code.OBJECT_NOT_FOUND, "Userinfo auth is invalid for this user.")
        return None
