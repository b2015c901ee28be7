"""The order a query without one is answered in, when an index can serve its range.

A query's order is unspecified without ``order``. PostgreSQL answers ``WHERE n > $1 LIMIT 20`` by
scanning the table until twenty rows match, and its planner prefers that scan even when the
class has an index on ``n``: its estimate assumes matching rows are spread evenly through the
table. When they are not (rows written in the order of ``n``, the common case for counters, dates
and sequence numbers) the scan reads most of the table for every page. Asking for the rows in the
order of the indexed field makes the database walk the index instead, so the work is bounded by
the page size, whatever the rows' physical order; and it is the order Parse on MongoDB answers
such a query in, since MongoDB walks the same index.
"""

from __future__ import annotations

from typing import Any

from bastion.core.query import ir

_RANGE_OPS = frozenset({"gt", "gte", "lt", "lte"})
_ORDERABLE = frozenset({"Number", "String", "Date"})


def index_order(node: ir.Node, indexes: dict[str, Any]) -> list[ir.Order]:
    """Ascending order on the first field that ``node`` bounds by a range at its top level and that
    leads one of ``indexes`` (``{name: {field: 1, ...}}``); empty when there is none."""
    if not indexes:
        return []
    conjuncts = node.children if isinstance(node, ir.And) else (node,)
    ranges = [term.field for term in conjuncts
              if isinstance(term, ir.Compare) and term.op in _RANGE_OPS and not term.field.path
              and term.field.type in _ORDERABLE]
    if not ranges:  # the common case (gets, equalities): no need to look at the indexes
        return []
    leading = {next(iter(spec)) for spec in indexes.values() if isinstance(spec, dict) and spec}
    for field in ranges:
        if field.column in leading:
            return [ir.OrderKey(field)]
    return []
