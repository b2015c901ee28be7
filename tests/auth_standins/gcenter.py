"""A stand-in for Apple Game Center's identity verification: a CA, leaf certificates it issues
(current, expired, and one from a CA nobody trusts), served over HTTP on loopback as Apple serves
them (DER ``.cer``, with Cache-Control), the CA as PEM as DigiCert serves it, and real signatures
over ``playerId + bundleId + timestamp (big-endian uint64) + salt`` as GameKit makes them."""

from __future__ import annotations

import base64
import datetime as dt
import os
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

BUNDLE_ID = "com.example.game"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_ca(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_leaf(ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate, *, expired: bool = False,
              ) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    start, end = ((now - dt.timedelta(days=30), now - dt.timedelta(days=1)) if expired
                  else (now - dt.timedelta(days=1), now + dt.timedelta(days=30)))
    cert = (x509.CertificateBuilder().subject_name(_name("Apple Inc. (stand-in)")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


@dataclass
class GameCenter:
    """The keys and what the HTTP server answers; ``url`` is set once it listens."""

    ca_key: rsa.RSAPrivateKey
    ca_cert: x509.Certificate
    leaf_key: rsa.RSAPrivateKey
    leaf_cert: x509.Certificate
    expired_key: rsa.RSAPrivateKey
    expired_cert: x509.Certificate
    stranger_key: rsa.RSAPrivateKey  # issued by a CA nobody trusts
    stranger_cert: x509.Certificate
    url: str = ""
    requests: list[str] = field(default_factory=list)

    @classmethod
    def make(cls) -> GameCenter:
        ca_key, ca_cert = make_ca("Stand-in Code Signing CA")
        leaf = make_leaf(ca_key, ca_cert)
        expired = make_leaf(ca_key, ca_cert, expired=True)
        other_key, other_cert = make_ca("Stand-in Code Signing CA")  # the same name, another key
        stranger = make_leaf(other_key, other_cert)
        return cls(ca_key, ca_cert, *leaf, *expired, *stranger)

    def ca_pem(self) -> str:
        return self.ca_cert.public_bytes(serialization.Encoding.PEM).decode()

    def documents(self) -> dict[str, tuple[bytes, str]]:
        der = serialization.Encoding.DER
        return {
            "/public/gc.cer": (self.leaf_cert.public_bytes(der), "application/pkix-cert"),
            "/public/expired.cer": (self.expired_cert.public_bytes(der), "application/pkix-cert"),
            "/public/stranger.cer": (self.stranger_cert.public_bytes(der), "application/pkix-cert"),
            "/public/garbage.cer": (b"not a certificate", "application/pkix-cert"),
            "/root.pem": (self.ca_pem().encode(), "application/x-pem-file"),
        }

    def auth_data(self, player_id: str, *, path: str = "/public/gc.cer", key: Any = None,
                  bundle_id: str = BUNDLE_ID, timestamp: int | None = None,
                  signed_player_id: str | None = None) -> dict[str, Any]:
        """What a game sends: a fresh salt and timestamp, signed by ``key`` (the current leaf's)."""
        salt = os.urandom(16)
        timestamp = int(time.time() * 1000) if timestamp is None else timestamp
        payload = ((signed_player_id or player_id).encode() + bundle_id.encode()
                   + struct.pack(">Q", timestamp) + salt)
        signature = (key or self.leaf_key).sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return {"id": player_id, "publicKeyUrl": self.url + path, "timestamp": timestamp,
                "signature": base64.b64encode(signature).decode(), "salt": base64.b64encode(salt).decode()}


def serve(center: GameCenter) -> ThreadingHTTPServer:
    """Starts the HTTP server on a free loopback port, in a daemon thread; sets ``center.url``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            center.requests.append(self.path)
            found = center.documents().get(self.path)
            body, content_type = found if found else (b"not found", "text/plain")
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=3600")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    center.url = f"http://127.0.0.1:{http.server_address[1]}"
    threading.Thread(target=http.serve_forever, daemon=True).start()
    return http
