"""Push service adapters (Web Push, FCM HTTP v1, APNs)."""

from __future__ import annotations

from bastion.adapters.push.base import Delivery, Device, PushAdapter

__all__ = ["Delivery", "Device", "PushAdapter", "open_push_adapters"]


def open_push_adapters(settings, data_dir) -> list[PushAdapter]:
    """Adapters for the configured services: Web Push always, FCM and APNs when configured."""
    raise NotImplementedError  # filled in by the adapter modules
