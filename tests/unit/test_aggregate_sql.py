"""core/aggregate.py plans and adapters/storage/aggregate_sql.py statements: one statement per
pipeline, every value a bound parameter, every name validated before it is quoted."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.adapters.storage.aggregate_sql import AggregateCompiler
from bastion.adapters.storage.postgres import PostgresDialect
from bastion.adapters.storage.postgres.aggregate import PostgresAggregateHooks
from bastion.adapters.storage.sqlite import SqliteDialect
from bastion.adapters.storage.sqlite.aggregate import SqliteAggregateHooks
from bastion.core import aggregate as ag
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType
from bastion.errors import ParseError
from bastion.ports.storage import MASTER

SCHEMA = ClassSchema.new("Sale", {"item": FieldType("String"), "amount": FieldType("Number"),
                                  "day": FieldType("Date"), "tags": FieldType("Array"),
                                  "shop": FieldType("Pointer", "Shop")})
HOSTILE = "x'); DROP TABLE \"Sale\"; --"


def compile_both(pipeline: Any) -> list[tuple[str, list[Any]]]:
    plan = ag.plan_pipeline(pipeline, SCHEMA, lambda _name: None)
    sqlite = AggregateCompiler(SqliteDialect(), SqliteAggregateHooks())
    postgres = AggregateCompiler(PostgresDialect(), PostgresAggregateHooks(' COLLATE "C"'))
    return [sqlite.compile(plan, SCHEMA, MASTER), postgres.compile(plan, SCHEMA, MASTER)]


def test_values_are_bound() -> None:
    pipeline = [{"$match": {"item": HOSTILE, "amount": {"$gt": 3}}}, {"$sort": {"amount": -1}}, {"$skip": 7},
                {"$limit": 11}, {"$group": {"_id": "$item", "n": {"$sum": 2.5}}}]
    for sql, values in compile_both(pipeline):
        assert HOSTILE not in sql and "DROP" not in sql
        assert "2.5" not in sql and " 11" not in sql and " 7" not in sql
        assert HOSTILE in values and 11 in values and 7 in values and 2.5 in values
        assert sql.startswith("WITH _s0 AS (SELECT ") and sql.count("SELECT") >= 5


def test_stages_chain_in_order() -> None:
    for sql, _ in compile_both([{"$unwind": "$tags"}, {"$group": {"_id": "$tags", "c": {"$sum": 1}}},
                                {"$sort": {"c": -1}}, {"$count": "n"}]):
        assert sql.index("_s1 AS") < sql.index("_s2 AS") < sql.index("_s3 AS") < sql.index("_s4 AS")
        assert sql.endswith('SELECT "n" FROM _s4')  # $count ends the order: no ORDER BY


@pytest.mark.parametrize("pipeline", [
    [{"$group": {"_id": f"${HOSTILE}"}}],
    [{"$group": {"_id": "$item", HOSTILE: {"$sum": 1}}}],
    [{"$project": {HOSTILE: 1}}],
    [{"$project": {"a": f"${HOSTILE}"}}],
    [{"$sort": {HOSTILE: 1}}],
    [{"$count": HOSTILE}],
    [{"$unwind": {"path": f"${HOSTILE}"}}],
    [{"$group": {"_id": {HOSTILE: "$item"}}}],
])
def test_hostile_names_never_reach_sql(pipeline: Any) -> None:
    with pytest.raises(ParseError) as raised:
        ag.plan_pipeline(pipeline, SCHEMA, lambda _name: None)
    assert raised.value.code in (102, 105)


def test_plan_types() -> None:
    plan = ag.plan_pipeline([{"$group": {"_id": {"s": "$shop", "y": {"$year": "$day"}}, "last": {"$max": "$day"},
                                         "items": {"$push": "$item"}}}], SCHEMA, lambda _name: None)
    kinds = {(c.key or c.name): c.type.type for c in plan.columns}
    assert kinds == {"s": "String", "y": "Number", "last": "Date", "items": "Array"}  # pointer keys are bare ids
    assert not plan.whole_documents and not plan.ordered
