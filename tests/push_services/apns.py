"""An APNs stand-in speaking HTTP/2 (h2 with prior knowledge, no TLS).

``new_key()`` plays Apple's developer portal: it makes a P-256 key and returns the ``.p8`` text
with its key id; ``POST /3/device/<hex token>`` then needs ``authorization: bearer <JWT>`` signed
ES256 by a known key (``kid``), ``iss`` = the team id, and an ``iat`` within the last hour
(older: 403 ExpiredProviderToken), plus valid ``apns-topic``, ``apns-push-type``,
``apns-priority`` (5 for background pushes), ``apns-expiration`` headers and a JSON body with
``aps``. Accepted notifications land in ``notifications``; ``tokens_seen`` holds each distinct
provider token.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.push_services.http import Answer, Faults, Request, Server, StandIn

PUSH_TYPES = {"alert", "background", "location", "voip", "complication", "fileprovider", "mdm", "liveactivity",
              "pushtotalk"}
_PATH = re.compile(r"^/3/device/([0-9a-fA-F]+)$")


@dataclass
class Notification:
    device_token: str
    headers: dict[str, str]
    payload: dict[str, Any]


def _reason(status: int, reason: str, extra: dict[str, str] | None = None) -> Answer:
    headers = {"Content-Type": "application/json", "apns-id": str(secrets.token_hex(16)), **(extra or {})}
    return status, headers, json.dumps({"reason": reason}).encode()


@dataclass
class ApnsService(StandIn):
    http2: ClassVar[bool] = True  # APNs speaks HTTP/2 only
    team_id: str = "TEAM123456"
    topic: str = "com.example.app"
    host: str = "127.0.0.1"
    port: int = 0
    clock: Callable[[], float] = time.time
    keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    notifications: list[Notification] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    tokens_seen: list[str] = field(default_factory=list)
    expired_tokens: set[str] = field(default_factory=set)  # provider tokens answered ExpiredProviderToken
    faults: Faults = field(default_factory=Faults)
    _server: Server | None = None


    def new_key(self) -> tuple[str, str]:
        """(key id, .p8 PEM text) of a new signing key."""
        private = ec.generate_private_key(ec.SECP256R1())
        key_id = secrets.token_hex(5).upper()
        self.keys[key_id] = private.public_key()
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return key_id, pem

    def expire_current_tokens(self) -> None:
        self.expired_tokens.update(self.tokens_seen)

    def fail(self, device_token: str, status: int, reason: str, *, retry_after: float | None = None,
             times: int | None = None) -> None:
        self.faults.fail(device_token, status, reason, retry_after=retry_after, times=times)

    def _refuse(self, status: int, reason: str) -> Answer:
        self.rejected.append((status, reason))
        return _reason(status, reason)

    def handle(self, request: Request) -> Answer:
        if request.method != "POST":
            return self._refuse(405, "MethodNotAllowed")
        match = _PATH.match(request.path)
        if not match:
            return self._refuse(404 if not request.path.startswith("/3/device/") else 400,
                                "BadPath" if not request.path.startswith("/3/device/") else "BadDeviceToken")
        device_token = match.group(1)
        checked = self._check_token(request.headers.get("authorization", ""))
        if checked:
            return self._refuse(403, checked)
        headers = request.headers
        topic = headers.get("apns-topic")
        if not topic:
            return self._refuse(400, "MissingTopic")
        if topic.split(".voip")[0].split(".complication")[0] != self.topic:
            return self._refuse(400, "DeviceTokenNotForTopic")
        push_type = headers.get("apns-push-type", "")
        if push_type not in PUSH_TYPES:
            return self._refuse(400, "InvalidPushType")
        priority = headers.get("apns-priority", "10")
        if priority not in ("1", "5", "10") or (push_type == "background" and priority != "5"):
            return self._refuse(400, "BadPriority")
        expiration = headers.get("apns-expiration")
        if expiration is not None and not expiration.isdigit():
            return self._refuse(400, "BadExpirationDate")
        if len(request.body) > 4096:
            return self._refuse(413, "PayloadTooLarge")
        try:
            payload = json.loads(request.body)
            if not isinstance(payload.get("aps"), dict):
                raise ValueError("no aps")
        except (ValueError, AttributeError):
            return self._refuse(400, "PayloadEmpty")
        if push_type == "background" and set(payload["aps"]) - {"content-available"}:
            return self._refuse(400, "BadPushType")  # a stand-in strictness: background is silent
        fault = self.faults.take(device_token)
        if fault is not None:
            return _reason(fault.status, fault.reason, Faults.headers(fault))
        self.notifications.append(Notification(device_token, {k: v for k, v in headers.items()
                                                              if k.startswith("apns-")}, payload))
        return 200, {"apns-id": headers.get("apns-id") or secrets.token_hex(16)}, b""

    def _check_token(self, header: str) -> str | None:
        if not header.lower().startswith("bearer "):
            return "MissingProviderToken"
        token = header[len("bearer "):].strip()
        try:
            head = jwt.get_unverified_header(token)
            key = self.keys.get(head.get("kid", ""))
            if key is None or head.get("alg") != "ES256":
                return "InvalidProviderToken"
            claims = jwt.decode(token, key, algorithms=["ES256"], options={"require": ["iss", "iat"], "verify_iat": False})
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        if claims["iss"] != self.team_id:
            return "InvalidProviderToken"
        if token not in self.tokens_seen:
            self.tokens_seen.append(token)
        now = self.clock()
        if token in self.expired_tokens or now - claims["iat"] > 3600:
            return "ExpiredProviderToken"
        if claims["iat"] > now + 60:
            return "InvalidProviderToken"
        return None
