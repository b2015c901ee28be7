"""Apple Push Notification service over HTTP/2, with token (``.p8`` key) authentication.

Each request carries ``authorization: bearer <JWT>``: ES256, ``kid`` = the key id, ``iss`` = the
team id, ``iat``. Apple refuses tokens older than an hour and too-frequent new ones (not more than
one every 20 minutes), so one token is reused and replaced every 50 minutes, or at once when
Apple answers ``ExpiredProviderToken``.

The payload is Parse's mapping of push ``data`` (as in @parse/push-adapter): ``alert``, ``title``,
``badge``, ``sound``, ``content-available``, ``mutable-content``, ``category``, ``threadId``,
``interruptionLevel``, ``targetContentIdentifier`` into ``aps``, an ``aps`` object merged in,
header fields (``pushType``, ``topic``, ``priority``, ``collapseId``, ``id``, ``expiry``) into
headers, every other key beside ``aps``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bastion.adapters.push._common import fan_out, is_high_priority, retry_after, transport_failure
from bastion.ports.push import Delivery, Device, PushAdapter

PRODUCTION = "https://api.push.apple.com"
SANDBOX = "https://api.sandbox.push.apple.com"
TOKEN_REFRESH = 50 * 60  # Apple: valid for 60 minutes, renewed no more than every 20
APPLE_DEVICE_TYPES = frozenset({"ios", "osx", "tvos", "watchos", "visionos"})
_GONE_REASONS = {"BadDeviceToken", "Unregistered"}
_HEADER_KEYS = {"id", "collapseId", "collapse_id", "channelId", "requestId", "pushType", "push_type", "topic",
                "expiry", "priority", "expiration_time"}
_TOPIC_SUFFIX = {"location": ".location-query", "voip": ".voip", "complication": ".complication",
                 "fileprovider": ".pushkit.fileprovider", "liveactivity": ".push-type.liveactivity",
                 "pushtotalk": ".voip-ptt"}


def load_p8(text_or_path: str) -> ec.EllipticCurvePrivateKey:
    text = text_or_path
    if not text.lstrip().startswith("-----BEGIN"):
        try:
            text = Path(text_or_path).read_text()
        except OSError as error:
            raise ValueError(f"cannot read the APNs key {text_or_path}: {error}") from None
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except ValueError as error:
        raise ValueError(f"the APNs key is not a PEM private key: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the APNs key must be a P-256 (ES256) key, as Apple's .p8 files are")
    return key


def notification(data: dict[str, Any], device: Device) -> tuple[dict[str, Any], dict[str, Any]]:
    """(aps payload, header fields) for one device."""
    aps: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, value in data.items():
        if key == "aps" and isinstance(value, dict):
            aps.update(value)
        elif key == "alert":
            if isinstance(value, dict):
                aps["alert"] = value
            else:
                aps.setdefault("alert", {})
                aps["alert"]["body"] = value
        elif key == "title":
            aps.setdefault("alert", {})
            aps["alert"]["title"] = value
        elif key in ("badge", "sound", "category"):
            aps[key] = value
        elif key in ("content-available", "mutable-content"):
            if value in (1, "1", True):
                aps[key] = 1
        elif key == "targetContentIdentifier":
            aps["target-content-id"] = value
        elif key == "interruptionLevel":
            aps["interruption-level"] = value
        elif key == "threadId":
            aps["thread-id"] = value
        elif key in _HEADER_KEYS:
            continue
        else:
            custom[key] = value
    if device.badge is not None:
        aps["badge"] = device.badge
    header_fields = {key: data[key] for key in _HEADER_KEYS if key in data}
    return {"aps": aps, **custom}, header_fields


class ApnsAdapter(PushAdapter):
    name = "apns"
    device_types = APPLE_DEVICE_TYPES

    def __init__(self, key: ec.EllipticCurvePrivateKey, *, key_id: str, team_id: str, topic: str | None = None,
                 production: bool = False, endpoint: str | None = None, concurrency: int = 64,
                 timeout: float = 15.0, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not key_id or not team_id:
            raise ValueError("APNs token authentication needs the key id and the team id")
        self.key = key
        self.key_id = key_id
        self.team_id = team_id
        self.topic = topic
        self.endpoint = (endpoint or (PRODUCTION if production else SANDBOX)).rstrip("/")
        self.concurrency = concurrency
        self.timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._token: str | None = None
        self._token_issued = 0.0
        self.tokens_made = 0
        self.clock = clock

    async def open(self) -> None:
        if self._client is None:
            # APNs speaks HTTP/2 only: negotiated with ALPN over TLS, prior knowledge over plain http.
            self._client = httpx.AsyncClient(http1=False, http2=True, timeout=self.timeout,
                                             transport=self._transport)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def provider_token(self, *, now: float | None = None, stale: str | None = None) -> str:
        now = self.clock() if now is None else now
        if self._token is None or now - self._token_issued >= TOKEN_REFRESH or (stale and stale == self._token):
            self._token = jwt.encode({"iss": self.team_id, "iat": int(now)}, self.key, algorithm="ES256",
                                     headers={"kid": self.key_id})
            self._token_issued = now
            self.tokens_made += 1
        return self._token

    def request(self, data: dict[str, Any], device: Device, *, expiration: datetime | None,
                priority: str | None) -> tuple[str, dict[str, str], bytes]:
        payload, fields = notification(data, device)
        aps = payload["aps"]
        push_type = fields.get("pushType") or fields.get("push_type")
        if not push_type:
            silent = aps.get("content-available") == 1 and not any(
                key in aps for key in ("alert", "badge", "sound", "category"))
            push_type = "background" if silent else "alert"
        topic = fields.get("topic") or ((device.app_identifier or self.topic or "") + _TOPIC_SUFFIX.get(
            push_type, ""))
        if fields.get("priority") is not None:
            apns_priority = str(fields["priority"])
        elif push_type == "background":
            apns_priority = "5"  # Apple refuses background pushes at priority 10
        else:
            apns_priority = "10" if is_high_priority(priority) else "5"
        headers = {"apns-push-type": str(push_type), "apns-priority": apns_priority}
        if topic:
            headers["apns-topic"] = topic
        if fields.get("expiry") is not None:
            headers["apns-expiration"] = str(int(fields["expiry"]))
        elif expiration is not None:
            headers["apns-expiration"] = str(max(0, int(expiration.timestamp())))
        collapse = fields.get("collapseId") or fields.get("collapse_id")
        if collapse:
            headers["apns-collapse-id"] = str(collapse)
        if fields.get("id"):
            headers["apns-id"] = str(fields["id"])
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        return f"{self.endpoint}/3/device/{device.device_token}", headers, body

    async def send(self, data: dict[str, Any], devices: list[Device], *, push_id: str, expiration: datetime | None,
                   priority: str | None = None) -> list[Delivery]:
        await self.open()

        async def one(device: Device) -> Delivery:
            return await self._send_one(data, device, expiration, priority)

        return await fan_out(devices, self.concurrency, one)

    async def _send_one(self, data: dict[str, Any], device: Device, expiration: datetime | None,
                        priority: str | None) -> Delivery:
        assert self._client is not None
        token_text = device.device_token.strip()
        if not token_text or any(c not in "0123456789abcdefABCDEF" for c in token_text):
            return Delivery(device.installation_id, ok=False, error="not an APNs device token (hex)")
        url, headers, body = self.request(data, device, expiration=expiration, priority=priority)
        token = self.provider_token()
        for attempt in range(2):
            try:
                response = await self._client.post(
                    url, content=body, headers=dict(headers, authorization=f"bearer {token}"))
            except httpx.HTTPError as error:
                return transport_failure(device.installation_id, error)
            reason = _reason(response)
            if response.status_code == 403 and reason == "ExpiredProviderToken" and attempt == 0:
                token = self.provider_token(stale=token)
                continue
            break
        status = response.status_code
        if status == 200:
            return Delivery(device.installation_id, ok=True)
        text = f"HTTP {status} {reason}".strip()
        if status == 410 or reason in _GONE_REASONS:
            return Delivery(device.installation_id, ok=False, error=text, gone=True)
        if status == 429 or status >= 500:
            return Delivery(device.installation_id, ok=False, error=text, retry_after=retry_after(response))
        return Delivery(device.installation_id, ok=False, error=text)


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason") or "")
    except ValueError:
        return ""
