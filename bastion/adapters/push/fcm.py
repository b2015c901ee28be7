"""Firebase Cloud Messaging, HTTP v1 API, for Android installations.

Credentials: a service-account key (the JSON file the Firebase console hands out). A JWT signed
with its RS256 key is exchanged at its ``token_uri`` for an OAuth access token (RFC 7523), kept
until shortly before it expires; each message is one ``POST …/v1/projects/<id>/messages:send``.

The message has Parse's Android shape (the Parse Android SDK reads it): ``data`` holds
``push_id``, ``time`` and ``data``, the push ``data`` as JSON text; ``android.priority`` and
``android.ttl`` come from the push's priority and expiration.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt

from bastion.adapters.push._common import (
    ClientPool,
    fan_out,
    is_high_priority,
    retry_after,
    transport_failure,
    ttl_seconds,
)
from bastion.ports.push import Delivery, Device, PushAdapter

DEFAULT_ENDPOINT = "https://fcm.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
RENEW_BEFORE = 300  # seconds before the access token's expiry that a new one is fetched
# Keys Parse drops from the Android data: APNs integers that mean nothing to the Android SDK.
_APNS_INTEGER_KEYS = ("badge", "content-available", "mutable-content", "priority", "expiration_time")


class FcmAuthError(Exception):
    pass


class ServiceAccount:
    def __init__(self, info: dict[str, Any]) -> None:
        missing = [key for key in ("client_email", "private_key", "project_id") if not info.get(key)]
        if missing:
            raise ValueError(f"the FCM service account lacks {', '.join(missing)}")
        self.client_email: str = info["client_email"]
        self.private_key: str = info["private_key"]
        self.private_key_id: str | None = info.get("private_key_id")
        self.project_id: str = info["project_id"]
        self.token_uri: str = info.get("token_uri") or "https://oauth2.googleapis.com/token"

    @classmethod
    def load(cls, path: str | Path) -> ServiceAccount:
        try:
            info = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read the FCM service account {path}: {error}") from None
        return cls(info)

    def assertion(self, now: float | None = None) -> str:
        now = int(time.time() if now is None else now)
        claims = {"iss": self.client_email, "scope": SCOPE, "aud": self.token_uri, "iat": now,
                  "exp": now + ASSERTION_LIFETIME}
        headers = {"kid": self.private_key_id} if self.private_key_id else None
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)


class FcmAdapter(PushAdapter):
    name = "fcm"
    device_types = frozenset({"android"})

    def __init__(self, account: ServiceAccount, *, endpoint: str = DEFAULT_ENDPOINT, concurrency: int = 64,
                 timeout: float = 15.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.account = account
        self.endpoint = endpoint.rstrip("/")
        self.concurrency = concurrency
        self.timeout = timeout
        self._transport = transport
        self._client: ClientPool | None = None
        self._token: str | None = None
        self._renew_at = 0.0
        self._token_lock = asyncio.Lock()
        self.token_exchanges = 0  # how many access tokens were fetched (tests and logs)

    @property
    def send_url(self) -> str:
        return f"{self.endpoint}/v1/projects/{self.account.project_id}/messages:send"

    async def open(self) -> None:
        if self._client is None:
            self._client = ClientPool(self.concurrency, timeout=self.timeout, http2=True, transport=self._transport)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def access_token(self, *, stale: str | None = None) -> str:
        """The cached OAuth token, or a new one when it is about to expire (or ``stale`` was refused)."""
        async with self._token_lock:
            now = time.time()
            if self._token and self._token != stale and now < self._renew_at:
                return self._token
            assert self._client is not None
            try:
                response = await self._client.pick().post(
                    self.account.token_uri,
                    data={"grant_type": GRANT_TYPE, "assertion": self.account.assertion(now)},
                )
            except httpx.HTTPError as error:
                raise FcmAuthError(f"token exchange failed: {type(error).__name__}: {error}") from None
            if response.status_code != 200:
                raise FcmAuthError(f"token exchange answered HTTP {response.status_code}: {response.text[:200]}")
            body = response.json()
            self._token = body["access_token"]
            lifetime = float(body.get("expires_in", 3600))
            # Renewed RENEW_BEFORE seconds before expiry; a short-lived token after half its life.
            self._renew_at = now + lifetime - min(RENEW_BEFORE, lifetime / 2)
            self.token_exchanges += 1
            return self._token

    @staticmethod
    def message(data: dict[str, Any], device: Device, *, push_id: str, expiration: datetime | None,
                priority: str | None, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        core = {key: value for key, value in data.items() if key not in _APNS_INTEGER_KEYS}
        android: dict[str, Any] = {"priority": "high" if is_high_priority(priority) else "normal"}
        if expiration is not None:
            android["ttl"] = f"{ttl_seconds(expiration, now)}s"
        return {
            "message": {
                "token": device.device_token,
                "data": {
                    "push_id": push_id,
                    "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace(
                        "+00:00", "Z"),
                    "data": json.dumps(core, separators=(",", ":"), ensure_ascii=False),
                },
                "android": android,
            }
        }

    async def send(self, data: dict[str, Any], devices: list[Device], *, push_id: str, expiration: datetime | None,
                   priority: str | None = None) -> list[Delivery]:
        await self.open()
        try:
            await self.access_token()
        except FcmAuthError as error:
            return [Delivery(d.installation_id, ok=False, error=str(error), retry_after=30.0) for d in devices]

        async def one(device: Device) -> Delivery:
            body = self.message(data, device, push_id=push_id, expiration=expiration, priority=priority)
            return await self._send_one(device, body)

        return await fan_out(devices, self.concurrency, one)

    async def _send_one(self, device: Device, body: dict[str, Any]) -> Delivery:
        assert self._client is not None
        token = await self.access_token()
        for attempt in range(2):
            try:
                response = await self._client.pick().post(
                    self.send_url, json=body, headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as error:
                return transport_failure(device.installation_id, error)
            if response.status_code == 401 and attempt == 0:  # the token was refused: a new one, once
                try:
                    token = await self.access_token(stale=token)
                except FcmAuthError as error:
                    return Delivery(device.installation_id, ok=False, error=str(error), retry_after=30.0)
                continue
            break
        return self._delivery(device, response)

    @staticmethod
    def _delivery(device: Device, response: httpx.Response) -> Delivery:
        status = response.status_code
        if status == 200:
            return Delivery(device.installation_id, ok=True)
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        codes = {code for detail in error.get("details") or []
                 if isinstance(detail, dict) and isinstance(code := detail.get("errorCode"), str)}
        state = error.get("status") or ""
        text = f"HTTP {status} {'/'.join(sorted(codes)) or state}: {error.get('message', response.text[:200])}"
        if status == 404 or "UNREGISTERED" in codes or state == "NOT_FOUND":
            return Delivery(device.installation_id, ok=False, error=text, gone=True)
        if "INVALID_ARGUMENT" in codes or state == "INVALID_ARGUMENT":
            if _about_token(error):
                return Delivery(device.installation_id, ok=False, error=text, gone=True)
            return Delivery(device.installation_id, ok=False, error=text)
        if status == 429 or status >= 500 or codes & {"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"}:
            return Delivery(device.installation_id, ok=False, error=text, retry_after=retry_after(response))
        return Delivery(device.installation_id, ok=False, error=text)


def _about_token(error: dict[str, Any]) -> bool:
    """Whether an INVALID_ARGUMENT error is about the registration token (not the message)."""
    for detail in error.get("details") or []:
        for violation in (detail or {}).get("fieldViolations") or []:
            if str(violation.get("field", "")).endswith("token"):
                return True
    return "registration token" in str(error.get("message", "")).lower()
