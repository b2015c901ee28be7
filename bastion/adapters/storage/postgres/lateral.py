"""Several runs of one PostgreSQL query statement, each with its own values, as one statement.

A statement whose parameters are ``$1..$n`` becomes

    SELECT _p.i, _b.* FROM unnest($1::float8[], …) WITH ORDINALITY AS _p(v1, …, i)
    CROSS JOIN LATERAL (<the statement, reading _p.v1 … where it read its own values>) _b

The values that differ from run to run travel as one array per parameter; ``_p.i`` numbers the
runs, so rows are told apart by it, and each run keeps its own ORDER BY, LIMIT and OFFSET inside
the subquery. PostgreSQL plans the statement once and runs the subquery once per run, which costs
it far less than as many statements, and the client one round trip instead of many.

Only a parameter used once, cast to a scalar type (``$3::float8``), can vary; any other (arrays,
LIMIT and OFFSET, which may not read a column) is bound once for all runs, so runs share a batch
only when those values are equal (``LateralPlan.shared_key``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Scalar types a parameter may be cast to and still vary (its values travel as an array of it).
# jsonb is not among them: the connection's own jsonb codec would not encode an array's elements.
VARYING_TYPES = frozenset({"float8", "numeric", "text", "bool", "boolean", "timestamptz",
                           "int4", "int8", "integer", "bigint"})
_CAST = re.compile(r"::([a-z0-9_]+)(\[\])?")
_CACHE_LIMIT = 1024
_plans: dict[str, LateralPlan | None] = {}


@dataclass(frozen=True, slots=True)
class LateralPlan:
    sql: str  # the batched statement
    varying: tuple[int, ...]  # 0-based indexes of the values that travel as arrays
    types: tuple[str, ...]  # the type of each varying value
    shared: tuple[int, ...]  # 0-based indexes of the values bound once

    def shared_key(self, values: list[Any]) -> tuple[Any, ...] | None:
        """The shared values, hashable (runs batch together only when these are equal); None
        when one cannot be compared (the run then goes alone)."""
        out = []
        for index in self.shared:
            value = _hashable(values[index])
            if value is _UNHASHABLE:
                return None
            out.append(value)
        return tuple(out)

    def arguments(self, runs: list[list[Any]], encoders: dict[str, Callable[[Any], Any]]) -> list[Any]:
        """The batched statement's values: an array per varying parameter, then the shared ones.
        ``encoders`` (by type) do for array elements what the connection's codecs do for values."""
        arrays = []
        for index, type_name in zip(self.varying, self.types, strict=True):
            encode = encoders.get(type_name)
            column = [run[index] for run in runs]
            arrays.append(column if encode is None else [None if v is None else encode(v) for v in column])
        return arrays + [runs[0][index] for index in self.shared]


def lateral_plan(sql: str, count: int) -> LateralPlan | None:
    """The batched form of ``sql`` (with ``count`` parameters), or None when no parameter can vary."""
    try:
        return _plans[sql]
    except KeyError:
        pass
    plan = _plan(sql, count)
    if len(_plans) >= _CACHE_LIMIT:
        _plans.clear()
    _plans[sql] = plan
    return plan


def _plan(sql: str, count: int) -> LateralPlan | None:
    uses: dict[int, list[str | None]] = {}  # parameter number -> the type it is cast to at each use
    for number, _start, end in _placeholders(sql):
        cast = _CAST.match(sql, end)
        uses.setdefault(number, []).append(cast.group(1) if cast and not cast.group(2) else None)
    if set(uses) != set(range(1, count + 1)):
        return None
    varying = [n for n, types in sorted(uses.items()) if len(types) == 1 and types[0] in VARYING_TYPES]
    if not varying:
        return None
    shared = [n for n in sorted(uses) if n not in varying]
    column = {n: f"_p.v{n}" for n in varying}
    renumbered = {n: f"${len(varying) + rank + 1}" for rank, n in enumerate(shared)}
    inner = _substitute(sql, {**column, **renumbered})
    arrays = ", ".join(f"${rank + 1}::{uses[n][0]}[]" for rank, n in enumerate(varying))
    names = ", ".join(f"v{n}" for n in varying)
    text = (f"SELECT _p.i, _b.* FROM unnest({arrays}) WITH ORDINALITY AS _p({names}, i) "
            f"CROSS JOIN LATERAL ({inner}) _b")
    return LateralPlan(text, tuple(n - 1 for n in varying), tuple(str(uses[n][0]) for n in varying),
                       tuple(n - 1 for n in shared))


def _placeholders(sql: str) -> list[tuple[int, int, int]]:
    """``(number, start, end)`` of every ``$N`` outside quoted text (string constants, E'' strings,
    quoted identifiers), where a ``$`` is not a parameter."""
    found = []
    i, end = 0, len(sql)
    while i < end:
        c = sql[i]
        if c == "'" or c == '"':
            i = _quoted_end(sql, i, escapes=c == "'" and i > 0 and sql[i - 1] in "eE")
        elif c == "$" and i + 1 < end and sql[i + 1].isdigit():
            j = i + 1
            while j < end and sql[j].isdigit():
                j += 1
            found.append((int(sql[i + 1:j]), i, j))
            i = j
        else:
            i += 1
    return found


def _substitute(sql: str, replacement: dict[int, str]) -> str:
    out, last = [], 0
    for number, start, end in _placeholders(sql):
        out += [sql[last:start], replacement[number]]
        last = end
    out.append(sql[last:])
    return "".join(out)


def _quoted_end(sql: str, start: int, escapes: bool) -> int:
    """The index just past the quoted text opening at ``start`` (a doubled quote stays inside; in
    an E'' string a backslash escapes the next character)."""
    quote = sql[start]
    i, end = start + 1, len(sql)
    while i < end:
        c = sql[i]
        if escapes and c == "\\":
            i += 2
            continue
        if c == quote:
            if i + 1 < end and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return end


_UNHASHABLE: Any = object()


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        items = tuple(_hashable(v) for v in value)
        return _UNHASHABLE if any(item is _UNHASHABLE for item in items) else (type(value).__name__, items)
    if value is None or isinstance(value, (str, int, float, bool, bytes, datetime)):
        return (type(value).__name__, value)  # 1 and 1.0 and True stay apart
    return _UNHASHABLE
