"""The ASGI factory uvicorn workers call: settings come from ``BASTION_*`` environment variables."""

from __future__ import annotations

from bastion.app import Bastion
from bastion.config import settings_from_env
from bastion.logs import configure


def build() -> Bastion:
    settings = settings_from_env()
    # Worker processes (--workers N) start afresh: their log lines as the first process's.
    configure(settings.log_level)
    return Bastion(settings)
