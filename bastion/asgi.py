"""The ASGI factory uvicorn workers call: settings come from ``BASTION_*`` environment variables."""

from __future__ import annotations

from bastion.app import Bastion
from bastion.config import settings_from_env


def build() -> Bastion:
    return Bastion(settings_from_env())
