"""PostgreSQL's btree order of ``jsonb`` values (jsonb_util.c compareJsonbContainers), in Python.

Parse Server on PostgreSQL answers ``distinct`` of an Object field, or of a key inside one, in this
order (``SELECT DISTINCT ON (…)`` sorts), so both of Bastion's databases sort such results with it.

A value is read as the stream of tokens PostgreSQL iterates: a container's start (an array with its
length, marked when it only wraps a top-level scalar; an object with its number of pairs), its
elements, or its keys (stored shortest first, then bytewise) each followed by its value, and its end.
Two streams are compared token by token: same-kind tokens by length or scalar value, others by the
type order null < string < number < boolean < array < object.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cmp_to_key
from typing import Any

# PostgreSQL's enum jbvType: the order of values of different types.
_NULL, _STRING, _NUMBER, _BOOL, _ARRAY, _OBJECT = 0, 1, 2, 3, 0x10, 0x11
_BEGIN_ARRAY, _BEGIN_OBJECT, _END, _SCALAR = "begin-array", "begin-object", "end", "scalar"

Token = tuple[str, int, Any]  # (kind, jbvType, scalar value or (raw scalar?, length))


def _scalar_type(value: Any) -> int:
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, (int, float)):
        return _NUMBER
    return _STRING


def _tokens(value: Any, top: bool = True) -> Iterator[Token]:
    if isinstance(value, dict):
        yield _BEGIN_OBJECT, _OBJECT, len(value)
        for key in sorted(value, key=lambda k: (len(k.encode()), k.encode())):
            yield _SCALAR, _STRING, key
            yield from _tokens(value[key], top=False)
        yield _END, _OBJECT, None
    elif isinstance(value, list):
        yield _BEGIN_ARRAY, _ARRAY, (False, len(value))
        for item in value:
            yield from _tokens(item, top=False)
        yield _END, _ARRAY, None
    elif top:  # a top-level scalar is stored as a one-element "raw scalar" array
        yield _BEGIN_ARRAY, _ARRAY, (True, 1)
        yield _SCALAR, _scalar_type(value), value
        yield _END, _ARRAY, None
    else:
        yield _SCALAR, _scalar_type(value), value


def _compare_scalars(kind: int, a: Any, b: Any) -> int:
    if kind == _NULL:
        return 0
    order: int = (a > b) - (a < b)  # strings by code point: COLLATE "C", as Bastion compares text
    return order


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1 as PostgreSQL orders ``a::jsonb`` and ``b::jsonb``."""
    for (kind_a, type_a, arg_a), (kind_b, type_b, arg_b) in zip(_tokens(a), _tokens(b), strict=False):
        if kind_a != kind_b or type_a != type_b:
            return 1 if type_a > type_b else -1
        if kind_a == _BEGIN_ARRAY:
            (raw_a, len_a), (raw_b, len_b) = arg_a, arg_b
            if len_a != len_b:  # the length decides even against a raw scalar: [] sorts before null
                return 1 if len_a > len_b else -1
            if raw_a != raw_b:
                return -1 if raw_a else 1
        elif kind_a == _BEGIN_OBJECT:
            if arg_a != arg_b:
                return 1 if arg_a > arg_b else -1
        elif kind_a == _SCALAR:
            order = _compare_scalars(type_a, arg_a, arg_b)
            if order:
                return order
    return 0


sort_key = cmp_to_key(compare)
