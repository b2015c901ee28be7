"""Push service adapters: Web Push (always), FCM HTTP v1 and APNs (when configured).

See docs/push.md ("Adapters") for the settings and what each service receives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bastion.ports.push import Delivery, Device, PushAdapter

__all__ = ["Delivery", "Device", "PushAdapter", "default_vapid_subject", "open_push_adapters"]


def default_vapid_subject(settings: Any) -> str:
    """The VAPID ``sub`` when none is configured: the server's public origin when it is https."""
    url = getattr(settings, "server_url", None) or ""
    if url.startswith("https://"):
        return "https://" + url[len("https://"):].split("/", 1)[0]
    return "mailto:push@localhost"


def open_push_adapters(settings: Any, data_dir: Path | str) -> list[PushAdapter]:
    """The adapters ``settings`` configure. Raises ValueError for unusable settings (a missing key file,
    a key id without a key, …) so the server refuses to start with the reason."""
    from bastion.adapters.push.apns import ApnsAdapter, load_p8
    from bastion.adapters.push.fcm import DEFAULT_ENDPOINT, FcmAdapter, ServiceAccount
    from bastion.adapters.push.webpush import WebPushAdapter, vapid_keys_from_settings

    adapters: list[PushAdapter] = []
    keys = vapid_keys_from_settings(settings, data_dir)
    subject = getattr(settings, "vapid_subject", None) or default_vapid_subject(settings)
    adapters.append(WebPushAdapter(keys, subject))

    account = getattr(settings, "fcm_service_account", None)
    if account:
        endpoint = getattr(settings, "fcm_endpoint", None) or DEFAULT_ENDPOINT
        adapters.append(FcmAdapter(ServiceAccount.load(account), endpoint=endpoint))
    elif getattr(settings, "fcm_endpoint", None) not in (None, DEFAULT_ENDPOINT):
        raise ValueError("--fcm-endpoint needs --fcm-service-account")

    apns_key = getattr(settings, "apns_key", None)
    key_id = getattr(settings, "apns_key_id", None)
    team_id = getattr(settings, "apns_team_id", None)
    if apns_key:
        if not key_id or not team_id:
            raise ValueError("--apns-key needs --apns-key-id and --apns-team-id")
        adapters.append(ApnsAdapter(
            load_p8(apns_key), key_id=key_id, team_id=team_id, topic=getattr(settings, "apns_topic", None),
            production=bool(getattr(settings, "apns_production", False)),
            endpoint=getattr(settings, "apns_endpoint", None)))
    elif key_id or team_id:
        raise ValueError("--apns-key-id and --apns-team-id need --apns-key (the .p8 file)")
    return adapters
