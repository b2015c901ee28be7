"""Web Push: VAPID (RFC 8292) and ``aes128gcm`` message encryption (RFC 8291, RFC 8188).

The installation's ``deviceToken`` is the browser's subscription as JSON text
(``{"endpoint": …, "keys": {"p256dh": …, "auth": …}}``, what ``PushSubscription.toJSON()``
gives) and its ``deviceType`` is ``"web"``. The message body is Parse's push ``data`` as JSON,
with the device's badge, encrypted for that subscription alone; the service worker reads it
with ``event.data.json()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bastion.adapters.push._common import (
    ClientPool,
    b64url,
    b64url_decode,
    fan_out,
    is_high_priority,
    retry_after,
    transport_failure,
    ttl_seconds,
)
from bastion.ports.push import Delivery, Device, PushAdapter

VAPID_FILE = "vapid.json"
JWT_LIFETIME = 12 * 3600  # RFC 8292: at most 24 hours
JWT_RENEW_BEFORE = 3600
RECORD_SIZE = 4096
HEADER_SIZE = 16 + 4 + 1 + 65  # salt, record size, key id length, key id (the sender's public key)
# Push services take bodies of 4096 bytes; the record adds a delimiter byte and a 16-byte tag.
MAX_PLAINTEXT = RECORD_SIZE - HEADER_SIZE - 1 - 16
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


# --- keys ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class VapidKeys:
    private: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> str:
        """The application server key (uncompressed P-256 point, base64url) for ``pushManager.subscribe``."""
        return b64url(_public_bytes(self.private.public_key()))

    @property
    def private_key(self) -> str:
        return b64url(self.private.private_numbers().private_value.to_bytes(32, "big"))

    @classmethod
    def generate(cls) -> VapidKeys:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_text(cls, private: str, public: str | None = None) -> VapidKeys:
        """A private key as base64url (the 32-byte scalar, as web-push tools print it) or PEM text;
        a public key given with it must match."""
        text = private.strip()
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
                raise ValueError("the VAPID private key must be a P-256 key")
        else:
            raw = b64url_decode(text)
            if len(raw) != 32:
                raise ValueError("the VAPID private key must be 32 bytes, base64url-encoded")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        keys = cls(key)
        if public and b64url_decode(public) != b64url_decode(keys.public_key):
            raise ValueError("the VAPID public key does not belong to the private key")
        return keys


def _public_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def load_or_create_vapid_keys(data_dir: Path | str) -> VapidKeys:
    """The keys in ``<data_dir>/vapid.json``, created (mode 0600) on first use.

    Several processes may start at once: the file appears whole or not at all (written aside, then
    hard-linked into place), and whoever loses the race reads the winner's keys.
    """
    path = Path(data_dir) / VAPID_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = VapidKeys.generate()
        aside = path.with_name(f".{VAPID_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump({"publicKey": keys.public_key, "privateKey": keys.private_key}, out, indent=2)
                out.write("\n")
            with contextlib.suppress(FileExistsError):  # another process was first: its keys count
                os.link(aside, path)
        finally:
            aside.unlink(missing_ok=True)
    stored = json.loads(path.read_text())
    return VapidKeys.from_text(stored["privateKey"], stored.get("publicKey"))


def vapid_keys_from_settings(settings: Any, data_dir: Path | str) -> VapidKeys:
    private = getattr(settings, "vapid_private_key", None)
    public = getattr(settings, "vapid_public_key", None)
    if private:
        path = Path(private)
        if not private.strip().startswith("-----BEGIN") and len(private) < 4096 and path.is_file():
            private = path.read_text()  # a file holding the key (PEM or base64url)
        return VapidKeys.from_text(private, public)
    if public:
        raise ValueError("--vapid-public-key needs --vapid-private-key")
    return load_or_create_vapid_keys(data_dir)


# --- RFC 8291 encryption ---------------------------------------------------------------------------


def _hmac(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def encrypt(plaintext: bytes, p256dh: bytes, auth: bytes, *, salt: bytes | None = None,
            sender: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """One ``aes128gcm`` record for the subscription with public key ``p256dh`` and ``auth`` secret.

    A fresh sender key pair and salt per message (RFC 8291 section 3.4); ``salt``/``sender`` are
    parameters only so the RFC's worked example can be checked.
    """
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(f"the push payload is {len(plaintext)} bytes; Web Push allows {MAX_PLAINTEXT}")
    receiver = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    sender = sender or ec.generate_private_key(ec.SECP256R1())
    sender_public = _public_bytes(sender.public_key())
    salt = salt or secrets.token_bytes(16)
    shared = sender.exchange(ec.ECDH(), receiver)
    # HKDF(auth, ecdh_secret, "WebPush: info" || 0 || ua_public || as_public, 32): one block, so one HMAC.
    prk_key = _hmac(auth, shared)
    ikm = _hmac(prk_key, b"WebPush: info\x00" + p256dh + sender_public + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    record = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)  # \x02: the last record, no padding
    header = salt + RECORD_SIZE.to_bytes(4, "big") + bytes([len(sender_public)]) + sender_public
    return header + record


# --- the adapter -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Subscription:
    endpoint: str
    p256dh: bytes
    auth: bytes

    @classmethod
    def parse(cls, token: str) -> Subscription:
        try:
            data = json.loads(token)
            endpoint = data["endpoint"]
            keys = data["keys"]
            p256dh, auth = b64url_decode(keys["p256dh"]), b64url_decode(keys["auth"])
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a push subscription ({error.__class__.__name__})") from None
        if not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in ("https", "http"):
            raise ValueError("the subscription's endpoint is not an http(s) URL")
        if len(p256dh) != 65 or p256dh[0] != 4 or len(auth) != 16:
            raise ValueError("the subscription's keys are not a P-256 point and a 16-byte secret")
        return cls(endpoint, p256dh, auth)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class WebPushAdapter(PushAdapter):
    name = "webpush"
    device_types = frozenset({"web"})

    def __init__(self, keys: VapidKeys, subject: str, *, concurrency: int = 64, timeout: float = 15.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not subject.startswith(("mailto:", "https://", "http://")):
            raise ValueError("the VAPID subject must be a mailto: or https: URL")
        self.keys = keys
        self.subject = subject
        self.concurrency = concurrency
        self.timeout = timeout
        self._transport = transport
        self._client: ClientPool | None = None
        self._tokens: dict[str, tuple[str, float]] = {}  # audience → (JWT, expiry)

    async def open(self) -> None:
        if self._client is None:
            self._client = ClientPool(self.concurrency, timeout=self.timeout, transport=self._transport)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def authorization(self, endpoint: str, now: float | None = None) -> str:
        """``vapid t=<JWT>, k=<public key>`` for the push service of ``endpoint`` (cached per origin)."""
        now = time.time() if now is None else now
        audience = _origin(endpoint)
        cached = self._tokens.get(audience)
        if cached is None or cached[1] - now < JWT_RENEW_BEFORE:
            expiry = int(now) + JWT_LIFETIME
            claims = {"aud": audience, "exp": expiry, "sub": self.subject}
            token = jwt.encode(claims, self.keys.private, algorithm="ES256", headers={"typ": "JWT"})
            cached = (token, float(expiry))
            self._tokens[audience] = cached
        return f"vapid t={cached[0]}, k={self.keys.public_key}"

    @staticmethod
    def payload(data: dict[str, Any], device: Device) -> bytes:
        body = dict(data)
        if device.badge is not None:
            body["badge"] = device.badge
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    async def send(self, data: dict[str, Any], devices: list[Device], *, push_id: str, expiration: datetime | None,
                   priority: str | None = None) -> list[Delivery]:
        await self.open()
        urgency = "high" if is_high_priority(priority, default=False) else "normal"
        if priority in ("low", "very-low"):
            urgency = priority
        topic = data.get("collapse_id") or data.get("collapseId")
        headers = {"Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                   "Urgency": urgency}
        if isinstance(topic, str) and _TOPIC.match(topic):
            headers["Topic"] = topic

        async def one(device: Device) -> Delivery:
            return await self._send_one(data, device, headers, expiration)

        return await fan_out(devices, self.concurrency, one)

    async def _send_one(self, data: dict[str, Any], device: Device, headers: dict[str, str],
                        expiration: datetime | None) -> Delivery:
        try:
            subscription = Subscription.parse(device.device_token)
            body = encrypt(self.payload(data, device), subscription.p256dh, subscription.auth)
        except ValueError as error:
            return Delivery(device.installation_id, ok=False, error=str(error))
        request_headers = dict(headers, TTL=str(ttl_seconds(expiration)),
                               Authorization=self.authorization(subscription.endpoint))
        assert self._client is not None
        try:
            response = await self._client.pick().post(subscription.endpoint, content=body,
                                                      headers=request_headers)
        except httpx.HTTPError as error:
            return transport_failure(device.installation_id, error)
        status = response.status_code
        if 200 <= status < 300:
            return Delivery(device.installation_id, ok=True)
        reason = f"HTTP {status}: {response.text[:200]}".strip()
        if status in (404, 410):
            return Delivery(device.installation_id, ok=False, error=reason, gone=True)
        if status == 429 or status >= 500:
            return Delivery(device.installation_id, ok=False, error=reason, retry_after=retry_after(response))
        return Delivery(device.installation_id, ok=False, error=reason)
