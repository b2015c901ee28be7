"""An aggregation plan (``core/aggregate.py``) as one SQL statement: a chain of CTEs.

``_s0`` reads the class table (with the read-permission predicate and, when the pipeline starts
with ``$match``, its where); every further stage selects from the previous one. Column names come
from the plan, which validated them; they are quoted all the same. Values are bound parameters.

Order: a ``$sort`` numbers its rows into a hidden ``_o`` column, which later stages carry along
(``$limit``/``$skip`` take rows in that order, ``$first``/``$last`` read it, the final SELECT
orders by it) until a ``$group`` or ``$count`` ends it. A dialect supplies the few spellings that
differ (``AggregateHooks``); the WHERE of a ``$match`` is the dialect's ordinary where compiler.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, assert_never

from bastion.adapters.storage.sql import Params, SqlDialect, quote
from bastion.core import aggregate as ag
from bastion.core.query import ir
from bastion.core.schema import ClassSchema
from bastion.ports.storage import Access

ORDER = '"_o"'


class AggregateHooks(ABC):
    """What one database spells its own way in an aggregation."""

    empty_array: str  # an empty JSON array of the Array kind

    @abstractmethod
    def date_part(self, expr: str, unit: str) -> str:
        """An integer part of a date (an EXTRACT unit of PostgreSQL, in UTC)."""

    @abstractmethod
    def min_max(self, op: str, expr: str, kind: str) -> str: ...

    @abstractmethod
    def collect(self, expr: str, kind: str, distinct: bool, window: str = "") -> str:
        """A JSON array of the group's non-null values ($push, $addToSet); over ``window`` if given."""

    @abstractmethod
    def any_value(self, expr: str) -> str:
        """One value of an expression that is the same on every row of the group."""

    @abstractmethod
    def count_times(self, factor: str) -> str: ...

    @abstractmethod
    def offset(self, mark: str) -> str: ...

    @abstractmethod
    def unwind(self, column: str, preserve: bool) -> tuple[str, str, str]:
        """(join clause after ``FROM prev AS _p``, element expression, element index expression)."""


