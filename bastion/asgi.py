"""The ASGI factory uvicorn workers call: settings come from ``BASTION_*`` environment variables."""

from __future__ import annotations

import logging
import os

from bastion.app import Bastion
from bastion.config import settings_from_env
from bastion.http.server import raise_open_file_limit
from bastion.logs import configure

# uvicorn's exit status for a start-up failure: its supervisor then stops instead of restarting
# the worker over and over (bastion.startup.STARTUP_FAILURE).
_STARTUP_FAILURE = 3


def build() -> Bastion:
    settings = settings_from_env()
    # Worker processes (--workers N) start afresh: their log lines as the first process's.
    configure(settings.log_level)
    raise_open_file_limit()  # already done by `bastion serve`; here when uvicorn is started by hand
    try:
        return Bastion(settings)
    except Exception as error:  # noqa: BLE001 - one line, and an exit that stops the other workers too
        log = logging.getLogger("bastion")
        log.error("start-up failed: %s: %s", type(error).__name__, error, exc_info=log.isEnabledFor(logging.DEBUG))
        # At once (not sys.exit, which waits for threads): the supervisor sees the exit status now.
        logging.shutdown()
        os._exit(_STARTUP_FAILURE)
