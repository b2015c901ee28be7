"""Structured logs: one JSON object per line, so they can be shipped and searched."""

from __future__ import annotations

import logging
import sys
import time

import orjson

# Parse Server's ``verbose`` level (between info and debug): every request and answer is logged.
VERBOSE = 15
logging.addLevelName(VERBOSE, "VERBOSE")
LEVELS = ("debug", "verbose", "info", "warning", "error")
# The logger of those request and answer lines (bastion/http/request_log.py).
REQUESTS_LOGGER = "bastion.requests"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
    # uvicorn's lines as ours. Not the access log's: uvicorn stops it propagating when it is off
    # (--no-access-log), before the app factory calls this again, and its protocol then skips
    # writing each request's line (which would reach the root handler at --log-level info).
    logging.getLogger("uvicorn").propagate = True
    logging.getLogger("uvicorn.error").propagate = True
    # httpx logs every request at INFO: one line per push delivery, with the device token or push
    # endpoint in its URL. Shown with --log-level debug only.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level.lower() == "debug" else logging.WARNING)
