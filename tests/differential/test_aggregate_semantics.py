"""Aggregation pipelines mean the same on SQLite and PostgreSQL as in a plain Python reading of the
plan (``core/aggregate.py``): hypothesis draws small classes and pipelines of $match, $unwind,
$sort, $skip, $limit, $project, $group (keys: fields, several fields, date parts, null; every
accumulator) and $count, runs each through the adapter's one SQL statement, and compares the rows
with what the reference below computes from the same plan. Orders are compared where the pipeline
defines one (every $sort ends with a unique key); $push without a $sort, and $addToSet, as multisets.

Set ``BASTION_DIFF_EXAMPLES`` to run more (or fewer) than the default 150 examples.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from bastion.core import aggregate as ag
from bastion.core.query.matcher import matches
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType
from bastion.ports.storage import MASTER, Record, StorageAdapter
from tests.differential.conftest import refill, with_classes

AGG = "DiffAgg"
SCHEMA = ClassSchema.new(AGG, {
    "s": FieldType("String"), "n": FieldType("Number"), "b": FieldType("Boolean"), "d": FieldType("Date"),
    "a": FieldType("Array"), "p": FieldType("Pointer", "Other"),
})
EXAMPLES = int(os.environ.get("BASTION_DIFF_EXAMPLES", "150"))
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def lookup(class_name: str) -> ClassSchema | None:
    return SCHEMA if class_name == AGG else None


# --- data --------------------------------------------------------------------------------------

DATES = [datetime(2020, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC), datetime(2021, 1, 3, 10, 0, 30, 499_000, tzinfo=UTC),
         datetime(2021, 1, 4, 0, 0, tzinfo=UTC), datetime(2024, 2, 29, 12, 30, 15, 1000, tzinfo=UTC)]


@st.composite
def records(draw: st.DrawFn, index: int) -> Record:
    moment = BASE + timedelta(seconds=index)
    record: Record = {"objectId": f"r{index:02d}", "createdAt": moment, "updatedAt": moment,
                      "_rperm": None, "_wperm": None}
    record["s"] = draw(st.sampled_from([None, "a", "B", "b", "é", "ab"]))
    record["n"] = draw(st.sampled_from([None, -1.5, 0.0, 1.0, 2.0, 10.0]))
    record["b"] = draw(st.sampled_from([None, True, False]))
    record["d"] = draw(st.sampled_from([None, *DATES]))
    record["a"] = draw(st.one_of(st.none(), st.lists(st.sampled_from(["x", "y", "z"]), max_size=3)))
    record["p"] = draw(st.sampled_from([None, "o1", "o2"]))
    return record


@st.composite
def datasets(draw: st.DrawFn) -> list[Record]:
    return [draw(records(i)) for i in range(draw(st.integers(0, 10)))]


# --- pipelines ---------------------------------------------------------------------------------

matches_ = st.sampled_from([{"n": {"$gt": 0}}, {"s": "b"}, {"b": True}, {"$or": [{"s": "a"}, {"n": 10}]},
                            {"d": {"$exists": True}}, {"s": {"$in": ["a", "B"]}}, {"p": "o1"}])
sort_fields = st.lists(st.sampled_from(["s", "n", "b", "d", "p"]), min_size=1, max_size=2, unique=True)
KEYS = [None, "$s", "$n", "$b", "$p", "$d", {"x": "$s", "y": "$b"},
        {"y": {"$year": "$d"}, "m": {"$month": "$d"}, "dm": {"$dayOfMonth": "$d"}, "h": {"$hour": "$d"}},
        {"w": {"$week": "$d"}, "iy": {"$isoWeekYear": "$d"}, "dow": {"$dayOfWeek": "$d"},
         "idow": {"$isoDayOfWeek": "$d"}, "sec": {"$second": "$d"}, "ms": {"$millisecond": "$d"},
         "doy": {"$dayOfYear": "$d"}, "mi": {"$minute": "$d"}}]
ACCUMULATORS = [{"$sum": "$n"}, {"$avg": "$n"}, {"$min": "$n"}, {"$max": "$s"}, {"$min": "$d"}, {"$max": "$b"},
                {"$sum": 1}, {"$sum": 2}, {"$first": "$s"}, {"$last": "$n"}, {"$push": "$n"}, {"$addToSet": "$s"},
                {"$min": "$p"}]


@st.composite
def pipelines(draw: st.DrawFn) -> list[dict[str, Any]]:
    stages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        stages.append({"$match": draw(matches_)})
    unwound = draw(st.integers(0, 3)) == 0
    if unwound:
        stages.append({"$unwind": {"path": "$a", "preserveNullAndEmptyArrays": draw(st.booleans())}})
    if draw(st.booleans()):
        keys = {f: draw(st.sampled_from([1, -1])) for f in draw(sort_fields)}
        stages.append({"$sort": {**keys, "objectId": 1, **({"a": 1} if unwound else {})}})
        if draw(st.booleans()):
            stages.append({draw(st.sampled_from(["$limit", "$skip"])): draw(st.integers(1, 4))})
    shape = draw(st.sampled_from(["group", "group", "project", "count", "none"]))
    if shape == "group":
        accs = draw(st.lists(st.sampled_from(range(len(ACCUMULATORS))), max_size=4, unique=True))
        stages.append({"$group": {"_id": draw(st.sampled_from(KEYS)), **{f"v{i}": ACCUMULATORS[i] for i in accs}}})
        if draw(st.booleans()):
            after = {f"v{i}": draw(st.sampled_from([1, -1])) for i in accs[:1] if i not in (10, 11)}
            stages.append({"$sort": {**after, "objectId": draw(st.sampled_from([1, -1]))}})
            if draw(st.booleans()):
                stages.append({"$limit": draw(st.integers(1, 3))})
    elif shape == "project":
        stages.append({"$project": {"s": 1, "label": "$n", "objectId": 1}})
    elif shape == "count":
        stages.append({"$count": "total"})
    return stages


# --- the reference -----------------------------------------------------------------------------


def _round_half_up(value: float) -> int:
    return int(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


DATE_PARTS = {
    "YEAR": lambda d: d.year, "MONTH": lambda d: d.month, "DAY": lambda d: d.day, "HOUR": lambda d: d.hour,
    "MINUTE": lambda d: d.minute, "SECOND": lambda d: _round_half_up(d.second + d.microsecond / 1e6),
    "MILLISECONDS": lambda d: _round_half_up(d.second * 1000 + d.microsecond / 1000),
    "DOW": lambda d: (d.weekday() + 1) % 7, "ISODOW": lambda d: d.isoweekday(),
    "DOY": lambda d: d.timetuple().tm_yday, "WEEK": lambda d: d.isocalendar()[1],
    "ISOYEAR": lambda d: d.isocalendar()[0],
}


def _sort_key(value: Any, descending: bool) -> tuple[Any, ...]:
    # PostgreSQL's order: nulls last ascending, first descending; strings by code point.
    if value is None:
        return (1,) if not descending else (-1,)
    return (0, value) if not descending else (0, _Reverse(value))


class _Reverse:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]


def reference(plan: ag.Plan, data: list[Record]) -> list[dict[str, Any]]:
    rows = [{c.name: r.get(c.name) for c in plan.base} for r in sorted(data, key=lambda r: r["objectId"])]
    for planned in plan.stages:
        stage = planned.stage
        if isinstance(stage, ag.Match):
            rows = [r for r in rows if matches(stage.where, r)]
        elif isinstance(stage, ag.Sort):
            for column, descending in reversed(stage.keys):
                rows.sort(key=lambda r, c=column, d=descending: _sort_key(r[c.name], d))
        elif isinstance(stage, ag.Limit):
            rows = rows[:stage.count]
        elif isinstance(stage, ag.Skip):
            rows = rows[stage.count:]
        elif isinstance(stage, ag.Project):
            rows = [{out.name: r[src.name] for out, src in stage.columns} for r in rows]
        elif isinstance(stage, ag.Count):
            rows = [{stage.out.name: len(rows)}] if rows else []
        elif isinstance(stage, ag.Unwind):
            out = []
            for r in rows:
                items = r[stage.source.name]
                if isinstance(items, list) and items:
                    out.extend({**r, stage.out.name: item} for item in items)
                elif stage.preserve:
                    out.append({**r, stage.out.name: None})
            rows = out
        elif isinstance(stage, ag.Group):
            rows = _group(stage, rows)
    return rows


def _group(stage: ag.Group, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not stage.ordered and rows and "createdAt" in rows[0]:
        rows = sorted(rows, key=lambda r: (r["createdAt"], r["objectId"]))
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    keyed = [k for k in stage.keys if k.source is not None]
    for r in rows:
        key = tuple(_key_value(k, r) for k in keyed)
        groups.setdefault(key, []).append(r)
    if not keyed and not groups:
        groups[()] = []  # one row even for no input, as SQL's aggregate without GROUP BY
    out = []
    for key, members in groups.items():
        row: dict[str, Any] = {k.out.name: v for k, v in zip(keyed, key, strict=True)}
        if not keyed:
            row["objectId"] = None
        for acc in stage.accumulators:
            row[acc.out.name] = _accumulate(acc, members)
        out.append(row)
    return out


def _key_value(key: ag.GroupKey, row: dict[str, Any]) -> Any:
    assert key.source is not None
    value = row[key.source.name]
    if key.date_unit and value is not None:
        return DATE_PARTS[key.date_unit](value)
    return value


def _accumulate(acc: ag.Accumulate, members: list[dict[str, Any]]) -> Any:
    if acc.op == "count":
        return len(members) * acc.factor
    assert acc.source is not None
    values = [m[acc.source.name] for m in members]
    present = [v for v in values if v is not None]
    if acc.op == "sum":
        return sum(present) if present else None
    if acc.op == "avg":
        return sum(present) / len(present) if present else None
    if acc.op in ("min", "max"):
        return (min if acc.op == "min" else max)(present) if present else None
    if acc.op == "first":
        return values[0] if values else None
    if acc.op == "last":
        return values[-1] if values else None
    if acc.op == "push":
        return present
    return list(dict.fromkeys(present))  # addToSet


# --- comparison --------------------------------------------------------------------------------


def canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return round(float(value), 9)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def comparable(plan: ag.Plan, rows: list[dict[str, Any]]) -> list[Any]:
    out = []
    unordered_lists = {c.name for c in plan.columns if c.element is not None}
    ordered_push = plan.stages and any(isinstance(p.stage, ag.Group) and p.stage.ordered for p in plan.stages)
    for row in rows:
        item = []
        for column in plan.columns:
            value = canonical(row.get(column.name))
            if column.name in unordered_lists and isinstance(value, list):
                accumulated = next((a for p in plan.stages if isinstance(p.stage, ag.Group)
                                    for a in p.stage.accumulators if a.out.name == column.name), None)
                if accumulated is None or accumulated.op == "addToSet" or not ordered_push:
                    value = sorted(value, key=repr)
            item.append((column.name, value))
        out.append(item)
    return out if plan.ordered else sorted(out, key=repr)


# --- the test ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def storage(adapter: tuple[Any, StorageAdapter]) -> tuple[Any, StorageAdapter]:
    return with_classes(adapter, [SCHEMA])


async def load(store: StorageAdapter, data: list[Record]) -> None:
    await refill(store, SCHEMA, data)


@settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=datasets(), batch=st.lists(pipelines(), min_size=4, max_size=10))
def test_pipelines_agree_with_reference(storage: tuple[Any, StorageAdapter], data: list[Record],
                                        batch: list[list[dict[str, Any]]]) -> None:
    runner, store = storage
    runner.run(load(store, data))
    for pipeline in batch:
        plan = ag.plan_pipeline(pipeline, SCHEMA, lookup)
        got = runner.run(store.aggregate(SCHEMA, plan, MASTER))
        want = reference(plan, data)
        event(f"rows: {'none' if not want else 'some'}")
        note(f"pipeline={pipeline!r}")
        context = f"\npipeline={pipeline!r}\nrecords:\n" + "\n".join(f"  {r}" for r in data)
        assert comparable(plan, got) == comparable(plan, want), (
            f"{store.name} answered\n  {got}\nthe reference\n  {want}{context}")
