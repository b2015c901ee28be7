"""ts_rank_cd(..., 32): cover density with normalisation 32 (rank / (rank + 1)), rounded to float4,
and the score as PostgreSQL prints it."""

from __future__ import annotations

import struct

from bastion.core.text_search.match import execute
from bastion.core.text_search.tsquery import Not, QueryNode, Val, parse_query
from bastion.core.text_search.vector import WEIGHT_D, to_tsvector

# Query evaluations one ranking may spend: ordinary documents need hundreds; the cover search is
# quadratic in the matched positions, which a hostile document can make tens of thousands.
MAX_RANK_STEPS = 200_000


class RankTooCostly(RuntimeError):
    """ts_rank_cd's cover search would take too long on this document (see MAX_RANK_STEPS)."""


_INVERSE_D = 1.0 / struct.unpack("f", struct.pack("f", 0.1))[0]  # 1 / float4 weight of D, as a double


def float4(value: float) -> float:
    single: float = struct.unpack("f", struct.pack("f", value))[0]
    return single


def _operands(node: QueryNode) -> list[Val]:
    if isinstance(node, Val):
        return [node]
    if isinstance(node, Not):
        return _operands(node.child)
    return _operands(node.left) + _operands(node.right)


def rank(language: str, term: str, text: object) -> float:
    """``ts_rank_cd(to_tsvector(language, text), to_tsquery(language, term), 32)`` as a float4."""
    if not isinstance(text, str):
        return 0.0
    root = parse_query(language, term).root
    if root is None:
        return 0.0
    vector = to_tsvector(language, text)
    # The document as the query sees it: each position where some operand matches, in order.
    at: dict[tuple[int, str], set[Val]] = {}
    for val in dict.fromkeys(_operands(root)):
        if val.weights and not val.weights & WEIGHT_D:
            continue
        for lexeme, where in vector.items():
            if lexeme == val.lexeme or (val.prefix and lexeme.startswith(val.lexeme)):
                for position in where:
                    at.setdefault((position, lexeme), set()).add(val)
    if not at:
        return 0.0
    doc = sorted(at.items(), key=lambda item: (item[0][0], item[0][1].encode()))
    wdoc = 0.0
    start = 0
    steps = [MAX_RANK_STEPS]
    while (cover := _cover(doc, start, root, steps)) is not None:
        begin, end, p, q, start = cover
        inv_sum = 0.0
        for _ in range(begin, end + 1):
            inv_sum += _INVERSE_D
        cpos = (end - begin + 1) / inv_sum
        noise = (q - p) - (end - begin)
        if noise < 0:
            noise = (end - begin) // 2
        wdoc += cpos / (1 + noise)
    wdoc /= wdoc + 1
    return float4(wdoc)


def _cover(doc: list[tuple[tuple[int, str], set[Val]]], start: int, root: QueryNode,
           steps: list[int]) -> tuple[int, int, int, int, int] | None:
    """The next cover from ``start``: (begin, end, first position, last position, next start)."""
    seen: dict[Val, set[int]] = {}

    def lookup(val: Val) -> set[int]:
        steps[0] -= 1
        if steps[0] < 0:
            raise RankTooCostly("ranking this document would take too long")
        return seen.get(val, set())

    while True:
        seen.clear()
        end = -1
        for index in range(start, len(doc)):
            (position, _), vals = doc[index]
            for val in vals:
                seen.setdefault(val, set()).add(position)
            if execute(root, lookup):
                end = index
                break
        if end < 0:
            return None
        q = doc[end][0][0]
        seen.clear()
        p, begin = None, -1
        index = end
        while index >= start:
            (position, _), vals = doc[index]
            for val in vals:
                seen.setdefault(val, set()).add(position)
            if execute(root, lookup, calc_not=False):
                p, begin = position, index
                break
            index -= 1
        if p is not None and p <= q:
            return begin, end, p, q, index + 1
        start += 1


def score_value(value: float) -> float:
    """A float4 score as PostgreSQL prints it (the shortest decimal that reads back as the same
    float4), which is what Parse Server's clients receive."""
    single = float4(value)
    for digits in range(1, 10):
        text = f"{single:.{digits}g}"
        if float4(float(text)) == single:
            return float(text)
    return single
