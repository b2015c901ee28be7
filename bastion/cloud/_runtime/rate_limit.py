"""Per-function and per-trigger rate limits, as Parse Server's ``rateLimit`` option has them.

A fixed window per key (the caller's IP, user, session, or everyone): ``requests`` calls per
``window`` seconds, then HTTP 429 ``{"code": 100, "error": "Too many requests."}`` until the window
ends. Counted in this process; several processes each allow the count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bastion.errors import Code, ParseError

ZONES = ("ip", "user", "session", "global")
_MAX_KEYS = 100_000  # windows kept at most; the oldest go first when callers keep changing


@dataclass(slots=True)
class RateLimit:
    requests: int
    window: float  # seconds
    message: str = "Too many requests."
    zone: str = "ip"
    include_master_key: bool = False
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_option(cls, option: Any) -> RateLimit | None:
        """``rate_limit=`` as a RateLimit, or a dict with ``requests``/``window`` (seconds) or Parse's
        ``requestCount``/``requestTimeWindow`` (milliseconds), ``message``/``errorResponseMessage``,
        ``zone`` and ``include_master_key``/``includeMasterKey``."""
        if option is None or isinstance(option, RateLimit):
            return option
        if not isinstance(option, dict):
            raise ValueError("rate_limit must be a dict such as {'requests': 10, 'window': 60}")
        requests = option.get("requests", option.get("requestCount"))
        if "window" in option:
            window = option["window"]
        elif "requestTimeWindow" in option:
            window = option["requestTimeWindow"] / 1000
        else:
            window = None
        if not isinstance(requests, int) or requests < 1 or not isinstance(window, (int, float)) or window <= 0:
            raise ValueError("rate_limit needs a positive 'requests' count and a positive 'window' in seconds")
        zone = option.get("zone", "ip")
        if zone not in ZONES:
            raise ValueError(f"rate_limit zone must be one of {', '.join(ZONES)}")
        return cls(requests, float(window),
                   str(option.get("message", option.get("errorResponseMessage", "Too many requests."))), zone,
                   bool(option.get("include_master_key", option.get("includeMasterKey", False))))

    def check(self, *, ip: str | None, user_id: str | None, session_token: str | None, master: bool) -> None:
        """Counts one call; raises the 429 error when the caller's window is full."""
        if master and not self.include_master_key:
            return
        if self.zone == "global":
            key = "*"
        elif self.zone == "user" and user_id:
            key = "u:" + user_id
        elif self.zone == "session" and session_token:
            key = "s:" + session_token
        else:
            key = "i:" + (ip or "")
        now = time.monotonic()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= self.window:
            started, count = now, 0
        if count >= self.requests:
            raise ParseError(Code.CONNECTION_FAILED, self.message, status=429)
        if len(self._windows) >= _MAX_KEYS and key not in self._windows:
            self._windows.pop(next(iter(self._windows)))
        self._windows[key] = (started, count + 1)
