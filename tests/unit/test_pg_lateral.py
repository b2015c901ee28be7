"""postgres/lateral.py: runs of one statement with their own values, as one statement."""

from __future__ import annotations

from datetime import UTC, datetime

from bastion.adapters.storage.postgres.lateral import lateral_plan


def test_scalar_cast_parameters_vary_the_others_are_shared() -> None:
    sql = ('SELECT x FROM "T" WHERE "n" > $1::float8 AND "s" = $2::text AND "a" && $3::text[] '
           'AND "j" = $4::jsonb ORDER BY "n" LIMIT $5 OFFSET $6')
    plan = lateral_plan(sql, 6)
    assert plan is not None
    assert plan.varying == (0, 1) and plan.types == ("float8", "text") and plan.shared == (2, 3, 4, 5)
    assert plan.sql == (
        'SELECT _p.i, _b.* FROM unnest($1::float8[], $2::text[]) WITH ORDINALITY AS _p(v1, v2, i) '
        'CROSS JOIN LATERAL (SELECT x FROM "T" WHERE "n" > _p.v1::float8 AND "s" = _p.v2::text '
        'AND "a" && $3::text[] AND "j" = $4::jsonb ORDER BY "n" LIMIT $5 OFFSET $6) _b')
    runs = [[1.5, "a\x00b", ["*"], "{}", 20, 0], [2.5, None, ["*"], "{}", 20, 0]]
    assert plan.arguments(runs, {"text": lambda v: v.replace("\x00", "<nul>")}) == [
        [1.5, 2.5], ["a<nul>b", None], ["*"], "{}", 20, 0]


def test_a_parameter_used_twice_is_shared() -> None:
    plan = lateral_plan('SELECT 1 FROM "T" WHERE "a" = $1::text OR "b" = $1::text AND "n" = $2::numeric', 2)
    assert plan is not None and plan.varying == (1,) and plan.shared == (0,)


def test_dollars_in_quoted_text_are_not_parameters() -> None:
    sql = ("SELECT '$1', E'it\\'s $2', \"col$1\" FROM t WHERE x = $1::int8 AND y = '$$' AND z = $2::bool")
    plan = lateral_plan(sql, 2)
    assert plan is not None and plan.varying == (0, 1)
    assert ("SELECT '$1', E'it\\'s $2', \"col$1\" FROM t WHERE x = _p.v1::int8 AND y = '$$' AND z = _p.v2::bool"
            in plan.sql)


def test_no_varying_parameter_no_plan() -> None:
    assert lateral_plan('SELECT 1 FROM "T" WHERE "a" && $1::text[] LIMIT $2', 2) is None
    assert lateral_plan('SELECT 1 FROM "T"', 0) is None
    assert lateral_plan('SELECT 1 FROM "T" WHERE "a" = $1::text', 2) is None  # a value no placeholder reads


def test_shared_values_key_the_batch() -> None:
    plan = lateral_plan('SELECT 1 FROM "T" WHERE "n" > $1::float8 AND "a" && $2::text[] LIMIT $3', 3)
    assert plan is not None
    assert plan.shared_key([1.0, ["*", "u1"], 20]) == plan.shared_key([9.0, ["*", "u1"], 20])
    assert plan.shared_key([1.0, ["*"], 20]) != plan.shared_key([1.0, ["*", "u1"], 20])
    assert plan.shared_key([1.0, ["*"], 20]) != plan.shared_key([1.0, ["*"], 20.0])  # 20 and 20.0 apart
    assert plan.shared_key([1.0, ["*"], datetime(2020, 1, 1, tzinfo=UTC)]) is not None
    assert plan.shared_key([1.0, [{"a": 1}], 20]) is None  # cannot be compared: the run goes alone