class AggregateCompiler:
    def __init__(self, dialect: SqlDialect, hooks: AggregateHooks) -> None:
        self.dialect = dialect
        self.hooks = hooks

    def compile(self, plan: ag.Plan, schema: ClassSchema, access: Access, columns_of: dict[str, str] | None = None,
                renamed: Callable[[ir.Node], ir.Node] | None = None) -> tuple[str, list[Any]]:
        """The plan as one statement. ``columns_of`` names the table columns of fields stored under
        another name, and ``renamed`` rewrites a table-level ``$match`` to them (SQLite)."""
        params = Params(self.dialect)
        stages = list(plan.stages)
        where = self.dialect.true()
        if stages and isinstance(stages[0].stage, ag.Match) and stages[0].stage.on_table:
            match = stages[0].stage.where
            where = self.dialect.where(renamed(match) if renamed else match, params, access)
        acl = self.dialect.read_access(access, params)
        columns_of = columns_of or {}
        base_cols = ", ".join(f"{quote(columns_of[c.name])} AS {quote(c.name)}" if c.name in columns_of
                              else quote(c.name) for c in plan.base)
        ctes = [f"SELECT {base_cols} FROM {quote(schema.class_name)} WHERE {where} AND {acl}"]
        columns: tuple[ag.Column, ...] = plan.base
        ordered = False
        for planned in stages:
            stage = planned.stage
            if isinstance(stage, ag.Match) and stage.on_table:
                continue
            prev = f"_s{len(ctes) - 1}"
            ctes.extend(self.stage(stage, prev, columns, ordered, params, access, len(ctes)))
            columns, ordered = planned.columns, planned.ordered
        names = ", ".join(quote(c.name) for c in columns)
        chain = ", ".join(f"_s{i} AS ({sql})" for i, sql in enumerate(ctes))
        sql = f"WITH {chain} SELECT {names} FROM _s{len(ctes) - 1}"
        if ordered:
            sql += f" ORDER BY {ORDER}"
        return sql, params.values

    # --- stages ---------------------------------------------------------------------------------

    def stage(self, stage: ag.Stage, prev: str, columns: tuple[ag.Column, ...], ordered: bool,
              params: Params, access: Access, index: int) -> list[str]:
        keep = _names(columns, ordered)
        match stage:
            case ag.Match():
                where = self.dialect.where(stage.where, params, access)
                return [f"SELECT {keep} FROM {prev} WHERE {where}"]
            case ag.Project():
                items = [f"{quote(src.name)} AS {quote(out.name)}" for out, src in stage.columns]
                if ordered:
                    items.append(ORDER)
                return [f"SELECT {', '.join(items)} FROM {prev}"]
            case ag.Sort():
                terms = [self.dialect.order_term(ir.OrderKey(ir.Field(c.name, _sort_type(c)), desc))
                         for c, desc in stage.keys]
                if ordered:
                    terms.append(ORDER)  # a stable sort: ties keep the order they had
                return [f"SELECT {_names(columns, False)}, ROW_NUMBER() OVER (ORDER BY {', '.join(terms)}) "
                        f"AS {ORDER} FROM {prev}"]
            case ag.Limit():
                order = f" ORDER BY {ORDER}" if ordered else ""
                return [f"SELECT {keep} FROM {prev}{order} LIMIT {params.add(stage.count)}"]
            case ag.Skip():
                order = f" ORDER BY {ORDER}" if ordered else ""
                return [f"SELECT {keep} FROM {prev}{order} {self.hooks.offset(params.add(stage.count))}"]
            case ag.Count():
                return [f"SELECT COUNT(*) AS {quote(stage.out.name)} FROM {prev} HAVING COUNT(*) > 0"]
            case ag.Unwind():
                return [self.unwind(stage, prev, columns, ordered)]
            case ag.Group():
                return self.group(stage, prev, columns, params, index)
            case _:
                assert_never(stage)

    def unwind(self, stage: ag.Unwind, prev: str, columns: tuple[ag.Column, ...], ordered: bool) -> str:
        join, element, position = self.hooks.unwind(f"_p.{quote(stage.source.name)}", stage.preserve)
        items = [f"{element} AS {quote(c.name)}" if c is stage.source else f"_p.{quote(c.name)}" for c in columns]
        if ordered:
            items.append(f"ROW_NUMBER() OVER (ORDER BY _p.{ORDER}, {position}) AS {ORDER}")
        return f"SELECT {', '.join(items)} FROM {prev} AS _p {join}"

    def group(self, stage: ag.Group, prev: str, columns: tuple[ag.Column, ...], params: Params,
              index: int) -> list[str]:
        keys = [(self.key_expr(k), k.out) for k in stage.keys if k.source is not None]
        ctes: list[str] = []
        source = prev
        # $first, $last (and $push after a $sort) depend on the input's order, which an aggregate
        # function does not see: a window over each group's rows in that order gives every row its
        # group's value, which the GROUP BY then picks up.
        ordered_ops = ("first", "last", "push") if stage.ordered else ("first", "last")
        firsts = [a for a in stage.accumulators if a.op in ordered_ops]
        if firsts:
            partition = f"PARTITION BY {', '.join(e for e, _ in keys)} " if keys else ""
            order = self.first_order(columns, stage.ordered)
            frame = "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
            window = f"OVER ({partition}{order}{frame})"
            extra = [f"{self.window_value(a, window)} AS {quote('_a' + str(i))}" for i, a in enumerate(firsts)]
            ctes.append(f"SELECT {_names(columns, False)}, {', '.join(extra)} FROM {prev}")
            source = f"_s{index}"
        items = [f"{expr} AS {quote(out.name)}" for expr, out in keys]
        if not keys:
            # NULL, but an aggregate: one group, one row, even with no accumulator and no input.
            items.append(f"(CASE WHEN COUNT(*) < 0 THEN '' END) AS {quote('objectId')}")
        for acc in stage.accumulators:
            items.append(f"{self.accumulate(acc, firsts, params)} AS {quote(acc.out.name)}")
        sql = f"SELECT {', '.join(items)} FROM {source}"
        if keys:
            sql += " GROUP BY " + ", ".join(e for e, _ in keys)
        ctes.append(sql)
        return ctes

    def window_value(self, acc: ag.Accumulate, window: str) -> str:
        assert acc.source is not None
        col = quote(acc.source.name)
        if acc.op == "push":
            return self.hooks.collect(col, acc.source.type.type, False, f" {window}")
        return f"{'FIRST' if acc.op == 'first' else 'LAST'}_VALUE({col}) {window}"

    def key_expr(self, key: ag.GroupKey) -> str:
        assert key.source is not None
        col = quote(key.source.name)
        return self.hooks.date_part(col, key.date_unit) if key.date_unit else col

    @staticmethod
    def first_order(columns: tuple[ag.Column, ...], ordered: bool) -> str:
        if ordered:
            return f"ORDER BY {ORDER} "
        names = {c.name for c in columns if c.key is None}
        if {"createdAt", "objectId"} <= names:
            return 'ORDER BY "createdAt", "objectId" '  # natural order: as the objects were created
        return ""

    def accumulate(self, acc: ag.Accumulate, firsts: list[ag.Accumulate], params: Params) -> str:
        if acc.op == "count":
            if acc.factor == 1 and isinstance(acc.factor, int):
                return "COUNT(*)"
            return self.hooks.count_times(params.add(acc.factor))
        assert acc.source is not None
        col = quote(acc.source.name)
        kind = acc.source.type.type
        if acc.op in ("sum", "avg"):
            return f"{acc.op.upper()}({col})"
        if acc.op in ("min", "max"):
            return self.hooks.min_max(acc.op, col, kind)
        if acc in firsts:
            value = self.hooks.any_value(quote("_a" + str(firsts.index(acc))))
            # A group of no rows (one group over no input) still collects an empty array.
            return f"COALESCE({value}, {self.hooks.empty_array})" if acc.op == "push" else value
        return self.hooks.collect(col, kind, acc.op == "addToSet")


def _names(columns: tuple[ag.Column, ...], ordered: bool) -> str:
    names = [quote(c.name) for c in columns]
    if ordered:
        names.append(ORDER)
    return ", ".join(names)


def _sort_type(column: ag.Column) -> str:
    return "Object" if column.type.type == "Json" else column.type.type
