"""The ASGI factory uvicorn workers call: settings come from ``BASTION_*`` environment variables."""

from __future__ import annotations

from bastion.app import Bastion
from bastion.config import settings_from_env
from bastion.http.server import raise_open_file_limit
from bastion.logs import configure


def build() -> Bastion:
    settings = settings_from_env()
    # Worker processes (--workers N) start afresh: their log lines as the first process's.
    configure(settings.log_level)
    raise_open_file_limit()  # already done by `bastion serve`; here when uvicorn is started by hand
    return Bastion(settings)
