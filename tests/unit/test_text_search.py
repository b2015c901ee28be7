"""core/text_search/ against answers PostgreSQL 15 gave (so these run without a database)."""

from __future__ import annotations

import pytest

from bastion.core import text_search as ts


@pytest.mark.parametrize(("language", "text", "vector"), [
    ("english", "The running-dogs don't stop",
     {"running-dog": (2,), "run": (3,), "dog": (4,), "stop": (7,)}),
    ("english", "yes/no reply", {"yes/no": (1,), "repli": (2,)}),
    ("english", "see http://x.com/a?b=1 ok",
     {"see": (1,), "x.com/a?b=1": (2,), "x.com": (3,), "/a?b=1": (4,), "ok": (5,)}),
    ("english", "3pm 5-6 1990s co-op O'Neil",
     {"3pm": (1,), "5": (2,), "-6": (3,), "1990s": (4,), "co-op": (5,), "co": (6,), "op": (7,), "o": (8,),
      "neil": (9,)}),
    ("english", "<b>bold</b> &amp; me@x.com.", {"bold": (1,), "me@x.com": (2,)}),
    ("simple", "The Running dogs", {"the": (1,), "running": (2,), "dogs": (3,)}),
    ("simple", "3.5kg, 1.5x faster <script>var x;</script> after -19a my_file.tar.gz",
     {"3.5": (1,), "kg": (2,), "1.5": (3,), "x": (4,), "faster": (5,), "after": (6,), "-19": (7,), "a": (8,),
      "my_file.tar.gz": (9,)}),
    ("spanish", "Café con Leche", {"caf": (1,), "lech": (3,)}),
    ("russian", "coffee shops кофейни", {"coffe": (1,), "shop": (2,), "кофейн": (3,)}),
])
def test_to_tsvector(language: str, text: str, vector: dict[str, tuple[int, ...]]) -> None:
    assert ts.to_tsvector(language, text) == vector


@pytest.mark.parametrize(("term", "text", "found", "rank"), [
    ("coffee", "coffee", True, 0.09090909),
    ("coffee & cake", "coffee coffee cake", True, 0.09090909),
    ("c | a", "a b c d a c", True, 0.2857143),
    ("a & c", "a b c d a c", True, 0.16666667),
    ("'coffee of cake'", "coffee of cake", True, 0.04761905),
    ("coffee <-> cake", "coffee of cake", False, 0.0),
    ("!cake <-> coffee", "coffee coffee cake coffee tea cake", True, 0.16666667),
    ("!x & c", "a b c d", True, 0.09090909),
    ("the", "the coffee", False, 0.0),
])
def test_match_and_rank(term: str, text: str, found: bool, rank: float) -> None:
    language = "english" if term != "c | a" and term != "a & c" else "simple"
    assert ts.matches(language, term, text) is found
    assert ts.score_value(ts.rank(language, term, text)) == rank


@pytest.mark.parametrize("term", ["coffee cake", "a &", "& a", "(a", "a)", "!", "'a", "a:X", "a <16385> b", "\\",
                                  "''", "()", "a & " * 300 + "a", "(" * 40 + "a" + ")" * 40])
def test_terms_postgres_refuses(term: str) -> None:
    with pytest.raises(ts.TextQueryError):
        ts.parse_query("english", term)


@pytest.mark.parametrize("term", ["", "   ", "the", "':'", "a <007> b", "coffee:", "coffee:ab*", "!!coffee",
                                  "coffee\\ cake", "'coffee''cake'", "coffee,cake"])
def test_terms_postgres_accepts(term: str) -> None:
    ts.parse_query("english", term)


def test_score_value_is_the_shortest_float4_text() -> None:
    assert ts.score_value(ts.float4(1 / 11)) == 0.09090909
    assert ts.score_value(0.0) == 0.0
