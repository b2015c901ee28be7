"""Local stand-ins for the ID-token and token-introspection providers (loopback only):

- key sets (JWKS) for Apple, Google, Facebook Limited Login and a Keycloak realm, each with its own
  RSA key, and tokens signed with them (``Standins.token``);
- Facebook's Graph API: ``/graph/me`` and ``/graph/app`` answer for the access tokens issued here and
  check ``appsecret_proof`` as Facebook does when the app requires it;
- an RFC 7662 introspection endpoint (``/introspect``) that wants its client's Authorization header;
- ``/slow/…``: answers after ``SLOW_SECONDS`` (a provider that hangs).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.oidc_issuer import SigningKey, rsa_key, sign

FB_SECRET = "fb-app-secret"
INTROSPECTION_AUTH = "Basic Y2xpZW50OnNlY3JldA=="  # client:secret
SLOW_SECONDS = 4.0
KEYCLOAK_REALM = "bastion"
JWKS_PATHS = {"apple": "/apple/auth/keys", "google": "/google/oauth2/v3/certs", "facebook": "/facebook/jwks/",
              "keycloak": f"/kc/realms/{KEYCLOAK_REALM}/protocol/openid-connect/certs"}


@dataclass
class Standins:
    url: str = ""
    keys: dict[str, SigningKey] = field(default_factory=lambda: {p: rsa_key(f"{p}-1") for p in JWKS_PATHS})
    graph_tokens: dict[str, dict[str, str]] = field(default_factory=dict)  # token -> {user, app}
    introspection: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> answer
    google_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)  # access token -> tokeninfo answer
    requests: list[str] = field(default_factory=list)

    def token(self, provider: str, claims: dict[str, Any], key: SigningKey | None = None, **header: Any) -> str:
        return sign(key or self.keys[provider], claims, **header)

    def graph_token(self, user: str, app: str) -> str:
        token = "EAAG" + secrets.token_hex(12)
        self.graph_tokens[token] = {"user": user, "app": app}
        return token

    def google_access_token(self, **info: Any) -> str:
        token = "ya29." + secrets.token_hex(12)
        self.google_tokens[token] = info
        return token

    def introspected(self, **answer: Any) -> str:
        token = "at-" + secrets.token_hex(12)
        self.introspection[token] = answer
        return token

    # --- the handlers ---

    def get(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        for provider, jwks_path in JWKS_PATHS.items():
            if path == jwks_path:
                return 200, {"keys": [self.keys[provider].jwk()]}
        if path in ("/graph/me", "/graph/app"):
            return self._graph(path, query)
        if path == "/google/tokeninfo":  # as Google's: 400 invalid_token for a token it does not know
            info = self.google_tokens.get(query.get("access_token", ""))
            return (200, info) if info is not None else (400, {"error": "invalid_token"})
        return 404, {"error": "not found"}

    def _graph(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        entry = self.graph_tokens.get(query.get("access_token", ""))
        if entry is None:
            return 400, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}
        proof = hmac.new(FB_SECRET.encode(), query["access_token"].encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(query.get("appsecret_proof", ""), proof):
            return 400, {"error": {"message": "Invalid appsecret_proof provided in the API argument",
                                   "type": "GraphMethodException", "code": 100}}
        if path == "/graph/me":
            return 200, {"id": entry["user"]} if query.get("fields") == "id" else {"id": entry["user"], "name": "x"}
        return 200, {"id": entry["app"], "name": "Some app", "link": "https://example.com"}

    def post(self, path: str, headers: Any, form: dict[str, str]) -> tuple[int, Any]:
        if path != "/introspect":
            return 404, {"error": "not found"}
        if headers.get("Authorization") != INTROSPECTION_AUTH:
            return 401, {"error": "invalid_client"}
        if headers.get("Content-Type") != "application/x-www-form-urlencoded":
            return 400, {"error": "invalid_request"}
        return 200, self.introspection.get(form.get("token", ""), {"active": False})


def _handler(standins: Standins) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server under test gave up waiting (the slow provider's point)

        def _slow(self, path: str) -> bool:
            if not path.startswith("/slow"):
                return False
            time.sleep(SLOW_SECONDS)
            self._answer(200, {"keys": [], "id": "x", "active": True})
            return True

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            standins.requests.append("GET " + parts.path)
            if not self._slow(parts.path):
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                self._answer(*standins.get(parts.path, query))

        def do_POST(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            standins.requests.append("POST " + parts.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if not self._slow(parts.path):
                self._answer(*standins.post(parts.path, self.headers, form))

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@contextmanager
def running() -> Iterator[Standins]:
    standins = Standins()
    http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standins))
    http.daemon_threads = True
    standins.url = f"http://127.0.0.1:{http.server_address[1]}"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield standins
    finally:
        http.shutdown()
        http.server_close()
