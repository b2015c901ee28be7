"""Full-text search over the wire: ``$text.$search`` and ``$score`` (order and keys), with Parse
Server 9 on PostgreSQL's answers: ``to_tsvector(lang, field) @@ to_tsquery(lang, term)`` ranked by
``ts_rank_cd(..., 32)``. SQLite answers the same through ``core/text_search/``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error
from tests.api.test_queries import seed

# name -> subject; n cycles 0, 1, 2 in this order. The first eight are Parse Server's own test data.
SUBJECTS = {
    "coffee": "coffee",
    "shopping": "Coffee Shopping",
    "cake": "Baking a cake",
    "baking": "baking",
    "leche_accent": "Café Con Leche",
    "syrniki": "Сырники",
    "cream": "coffee and cream",
    "leche": "Cafe con Leche",
    "runners": "The runners were running",
    "run": "I run daily",
    "strong": "Strong coffee, strong coffee and more coffee",
    "phrase": "cake and coffee",
}
COFFEE = ["coffee", "cream", "phrase", "shopping", "strong"]


@pytest.fixture
def texts(master: httpx.Client, class_name: str) -> str:
    objects: list[dict[str, Any]] = [{"name": name, "n": i % 3, "subject": subject}
                                     for i, (name, subject) in enumerate(SUBJECTS.items())]
    objects.append({"name": "nosubject", "n": 0})
    seed(master, class_name, objects)
    return class_name


def search(term: Any, **options: Any) -> dict[str, Any]:
    return {"subject": {"$text": {"$search": {"$term": term, **options}}}}


def find(client: httpx.Client, class_name: str, where: Any, **params: Any) -> httpx.Response:
    return client.get(f"/classes/{class_name}", params={"where": json.dumps(where), **params})


def names(client: httpx.Client, class_name: str, where: Any, **params: Any) -> list[str]:
    """The names found: in the server's order with an ``order``, else sorted."""
    response = find(client, class_name, where, **params)
    assert response.status_code == 200, response.text
    found = [obj["name"] for obj in response.json()["results"]]
    return found if "order" in params else sorted(found)


# --- matching -------------------------------------------------------------------------------------


def test_one_word_matches_it_in_any_case_and_position(api: httpx.Client, texts: str) -> None:
    assert names(api, texts, search("coffee")) == COFFEE
    assert names(api, texts, search("COFFEE")) == COFFEE


def test_words_are_combined_with_tsquery_operators(api: httpx.Client, texts: str) -> None:
    assert names(api, texts, search("coffee & cream")) == ["cream"]
    assert names(api, texts, search("coffee & !cream")) == ["coffee", "phrase", "shopping", "strong"]
    assert names(api, texts, search("cream | cake")) == ["cake", "cream", "phrase"]
    assert names(api, texts, search("(cake | cream) & coffee")) == ["cream", "phrase"]
    assert names(api, texts, search("strong <-> coffee")) == ["strong"]
    assert names(api, texts, search("coffee <-> strong")) == ["strong"]  # "coffee, strong coffee"
    assert names(api, texts, search("cake <-> coffee")) == []  # "cake and coffee": two apart
    assert names(api, texts, search("cake <2> coffee")) == ["phrase"]


def test_a_quoted_operand_is_a_phrase_and_its_stop_words_keep_their_room(api: httpx.Client, texts: str) -> None:
    assert names(api, texts, search("'strong coffee'")) == ["strong"]
    assert names(api, texts, search("'coffee and cream'")) == ["cream"]
    assert names(api, texts, search("'coffee or cream'")) == ["cream"]  # any stop word fills the gap
    assert names(api, texts, search("'coffee cream'")) == []


def test_words_match_by_their_stem(api: httpx.Client, texts: str) -> None:
    assert names(api, texts, search("running")) == ["run", "runners"]
    assert names(api, texts, search("runs")) == ["run", "runners"]
    assert names(api, texts, search("runner")) == ["runners"]
    assert names(api, texts, search("bakes")) == ["baking", "cake"]
    assert names(api, texts, search("shop")) == ["shopping"]


def test_prefix_search(api: httpx.Client, texts: str) -> None:
    assert names(api, texts, search("cof:*")) == COFFEE
    assert names(api, texts, search("ru:*")) == ["run", "runners"]


def test_stop_words_match_nothing_and_are_dropped_beside_other_words(api: httpx.Client, texts: str) -> None:
    assert names(api, texts, search("the")) == []
    assert names(api, texts, search("the & coffee")) == COFFEE
    assert names(api, texts, search("and | cake")) == ["cake", "phrase"]


def test_languages(api: httpx.Client, texts: str) -> None:
    assert names(api, texts, search("leche", **{"$language": "spanish"})) == ["leche", "leche_accent"]
    # Without unaccent, an accent is part of the word (Parse Server's own test).
    assert names(api, texts, search("CAFÉ", **{"$diacriticSensitive": True})) == ["leche_accent"]
    assert names(api, texts, search("running", **{"$language": "simple"})) == ["runners"]
    assert names(api, texts, search("the", **{"$language": "simple"})) == ["runners"]
    assert names(api, texts, search("сырники", **{"$language": "russian"})) == ["syrniki"]
    assert names(api, texts, search("coffee", **{"$language": ""})) == COFFEE  # empty: english


