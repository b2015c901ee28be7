"""Parse's ``$relativeTime`` ("in 2 days", "3 hours ago", "now") as a date."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bastion.errors import Code, ParseError

_UNITS = {
    **dict.fromkeys(("yr", "yrs", "year", "years"), 365 * 86400),
    **dict.fromkeys(("mo", "mos", "month", "months"), 30 * 86400),
    **dict.fromkeys(("wk", "wks", "week", "weeks"), 7 * 86400),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
}


def relative_time(text: Any, now: datetime | None = None) -> datetime:
    """Parse's ``$relativeTime``: "in 2 days", "3 hours ago", "now"."""
    now = now or datetime.now(UTC)

    def bad(info: str) -> ParseError:
        return ParseError(Code.INVALID_JSON, f"bad $relativeTime ({str(text)[:80]}) value. {info}")

    if not isinstance(text, str) or len(text) > 200:
        raise bad("Time should be a string")
    parts = text.lower().split()
    if parts == ["now"]:
        return now
    future, past = bool(parts) and parts[0] == "in", bool(parts) and parts[-1] == "ago"
    if not future and not past:
        raise bad("Time should either start with 'in' or end with 'ago'")
    if future and past:
        raise bad("Time cannot have both 'in' and 'ago'")
    parts = parts[1:] if future else parts[:-1]
    if len(parts) % 2 != 0 or not parts:
        raise bad("Invalid time string. Dangling unit or number.")
    seconds = 0
    for number, unit in zip(parts[0::2], parts[1::2], strict=True):
        if not re.fullmatch(r"-?\d{1,9}", number):
            raise bad(f"'{number}' is not an integer.")
        if unit not in _UNITS:
            raise bad(f"Invalid interval: '{unit}'")
        seconds += int(number) * _UNITS[unit]
    try:
        delta = timedelta(seconds=seconds)
        return now + delta if future else now - delta
    except OverflowError:
        raise bad("Date is out of range.") from None
