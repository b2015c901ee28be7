"""``@@``: whether a tsvector matches a tsquery (with positions, for phrases)."""

from __future__ import annotations

from collections.abc import Callable

from bastion.core.text_search.tsquery import Not, QueryNode, Val, parse_query
from bastion.core.text_search.vector import WEIGHT_D, Vector, to_tsvector

Lookup = Callable[[Val], "set[int] | frozenset[int]"]


def _vector_lookup(vector: Vector) -> Lookup:
    def positions(val: Val) -> set[int]:
        if val.weights and not val.weights & WEIGHT_D:
            return set()
        if not val.prefix:
            return set(vector.get(val.lexeme, ()))
        found: set[int] = set()
        for lexeme, where in vector.items():
            if lexeme.startswith(val.lexeme):
                found.update(where)
        return found

    return positions


def execute(node: QueryNode, lookup: Lookup, calc_not: bool = True) -> bool:
    if isinstance(node, Val):
        return bool(lookup(node))
    if isinstance(node, Not):
        return not execute(node.child, lookup, calc_not) if calc_not else True
    if node.op == "&":
        return execute(node.left, lookup, calc_not) and execute(node.right, lookup, calc_not)
    if node.op == "|":
        return execute(node.left, lookup, calc_not) or execute(node.right, lookup, calc_not)
    positions, _, negated = _phrase(node, lookup)
    return negated or bool(positions)  # negated: everywhere but those positions, so somewhere


def _phrase(node: QueryNode, lookup: Lookup) -> tuple[set[int], int, bool]:
    """(positions where the match ends, its width, whether the positions are negated)."""
    if isinstance(node, Val):
        return set(lookup(node)), 0, False
    if isinstance(node, Not):
        positions, width, negated = _phrase(node.child, lookup)
        return positions, width, not negated
    lp, lw, ln = _phrase(node.left, lookup)
    rp, rw, rn = _phrase(node.right, lookup)
    if node.op == "<->":
        offset = node.distance + rw
        width = node.distance + lw + rw
        if not rn:
            return {r for r in rp if ((r - offset) in lp) != ln}, width, False
        if not ln:
            return {left + offset for left in lp if left + offset not in rp}, width, False
        return lp | rp, width, True  # neither side present: an approximation PostgreSQL refines
    width = max(lw, rw)
    if node.op == "&":
        if ln and rn:
            return lp | rp, width, True
        if ln or rn:
            return (rp - lp if ln else lp - rp), width, False
        return lp & rp, width, False
    if ln or rn:
        if ln and rn:
            return lp & rp, width, True
        return (lp - rp if ln else rp - lp), width, True
    return lp | rp, width, False


def matches(language: str, term: str, text: object) -> bool:
    """``to_tsvector(language, text) @@ to_tsquery(language, term)``; False for a non-string."""
    if not isinstance(text, str):
        return False
    root = parse_query(language, term).root
    if root is None:
        return False
    return execute(root, _vector_lookup(to_tsvector(language, text)))
