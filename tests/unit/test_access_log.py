"""`bastion serve` logs no line per request unless --access-log: the app factory configures the logs
again after uvicorn did (bastion/asgi.py), and must not turn uvicorn's access log back on."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from uvicorn.config import Config

from bastion.logs import configure

_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    try:
        yield
    finally:
        for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


@pytest.mark.parametrize("access_log", [False, True])
def test_the_factory_keeps_the_access_log_as_uvicorn_set_it(restored_logging: None, access_log: bool) -> None:
    configure("info")  # `bastion serve`, before uvicorn.run
    logging.getLogger("uvicorn.access").propagate = True  # as a fresh process has it
    Config(app=lambda: None, access_log=access_log, log_config=None, log_level="info")  # uvicorn's set-up
    configure("info")  # bastion.asgi.build, in the worker
    # uvicorn's protocol writes a request's access line only when this logger has a handler somewhere.
    assert logging.getLogger("uvicorn.access").hasHandlers() is access_log
    assert logging.getLogger("uvicorn.error").hasHandlers()
