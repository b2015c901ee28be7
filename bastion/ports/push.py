"""The contract between the push queue (bastion/domain/push_queue.py) and the push services.

An adapter turns Parse's push ``data`` object into the wire format of one service (Web Push,
FCM HTTP v1, APNs) and reports one :class:`Delivery` per device. It never raises for a
per-device failure: a dead token is ``gone=True`` (the queue deletes the installation), a
transient failure carries ``retry_after`` (the queue retries with backoff).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class Device:
    installation_id: str  # the _Installation objectId
    device_type: str  # "ios", "android", "web", "osx", "tvos", "watchos", ...
    device_token: str  # APNs hex token, FCM registration token, or the web push subscription JSON text
    app_identifier: str | None = None
    badge: int | None = None  # the badge to show, already resolved ("Increment" applied by the queue)
    locale: str | None = None


@dataclass(slots=True)
class Delivery:
    installation_id: str
    ok: bool
    error: str | None = None
    gone: bool = False  # the service says the token is dead (404/410, UNREGISTERED, BadDeviceToken)
    retry_after: float | None = None  # transient (429/5xx): seconds hint when the service gave one


class PushAdapter(ABC):
    name: str  # "webpush" | "fcm" | "apns"
    device_types: frozenset[str]  # which installations it serves
    concurrency: int = 16  # parallel requests this adapter allows

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare connections/credentials. Called once before the first send."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abstractmethod
    async def send(
        self,
        data: dict[str, Any],
        devices: list[Device],
        *,
        push_id: str,
        expiration: datetime | None,
        priority: str | None = None,
    ) -> list[Delivery]:
        """Deliver ``data`` to every device; one Delivery per device, in order."""
