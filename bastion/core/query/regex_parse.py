"""``$regex`` constraints: options, length, the SDKs' ``\\Q…\\E`` literal sections read as Parse Server
reads them, and patterns refused when they can backtrack without end."""

from __future__ import annotations

import re
from typing import Any

from bastion.core.query import ir
from bastion.core.query.regex_guard import check_regex
from bastion.errors import Code, ParseError


def regex_constraint(field: ir.Field | None, pattern: Any, options: Any, max_length: int) -> ir.Node:
    """``{"$regex": pattern, "$options": options}`` on ``field`` (None: a field the class lacks)."""
    if not isinstance(pattern, str):
        raise ParseError(Code.INVALID_QUERY, "bad $regex")
    if len(pattern) > max_length:
        raise ParseError(Code.INVALID_QUERY, "$regex is too long")
    if not isinstance(options, str) or any(ch not in "imxs" for ch in options):
        raise ParseError(Code.INVALID_QUERY, "Invalid regex options")
    pattern = quote_literal_sections(pattern)
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        raise ParseError(Code.INVALID_QUERY, "Invalid regular expression") from None
    check_regex(pattern, "i" in options, "m" in options, "x" in options)  # no catastrophic backtracking
    if field is None:
        return ir.FALSE
    if field.value_type not in ("String", "Json"):
        return ir.FALSE
    return ir.Regex(field, pattern, "i" in options, "m" in options, "x" in options)


_QUOTED = re.compile(r"\\Q(.*?)(?:\\E|\Z)", re.DOTALL)


def escape_regex_literal(text: str) -> str:
    # Backslash before every character but letters, digits, "_" and spaces: a literal in Python
    # and PostgreSQL regular expressions alike (a backslash before a letter or digit is an escape).
    return "".join(ch if ch.isalnum() or ch in "_ " else "\\" + ch for ch in text)


def starts_with_regex(item: Any) -> bool:
    """Parse Server's isStartsWithRegex: ``{"$regex": "^\\Q…\\E…"}``, as the SDKs' startsWith writes it."""
    pattern = item.get("$regex") if isinstance(item, dict) else None
    return isinstance(pattern, str) and pattern.startswith("^") and _QUOTED.search(pattern) is not None


def starts_with_prefix(pattern: str) -> str:
    """The literal text a ``^\\Q…\\E`` expression starts with (quoted sections unquoted, the rest
    taken as written, as Parse Server's literalizeRegexPart does)."""
    return _QUOTED.sub(lambda m: m.group(1), pattern[1:])


def quote_literal_sections(pattern: str) -> str:
    """A ``$regex`` with the SDKs' ``\\Q…\\E`` literal sections read as Parse Server on PostgreSQL
    reads them (processRegexPattern): a ``^`` or else a ``$`` at the ends stays, and of the rest,
    the text from the first ``\\Q`` to a ``\\E`` that ends it (or to its end, when none does) is
    literal, the part before it read the same way; with no such section, a stray ``\\E`` and ``\\Q``
    (the first of each not after a backslash, and one at the start) are dropped."""
    if "\\Q" not in pattern and "\\E" not in pattern:
        return pattern
    if pattern.startswith("^"):
        return "^" + _literalize(pattern[1:])
    if pattern.endswith("$"):
        return _literalize(pattern[:-1]) + "$"
    return _literalize(pattern)


# JavaScript's "." (no s flag) stops at line terminators, and its "$" (no m flag) is the very end.
_QUOTED_TO_E_AT_END = re.compile(r"\\Q(?!\\E)([^\n\r\u2028\u2029]*)\\E\Z")
_QUOTED_TO_END = re.compile(r"\\Q(?!\\E)([^\n\r\u2028\u2029]*)\Z")
_STRAY_E = re.compile(r"([^\\])\\E")
_STRAY_Q = re.compile(r"([^\\])\\Q")


def _literalize(text: str) -> str:
    for section in (_QUOTED_TO_E_AT_END, _QUOTED_TO_END):
        found = section.search(text)
        if found:
            return _literalize(text[:found.start()]) + escape_regex_literal(found.group(1))
    text = _STRAY_E.sub(r"\1", text, count=1)
    text = _STRAY_Q.sub(r"\1", text, count=1)
    return text.removeprefix("\\E").removeprefix("\\Q")
