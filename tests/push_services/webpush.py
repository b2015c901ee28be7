"""A Web Push service stand-in (RFC 8030 delivery, RFC 8292 VAPID, RFC 8291 decryption).

``subscribe()`` plays the browser: it makes the subscription's P-256 key pair and auth secret and
returns the subscription whose JSON the app stores as the installation's deviceToken. A push to
its endpoint is accepted (201) only when the VAPID JWT verifies against the ``k=`` key with
``aud`` = this service's origin, an ``exp`` at most 24 hours ahead and a ``sub``, a ``TTL``
header is present, and the ``aes128gcm`` body decrypts with the subscription's private key; the
decrypted JSON lands in ``messages``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.push_services.http import Answer, Faults, Request, Server, StandIn

_AUTH = re.compile(r"^vapid\s+t=([A-Za-z0-9._-]+)\s*,\s*k=([A-Za-z0-9_-]+=*)\s*$", re.IGNORECASE)


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserSubscription:
    id: str
    endpoint: str
    private: ec.EllipticCurvePrivateKey
    auth: bytes

    @property
    def p256dh(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    def to_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": _b64(self.p256dh), "auth": _b64(self.auth)}}

    @property
    def token(self) -> str:
        """The deviceToken text: the subscription JSON, as the browser's toJSON() gives it."""
        return json.dumps(self.to_json())


@dataclass
class PushMessage:
    subscription_id: str
    data: Any
    ttl: int
    urgency: str | None
    topic: str | None
    vapid_public_key: str
    sub: str
    at: float


def decrypt(body: bytes, private: ec.EllipticCurvePrivateKey, auth: bytes) -> bytes:
    """RFC 8188 / RFC 8291 decryption, for a body of one record."""
    if len(body) < 21:
        raise ValueError("body shorter than the aes128gcm header")
    salt, record_size, id_length = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    key_id = body[21:21 + id_length]
    records = body[21 + id_length:]
    if id_length != 65:
        raise ValueError("the key id is not the sender's P-256 public key")
    if record_size < 18 or len(records) > record_size:
        raise ValueError("more than one record, or a record size too small")
    sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key_id)
    receiver = private.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)
    shared = private.exchange(ec.ECDH(), sender)
    ikm = HKDF(hashes.SHA256(), 32, salt=auth, info=b"WebPush: info\x00" + receiver + key_id).derive(shared)
    cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(ikm)
    nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(ikm)
    padded = AESGCM(cek).decrypt(nonce, records, None)
    unpadded = padded.rstrip(b"\x00")
    if not unpadded.endswith(b"\x02"):
        raise ValueError("the last record lacks its \\x02 delimiter")
    return unpadded[:-1]