def test_combined_with_other_constraints(api: httpx.Client, texts: str) -> None:
    assert names(api, texts, {**search("coffee"), "n": 0}) == ["coffee", "cream"]
    assert names(api, texts, {"$or": [search("cake"), {"name": "run"}]}) == ["cake", "phrase", "run"]
    assert names(api, texts, {"$and": [search("coffee"), search("cream | cake")]}) == ["cream", "phrase"]
    response = find(api, texts, search("coffee"), count=1, limit=2, order="name")
    body = response.json()
    assert body["count"] == 5
    assert [o["name"] for o in body["results"]] == ["coffee", "cream"]


def test_a_field_the_class_lacks_matches_nothing(api: httpx.Client, texts: str) -> None:
    where = {"nope": {"$text": {"$search": {"$term": "coffee"}}}}
    assert names(api, texts, where) == []


# --- $score ---------------------------------------------------------------------------------------


def test_keys_score_gives_each_object_its_rank(api: httpx.Client, texts: str) -> None:
    response = find(api, texts, search("coffee"), keys="name,$score", order="$score")
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    # ts_rank_cd(..., 32): 0.1 per cover, then rank / (rank + 1), printed as a float4.
    assert results[0]["name"] == "strong"
    assert results[0]["score"] == 0.23076923
    assert sorted((o["name"], o["score"]) for o in results[1:]) == [
        ("coffee", 0.09090909), ("cream", 0.09090909), ("phrase", 0.09090909), ("shopping", 0.09090909)]
    assert all("subject" not in o for o in results)


def test_score_orders_best_first_whatever_the_sign(api: httpx.Client, texts: str) -> None:
    # Parse Server sorts "score DESC" for $score and -$score alike.
    for order in ("$score", "-$score"):
        response = find(api, texts, search("cake | coffee"), keys="$score,name", order=order)
        results = response.json()["results"]
        scores = [o["score"] for o in results]
        assert scores == sorted(scores, reverse=True)
        assert results[0]["name"] == "strong"
        assert results[1] == {**results[1], "name": "phrase", "score": 0.16666667}


def test_score_after_other_order_keys(api: httpx.Client, texts: str) -> None:
    response = find(api, texts, search("coffee"), keys="n,name,$score", order="n,$score")
    found = [(o["n"], o["name"]) for o in response.json()["results"]]
    assert sorted(found[:2]) == [(0, "coffee"), (0, "cream")]  # equal scores: either order
    assert found[2:] == [(1, "strong"), (1, "shopping"), (2, "phrase")]


@pytest.mark.differs_from_parse_server("Parse Server sorts by a score column it did not select and answers []")
def test_score_order_without_score_key(api: httpx.Client, texts: str) -> None:
    response = find(api, texts, search("coffee"), order="-$score", keys="name")
    results = response.json()["results"]
    assert results[0] == {**results[0], "name": "strong"}
    assert all("score" not in o for o in results)


# --- errors (Parse Server's messages, code 107) ---------------------------------------------------


@pytest.mark.parametrize(("where", "message"), [
    ({"subject": {"$text": {"$search": True}}}, "bad $text: $search, should be object"),
    ({"subject": {"$text": "coffee"}}, "bad $text: $search, should be object"),
    ({"subject": {"$text": {"$search": {}}}}, "bad $text: $term, should be string"),
    (search(7), "bad $text: $term, should be string"),
    (search(""), "bad $text: $term, should be string"),
    (search("leche", **{"$language": True}), "bad $text: $language, should be string"),
    (search("leche", **{"$caseSensitive": "string"}), "bad $text: $caseSensitive, should be boolean"),
    (search("leche", **{"$caseSensitive": True}),
     "bad $text: $caseSensitive not supported, please use $regex or create a separate lower case column."),
    (search("leche", **{"$diacriticSensitive": "string"}), "bad $text: $diacriticSensitive, should be boolean"),
    (search("leche", **{"$diacriticSensitive": False}),
     "bad $text: $diacriticSensitive - false not supported, install Postgres Unaccent Extension"),
])
def test_invalid_search(api: httpx.Client, texts: str, where: Any, message: str) -> None:
    assert_error(find(api, texts, where), 400, 107, message)


def test_accepted_options(api: httpx.Client, texts: str) -> None:
    options = {"$caseSensitive": False, "$diacriticSensitive": True, "$language": "english"}
    assert names(api, texts, search("coffee", **options)) == COFFEE


@pytest.mark.differs_from_parse_server("PostgreSQL refuses the term and Parse Server answers 500")
@pytest.mark.parametrize("term", ["coffee cream", "coffee &", "& coffee", "(coffee", "coffee)", "!", "'coffee",
                                  "coffee:X", "coffee <16385> cream", "a\\"])
def test_a_term_to_tsquery_refuses_is_a_400(api: httpx.Client, texts: str, term: str) -> None:
    response = find(api, texts, search(term))
    assert_error(response, 400, 107)
    assert response.json()["error"].startswith("bad $text: $term is not a valid text search query")


@pytest.mark.differs_from_parse_server("PostgreSQL refuses the configuration and Parse Server answers 500")
def test_an_unknown_language_is_a_400(api: httpx.Client, texts: str) -> None:
    assert_error(find(api, texts, search("coffee", **{"$language": "klingon"})), 400, 107,
                 "bad $text: $language, unsupported language klingon")


@pytest.mark.differs_from_parse_server("PostgreSQL has no to_tsvector for the column and Parse Server answers 500")
def test_text_search_on_a_number_is_a_400(api: httpx.Client, texts: str) -> None:
    assert_error(find(api, texts, {"n": {"$text": {"$search": {"$term": "1"}}}}), 400, 102,
                 "bad $text: n is not a String field")
