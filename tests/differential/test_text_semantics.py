"""Full-text search means the same everywhere: PostgreSQL, SQLite and the in-memory matcher.

Hypothesis writes short English documents (stop words, inflected words, capitals, punctuation,
contractions, hyphenated words, numbers, a few accented words) and ``$text`` terms over the same
vocabulary (words, ``&``, ``|``, ``!``, ``<->``, ``<N>``, quoted phrases, prefixes, parentheses),
in English, simple and Spanish. Every adapter must return the objects the matcher accepts, and
with ``$score`` each object's rank must be the one ``core/text_search/`` computes (PostgreSQL's
own ts_rank_cd included, to the float4 bit), best first.

Set ``BASTION_DIFF_EXAMPLES`` to run more (or fewer) than the default 150 examples.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from bastion.core import text_search
from bastion.core.query import ir
from bastion.core.query.matcher import matches
from bastion.core.query.parse import parse_order, parse_where
from bastion.core.query.text_parse import first_text_search
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType
from bastion.errors import ParseError
from bastion.ports.storage import MASTER, SCORE_COLUMN, FindQuery, Record, StorageAdapter
from tests.differential.conftest import refill, with_classes

TEXT = "DiffText"
SCHEMA = ClassSchema.new(TEXT, {"body": FieldType("String"), "n": FieldType("Number")})
EXAMPLES = int(os.environ.get("BASTION_DIFF_EXAMPLES", "150"))


def lookup(class_name: str) -> ClassSchema | None:
    return SCHEMA if class_name == TEXT else None


# --- documents ---------------------------------------------------------------------------------

WORDS = [
    # stop words
    "the", "a", "and", "of", "is", "was", "very", "own", "more", "most", "it", "not",
    # families that stem together, or nearly
    "run", "runs", "running", "runner", "ran", "coffee", "coffees", "cake", "cakes", "baking", "baked",
    "generous", "generate", "generation", "news", "dying", "skies", "sky", "early", "only", "happily",
    "connection", "connected", "connecting", "international", "relational", "cats", "dogs", "dog",
    # other words
    "strong", "quick", "brown", "fox", "jumps", "lazy", "milk", "tea", "shop", "shopping", "leche",
    "Coffee", "RUNNING", "Tea",
    # numbers, contractions, compounds, accents
    "3", "42", "2024", "3.14", "don't", "it's", "well-known", "coffee-shop", "re-run", "café", "naïve",
]
PUNCTUATION = ["", "", "", "", ",", ".", "!", "?", ";", ":"]

words = st.sampled_from(WORDS)


@st.composite
def documents(draw: st.DrawFn) -> str:
    parts = []
    for word in draw(st.lists(words, min_size=0, max_size=14)):
        parts.append(word + draw(st.sampled_from(PUNCTUATION)))
    return " ".join(parts)


@st.composite
def records(draw: st.DrawFn, index: int) -> Record:
    record: Record = {"objectId": f"t{index:02d}", "_rperm": None, "_wperm": None}
    if draw(st.integers(0, 6)):
        record["body"] = draw(documents())
    if draw(st.booleans()):
        record["n"] = draw(st.sampled_from([0, 1, 2]))
    return record


@st.composite
def datasets(draw: st.DrawFn) -> list[Record]:
    return [draw(records(i)) for i in range(draw(st.integers(0, 12)))]


# --- terms -------------------------------------------------------------------------------------

QUERY_WORDS = [w for w in WORDS if w not in ("3.14", "don't", "it's")] + ["runner:*", "conn:*", "cof:*", "co:*"]


@st.composite
def operands(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        phrase = " ".join(draw(st.lists(words, min_size=1, max_size=3))).replace("'", "''")
        return f"'{phrase}'"
    return draw(st.sampled_from(QUERY_WORDS))


@st.composite
def terms(draw: st.DrawFn, depth: int = 0) -> str:
    shape = draw(st.integers(0, 6 if depth < 2 else 0))
    if shape <= 1:
        return draw(operands())
    if shape == 2:
        return "!" + draw(terms(depth + 1))
    if shape == 3:
        return f"({draw(terms(depth + 1))})"
    op = draw(st.sampled_from([" & ", " | ", " <-> ", " <2> ", "&", "|"]))
    return draw(terms(depth + 1)) + op + draw(terms(depth + 1))


languages = st.sampled_from(["english", "english", "english", "simple", "spanish"])


@st.composite
def queries(draw: st.DrawFn) -> dict[str, Any]:
    search: dict[str, Any] = {"$term": draw(terms())}
    language = draw(languages)
    if language != "english" or draw(st.booleans()):
        search["$language"] = language
    text = {"body": {"$text": {"$search": search}}}
    shape = draw(st.sampled_from(["alone", "alone", "and", "or", "nor"]))
    if shape == "alone":
        return text
    if shape == "and":
        return {**text, "n": draw(st.sampled_from([0, 1, 2]))}
    if shape == "or":
        return {"$or": [text, {"n": 1}]}
    return {"$nor": [text]}


# --- the test ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def storage(adapter: tuple[Any, StorageAdapter]) -> tuple[Any, StorageAdapter]:
    return with_classes(adapter, [SCHEMA])


async def load(store: StorageAdapter, data: list[Record]) -> None:
    await refill(store, SCHEMA, data)


def expected_rank(search: ir.TextSearch, record: Record) -> float | None:
    body = record.get("body")
    return text_search.rank(search.language, search.term, body) if isinstance(body, str) else None


@settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=datasets(), batch=st.lists(queries(), min_size=4, max_size=12))
def test_text_queries_agree_with_matcher(storage: tuple[Any, StorageAdapter], data: list[Record],
                                         batch: list[dict[str, Any]]) -> None:
    runner, store = storage
    runner.run(load(store, data))
    by_id = {record["objectId"]: record for record in data}
    for where in batch:
        try:
            node = parse_where(where, SCHEMA, TEXT, lookup)
        except ParseError as exc:
            note(f"refused by the parser ({exc}): {where}")
            event(f"refused by the parser: {exc.code}")
            continue
        search = first_text_search(node)
        assert search is not None
        order = tuple(parse_order("$score", SCHEMA, search))
        columns = ("objectId", "n", SCORE_COLUMN)
        found = runner.run(store.find(SCHEMA, FindQuery(node, order, columns=columns, score=search), MASTER))
        got = [row["objectId"] for row in found]
        want = {r["objectId"] for r in data if matches(node, r)}
        event("matches: " + ("none" if not want else "all" if len(want) == len(data) else "some"))
        context = f"\nwhere={where!r}\nIR={node!r}\nrecords:\n" + "\n".join(f"  {r}" for r in data)
        assert len(got) == len(set(got)), f"duplicate rows {got}{context}"
        assert set(got) == want, f"{store.name} found {sorted(got)}, the matcher {sorted(want)}{context}"
        scores = [row[SCORE_COLUMN] for row in found]
        ranks = [expected_rank(search, by_id[i]) for i in got]
        assert scores == ranks, f"{store.name} ranked {list(zip(got, scores, strict=True))}, the model {ranks}{context}"
        # Best first; PostgreSQL puts the objects without a rank (no body, under $or) before them.
        keys = [(s is not None, s) for s in scores]
        assert keys == sorted(keys, key=lambda k: (k[0], -(k[1] or 0.0))), f"{store.name} order {scores}{context}"
        counted = runner.run(store.count(SCHEMA, node, MASTER))
        assert counted == len(want), f"{store.name} counted {counted}, found {len(want)}{context}"


@pytest.mark.parametrize("language", ["english", "simple", "spanish"])
def test_documents_and_terms_agree_with_postgres_word_for_word(storage: tuple[Any, StorageAdapter],
                                                               language: str) -> None:
    """A fixed corpus through to_tsvector and to_tsquery themselves, compared lexeme by lexeme."""
    runner, store = storage
    if store.name != "postgres":
        pytest.skip("compares with PostgreSQL's own functions")
    corpus = [" ".join(WORDS), "The runners were running; the runner runs.", "Café Con Leche, naïve-café",
              "covid-19 abc-123-def x1-y2 3.14 1.2.3 end.Then -5 e.g. U.S.A. foo_bar rock'n'roll 1,000",
              "and/or yes/no, mail me@x.com or see https://www.x.com/a/b.html. /usr/bin so.. <b>bold</b> &amp;",
              " ".join(f"w{i % 7}" for i in range(3000)) + " zz"]  # past 255 positions per word

    async def compare() -> None:
        async with store.pool.acquire() as conn:  # type: ignore[attr-defined]
            for text in corpus:
                rows = await conn.fetch("SELECT (unnest(to_tsvector($1::text::regconfig, $2))).*", language, text)
                theirs = {row["lexeme"]: tuple(row["positions"]) for row in rows}
                assert theirs == text_search.to_tsvector(language, text), text
                for term in ("w1 & zz", "(w1 | w3) & !w4", "w2 <-> w3", "run:* | coffee", "zz | w6"):
                    ranked = await conn.fetchval(
                        "SELECT ts_rank_cd(to_tsvector($1::text::regconfig, $2), to_tsquery($1::text::regconfig, $3), 32)",
                        language, text, term)
                    assert ranked == text_search.rank(language, term, text), (text[:80], term)
            for word in QUERY_WORDS:
                rendered = await conn.fetchval("SELECT to_tsquery($1::text::regconfig, $2)::text", language, word)
                query = text_search.parse_query(language, word).root
                assert bool(rendered) == (query is not None), word

    runner.run(compare())


# Operator and quoting characters; the parser's punctuation corner cases (paths, hosts) are left to
# the word-for-word test above.
SYNTAX = st.text(alphabet=list("ab c!&|()<>-:*'\\0123AD\té,;+"), max_size=16)
PROBES = ["", "a b c", "b a", "c a b c", "bb ab", "a-b c1 12"]


@settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10), suppress_health_check=[HealthCheck.too_slow])
@given(term=SYNTAX)
def test_to_tsquery_accepts_what_postgres_accepts(storage: tuple[Any, StorageAdapter], term: str) -> None:
    """Any string: PostgreSQL's to_tsquery and the model refuse the same ones, and the accepted
    ones match the same probe documents."""
    runner, store = storage
    if store.name != "postgres":
        pytest.skip("compares with PostgreSQL's own functions")
    import asyncpg

    async def theirs() -> list[bool] | None:
        async with store.pool.acquire() as conn:  # type: ignore[attr-defined]
            try:
                rows = await conn.fetch("SELECT to_tsvector('simple', d) @@ to_tsquery('simple', $1) "
                                        "FROM unnest($2::text[]) WITH ORDINALITY AS p(d, i) ORDER BY i", term, PROBES)
            except asyncpg.PostgresError:
                return None
            return [row[0] for row in rows]

    answers = runner.run(theirs())
    try:
        text_search.parse_query("simple", term)
    except text_search.TextQueryError as exc:
        assert answers is None, f"the model refuses {term!r} ({exc}), PostgreSQL accepts it"
        return
    assert answers is not None, f"PostgreSQL refuses {term!r}, the model accepts it"
    assert answers == [text_search.matches("simple", term, d) for d in PROBES], term