@dataclass
class WebPushService(StandIn):
    host: str = "127.0.0.1"
    port: int = 0
    subscriptions: dict[str, BrowserSubscription] = field(default_factory=dict)
    unsubscribed: set[str] = field(default_factory=set)
    messages: list[PushMessage] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (status, why) of refused requests
    faults: Faults = field(default_factory=Faults)
    keep_messages: bool = True  # the bench process only counts
    delivered: int = 0
    first_at: float | None = None
    last_at: float | None = None
    _verified: dict[str, tuple[float, str, str]] = field(default_factory=dict)  # JWT → (exp, k, sub)
    _server: Server | None = None


    def subscribe(self) -> BrowserSubscription:
        sub_id = secrets.token_urlsafe(12)
        sub = BrowserSubscription(sub_id, f"{self.url}/push/{sub_id}", ec.generate_private_key(ec.SECP256R1()),
                                  secrets.token_bytes(16))
        self.subscriptions[sub_id] = sub
        return sub

    def unsubscribe(self, sub: BrowserSubscription) -> None:
        self.unsubscribed.add(sub.id)

    def fail(self, sub: BrowserSubscription, status: int, *, retry_after: float | None = None,
             times: int | None = None) -> None:
        self.faults.fail(sub.id, status, retry_after=retry_after, times=times)

    def _refuse(self, status: int, why: str) -> Answer:
        self.rejected.append((status, why))
        return status, {"Content-Type": "text/plain"}, why.encode()

    def _check_vapid(self, header: str) -> tuple[str, str] | str:
        match = _AUTH.match(header or "")
        if not match:
            return "Authorization is not 'vapid t=<jwt>, k=<key>'"
        token, k = match.group(1), match.group(2)
        now = time.time()
        cached = self._verified.get(token)
        if cached and cached[1] == k and cached[0] > now:
            return k, cached[2]
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _unb64(k))
            claims = jwt.decode(token, key, algorithms=["ES256"], audience=self.url,
                                options={"require": ["exp", "aud", "sub"]})
        except (ValueError, jwt.PyJWTError) as error:
            return f"VAPID JWT refused: {error}"
        if claims["exp"] > now + 24 * 3600:
            return "VAPID JWT exp is more than 24 hours ahead"
        sub = str(claims["sub"])
        if not sub.startswith(("mailto:", "https:", "http:")):
            return "VAPID sub is not a mailto: or https: URL"
        self._verified[token] = (float(claims["exp"]), k, sub)
        return k, sub

    def handle(self, request: Request) -> Answer:
        path = urlsplit(request.path)
        if path.path == "/_subscriptions" and request.method == "POST":  # the bench's set-up
            count = int(parse_qs(path.query).get("n", ["1"])[0])
            tokens = [self.subscribe().token for _ in range(count)]
            return 200, {"Content-Type": "application/json"}, json.dumps(tokens).encode()
        if path.path == "/_stats":
            stats = {"delivered": self.delivered, "rejected": len(self.rejected), "first": self.first_at,
                     "last": self.last_at, "reasons": sorted({why for _, why in self.rejected})[:5]}
            return 200, {"Content-Type": "application/json"}, json.dumps(stats).encode()
        if path.path == "/_reset" and request.method == "POST":
            self.delivered, self.first_at, self.last_at = 0, None, None
            self.rejected.clear()
            return 200, {}, b""
        if request.method != "POST" or not path.path.startswith("/push/"):
            return self._refuse(404, "no such resource")
        sub_id = path.path[len("/push/"):]
        if sub_id in self.unsubscribed:
            return 410, {}, b"subscription expired"
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            return 404, {}, b"no such subscription"
        checked = self._check_vapid(request.headers.get("authorization", ""))
        if isinstance(checked, str):
            return self._refuse(401 if "refused" in checked else 403, checked)
        k, claim_sub = checked
        ttl = request.headers.get("ttl")
        if ttl is None or not ttl.isdigit():
            return self._refuse(400, "TTL header missing or not a number")
        if request.headers.get("content-encoding", "").lower() != "aes128gcm":
            return self._refuse(415, "Content-Encoding is not aes128gcm")
        if len(request.body) > 4096:
            return self._refuse(413, "body over 4096 bytes")
        urgency = request.headers.get("urgency")
        if urgency is not None and urgency not in ("very-low", "low", "normal", "high"):
            return self._refuse(400, f"bad Urgency {urgency!r}")
        topic = request.headers.get("topic")
        if topic is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", topic):
            return self._refuse(400, "bad Topic")
        try:
            plaintext = decrypt(request.body, sub.private, sub.auth)
            data = json.loads(plaintext)
        except Exception as error:
            return self._refuse(400, f"payload does not decrypt: {type(error).__name__}: {error}")
        fault = self.faults.take(sub_id)
        if fault is not None:
            return fault.status, Faults.headers(fault), b"fault"
        now = time.time()
        self.delivered += 1
        self.first_at = self.first_at or now
        self.last_at = now
        if self.keep_messages:
            self.messages.append(PushMessage(sub_id, data, int(ttl), urgency, topic, k, claim_sub, now))
        return 201, {"Location": f"{self.url}/message/{secrets.token_urlsafe(8)}"}, b""


async def _main() -> None:
    parser = argparse.ArgumentParser(description="Web Push service stand-in")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    service = WebPushService(port=args.port, keep_messages=False)
    await service.start()
    print(service.url, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main())
