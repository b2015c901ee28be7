"""Structured logs: one JSON object per line, so they can be shipped and searched.

Every process logs the same way (the first one and each ``--workers`` process, which uvicorn sets
up from ``log_config``), and a line written while a request or a LiveQuery connection is served
carries its ``request`` id, so the lines of one request can be found together.
"""

from __future__ import annotations

import itertools
import logging
import logging.config
import secrets
import time
from contextvars import ContextVar
from typing import Any

import orjson

# Parse Server's ``verbose`` level (between info and debug): every request and answer is logged.
VERBOSE = 15
logging.addLevelName(VERBOSE, "VERBOSE")
LEVELS = ("debug", "verbose", "info", "warning", "error")
# The logger of those request and answer lines (bastion/http/request_log.py).
REQUESTS_LOGGER = "bastion.requests"

# The request being served by this task (0: none). A number per process, made readable only when a
# line is written, behind a random prefix per process: unique across workers and hosts.
REQUEST: ContextVar[int] = ContextVar("bastion_request", default=0)
_PROCESS = secrets.token_hex(4)
next_request = itertools.count(1).__next__


def request_id(number: int) -> str:
    return f"{_PROCESS}-{number:x}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        number = REQUEST.get()
        if number:
            entry["request"] = request_id(number)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def log_config(level: str = "info") -> dict[str, Any]:
    """The logging set-up, as a ``logging.config.dictConfig`` dict: uvicorn applies it in each
    worker process before anything there logs."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "bastion.logs.JsonFormatter"}},  # names: the dict is pickled to workers
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": VERBOSE if level.lower() == "verbose" else level.upper()},
        # uvicorn's lines as ours. Not the access log's, nor its parent's (dictConfig resets the
        # children of the loggers it names): uvicorn stops the access log propagating when it is off
        # (--no-access-log), before the app factory configures again, and its protocol then skips
        # writing each request's line (which would reach the root handler at info).
        "loggers": {
            "uvicorn.error": {"handlers": [], "propagate": True},
            # httpx logs every request at INFO: one line per push delivery, with the device token or
            # push endpoint in its URL. Shown with --log-level debug only.
            "httpx": {"level": "DEBUG" if level.lower() == "debug" else "WARNING"},
        },
    }


def configure(level: str = "info") -> None:
    logging.config.dictConfig(log_config(level))
    logging.getLogger("uvicorn.access").handlers[:] = []
