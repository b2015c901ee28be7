"""Parse Server's verbose request log: "REQUEST for [GET] /parse/…" before a request runs and
"RESPONSE from [GET] /parse/…" after it, with its method, URL, headers and body as fields, so that
they reach the Logs page (``GET /scriptlog``) as Parse Server's do at ``verbose``. Off unless
``--log-level verbose`` (or ``debug``): then a request pays one level test. Secrets in these lines
are masked where they are kept (bastion/domain/script_log.py)."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from bastion.logs import REQUESTS_LOGGER, VERBOSE

log = logging.getLogger(REQUESTS_LOGGER)


def enabled() -> bool:
    return log.isEnabledFor(VERBOSE)


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def request(method: str, url: str, headers: dict[str, str], body: Any) -> None:
    body = body if isinstance(body, dict) else {}
    log.log(VERBOSE, "REQUEST for [%s] %s: %s", method, url, _pretty(body),
            extra={"parse": {"method": method, "url": url, "headers": headers, "body": body}})


def response(method: str, url: str, status: int, body: bytes) -> None:
    try:
        result: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        result = None  # not JSON (a file, a page): only its status is logged
    answer = {"status": status, "response": result}
    log.log(VERBOSE, "RESPONSE from [%s] %s: %s", method, url, _pretty(answer), extra={"parse": {"result": answer}})
