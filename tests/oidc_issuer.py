"""A small local OpenID Connect issuer for tests: discovery and JWKS over HTTP, real RSA and EC keys,
and ID tokens signed with them (shared by tests/unit/test_auth_providers.py and tests/api/test_auth_data.py)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

CLIENT = "client-a"


# --- a local OpenID issuer ------------------------------------------------------------------------


@dataclass
class SigningKey:
    kid: str
    private: Any
    alg: str

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        data = algorithm.to_jwk(public, as_dict=True)
        data.update(kid=self.kid, use="sig", alg=self.alg)
        return data

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def rsa_key(kid: str, bits: int = 2048) -> SigningKey:
    return SigningKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=bits), "RS256")


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, ec.generate_private_key(ec.SECP256R1()), "ES256")


@dataclass
class Issuer:
    url: str
    keys: list[SigningKey]
    extra_jwks: list[dict[str, Any]] = field(default_factory=list)
    discovery_issuer: str | None = None  # what the discovery document claims; None: the real one
    jwks_status: int = 200
    requests: list[str] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self.keys] + self.extra_jwks}

    def jwks_fetches(self) -> int:
        return self.requests.count("/jwks")


def serve(issuer_box: list[Issuer]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            issuer = issuer_box[0]
            issuer.requests.append(self.path)
            status, body = 404, {"error": "not found"}
            if self.path == "/.well-known/openid-configuration":
                status = 200
                body = {"issuer": issuer.discovery_issuer or issuer.url, "jwks_uri": issuer.url + "/jwks"}
            elif self.path == "/jwks":
                status, body = issuer.jwks_status, issuer.jwks()
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def claims(issuer: Issuer, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"iss": issuer.url, "aud": CLIENT, "sub": "user-1", "iat": now, "exp": now + 600}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def sign(key: SigningKey, payload: dict[str, Any], **header: Any) -> str:
    headers = {"kid": key.kid, **header}
    return jwt.encode(payload, key.private, algorithm=key.alg, headers=headers)
