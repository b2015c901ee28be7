"""``core/jsonb_order.py`` sorts JSON values as PostgreSQL sorts ``jsonb`` (the order Parse Server's
``distinct`` answers Object values in): hypothesis draws values of every JSON type, nested, and
PostgreSQL sorts the same list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.core import jsonb_order
from tests.differential.conftest import Runner

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 12), st.sampled_from([2.5, -0.5, 1e20]),
                    st.sampled_from(["", "a", "B", "ab", "é", "Z", "10", "9", "aa"]))
keys = st.sampled_from(["a", "b", "aa", "B", "é", "ab", "c"])
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(keys, inner, max_size=3)), max_leaves=6)


@pytest.fixture(scope="module")
def pg_sort(postgres_database: str) -> Iterator[Any]:
    import asyncpg

    runner = Runner()
    conn = runner.run(asyncpg.connect(postgres_database))

    def sort(items: list[Any]) -> list[Any]:
        rows = runner.run(conn.fetch("SELECT v FROM unnest($1::text[]) WITH ORDINALITY AS t(v, i) "
                                     "ORDER BY v::jsonb, i", [json.dumps(item) for item in items]))
        return [json.loads(row[0]) for row in rows]

    try:
        yield sort
    finally:
        runner.run(conn.close())
        runner.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(values, min_size=2, max_size=12))
def test_sorted_as_postgresql_sorts_jsonb(pg_sort: Any, items: list[Any]) -> None:
    expected = pg_sort(items)
    got = sorted(items, key=jsonb_order.sort_key)
    # Equal values (1 and 1.0) may come in either order: compare them as PostgreSQL prints them.
    assert [json.dumps(v, sort_keys=True) for v in got] == [json.dumps(v, sort_keys=True) for v in expected]
