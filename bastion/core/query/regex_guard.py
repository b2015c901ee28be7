"""Which ``$regex`` patterns Bastion runs, and what one costs on a text of a given length.

Python's ``re`` (used by the SQLite adapter and the matcher) backtracks: nested quantifiers such as
``(a+)+$`` take exponential time on a text that almost matches, and ``k`` quantifiers in a row
(``a*a*a*b``) take up to n^(k+1) steps. ``check_regex`` refuses the first kind outright (102) when a
query is parsed, so no backend ever runs one; ``regex_shape(...).affordable(n)`` lets an adapter that
runs ``re`` itself refuse a match whose worst case on a text of length n is out of bounds.

The analysis walks the tree of Python's own regular-expression parser, so what is checked is what
would run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from bastion.errors import Code, ParseError

MAX_QUANTIFIERS = 6  # variable-length repetitions in one pattern
COST_BUDGET = 10**8  # worst-case backtracking steps one match may take (well under a second)

_REPEATS = frozenset({sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT)})
_BACKREFS = frozenset({sre.GROUPREF, sre.GROUPREF_EXISTS, getattr(sre, "GROUPREF_IGNORE", sre.GROUPREF)})
_STARTS = frozenset({sre.AT_BEGINNING, sre.AT_BEGINNING_STRING})


class UnsafeRegex(ValueError):
    """A pattern Bastion will not run; the message says why."""


@dataclass(frozen=True, slots=True)
class RegexShape:
    quantifiers: int  # variable-length repetitions that can multiply backtracking
    anchored: bool  # tried at the start of the text only

    def cost(self, length: int) -> int:
        """Worst-case steps of a search in a text of ``length`` characters."""
        steps: int = max(length, 1) ** (self.quantifiers + (0 if self.anchored else 1))  # exponent >= 0: an int
        return steps

    def affordable(self, length: int) -> bool:
        return self.cost(length) <= COST_BUDGET


def regex_flags(ignore_case: bool, multiline: bool, extended: bool) -> int:
    """Python flags for a Parse regex: DOTALL because PostgreSQL lets "." match a newline."""
    flags = re.DOTALL
    if ignore_case:
        flags |= re.IGNORECASE
    if multiline:
        flags |= re.MULTILINE
    if extended:
        flags |= re.VERBOSE
    return flags


@lru_cache(maxsize=512)
def _analyse(pattern: str, flags: int) -> RegexShape | str:
    """The shape of a pattern, or why it is refused (cached: adapters ask once per row)."""
    try:
        re.compile(pattern, flags)
        parsed = sre_parse.parse(pattern, flags)
        items = list(parsed)
        # A quantifier with nothing after it never has to give characters back to what follows.
        last = items[-1] if items else None
        trailing = last is not None and last[0] in _REPEATS
        count = _count(items[:-1] if trailing else items)
        if trailing:
            _count([last])  # still checked for nesting, not counted
    except UnsafeRegex as exc:
        return str(exc)
    except (re.error, RecursionError, OverflowError, ValueError, TypeError):
        return "Invalid regular expression"
    if count > MAX_QUANTIFIERS:
        return f"The regular expression has too many quantifiers (at most {MAX_QUANTIFIERS})."
    multiline = bool(parsed.state.flags & re.MULTILINE)
    first = items[0] if items else None
    anchored = (first is not None and first[0] == sre.AT
                and (first[1] == sre.AT_BEGINNING_STRING or (first[1] == sre.AT_BEGINNING and not multiline)))
    return RegexShape(count, anchored)


def _count(items: Any) -> int:
    """Variable-length repetitions in a parsed sequence; raises UnsafeRegex for nested ones."""
    total = 0
    for op, arg in items:
        if op in _REPEATS:
            low, high, body = arg
            inner = _count(body)
            if low != high:
                if inner or _has_branch(body):
                    raise UnsafeRegex("The regular expression nests quantifiers (it could backtrack without end).")
                total += 1
            else:
                total += inner * high
        elif op in _BACKREFS:
            raise UnsafeRegex("Backreferences are not supported in $regex.")
        elif op == sre.SUBPATTERN:
            total += _count(arg[-1])
        elif op == sre.BRANCH:
            total += max((_count(branch) for branch in arg[1]), default=0)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            total += _count(arg[1])
        elif op == getattr(sre, "ATOMIC_GROUP", None):
            total += _count(arg)
    return total


def _has_branch(items: Any) -> bool:
    for op, arg in items:
        if op == sre.BRANCH:
            return True
        if op == sre.SUBPATTERN and _has_branch(arg[-1]):
            return True
        if op in (sre.ASSERT, sre.ASSERT_NOT) and _has_branch(arg[1]):
            return True
    return False


def regex_shape(pattern: str, ignore_case: bool = False, multiline: bool = False,
                extended: bool = False) -> RegexShape:
    """The shape of a pattern; raises UnsafeRegex for one that ``check_regex`` refuses."""
    shape = _analyse(pattern, regex_flags(ignore_case, multiline, extended))
    if isinstance(shape, str):
        raise UnsafeRegex(shape)
    return shape


def check_regex(pattern: str, ignore_case: bool = False, multiline: bool = False, extended: bool = False) -> None:
    """Refuse (102) a pattern that does not parse or could backtrack without end."""
    shape = _analyse(pattern, regex_flags(ignore_case, multiline, extended))
    if isinstance(shape, str):
        raise ParseError(Code.INVALID_QUERY, shape)
