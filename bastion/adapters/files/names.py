"""The one name check every backend repeats for itself: a name means a file directly inside the
backend's namespace, never a path (domain/file_rules.py validated it by Parse's rules already)."""

from __future__ import annotations

MAX_NAME_BYTES = 240  # below every common file system's 255, leaving room for a ".json" sidecar


def check_backend_name(name: str) -> str:
    """``name`` unchanged, or ValueError when it could escape (a separator, a dot name, a control
    character) or is empty or too long."""
    if (not name or name.startswith(".") or len(name.encode()) > MAX_NAME_BYTES
            or any(c in name for c in "/\\") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)):
        raise ValueError(f"unusable file name: {name[:80]!r}")
    return name
