"""``$text`` constraints and the ``$score`` they give, as Parse Server on PostgreSQL reads them."""

from __future__ import annotations

from typing import Any

from bastion.core import text_search
from bastion.core.query import ir
from bastion.core.types import FieldType
from bastion.errors import Code, ParseError

MAX_TERM_LENGTH = 10_000  # characters; to_tsquery's own limits are far beyond any real search


def _bad(message: str) -> ParseError:
    return ParseError(Code.INVALID_JSON, f"bad $text: {message}")


def text_constraint(field: ir.Field | None, ft: FieldType | None, arg: Any) -> ir.Node:
    """``{"$text": {"$search": {"$term", "$language", "$caseSensitive", "$diacriticSensitive"}}}``.

    The checks and messages are Parse Server's (PostgresStorageAdapter), in its order, including the
    options PostgreSQL cannot honour: case-sensitive and diacritic-insensitive search."""
    search = arg.get("$search") if isinstance(arg, dict) else None
    if not isinstance(search, (dict, list)):
        raise _bad("$search, should be object")
    if isinstance(search, list):  # an object to JavaScript, without a $term
        raise _bad("$term, should be string")
    term = search.get("$term")
    if not term or not isinstance(term, str):
        raise _bad("$term, should be string")
    language = search.get("$language")
    if language and not isinstance(language, str):
        raise _bad("$language, should be string")
    language = language or "english"
    case_sensitive = search.get("$caseSensitive")
    if case_sensitive and not isinstance(case_sensitive, bool):
        raise _bad("$caseSensitive, should be boolean")
    if case_sensitive:
        raise _bad("$caseSensitive not supported, please use $regex or create a separate lower case column.")
    diacritic_sensitive = search.get("$diacriticSensitive")
    if diacritic_sensitive and not isinstance(diacritic_sensitive, bool):
        raise _bad("$diacriticSensitive, should be boolean")
    if diacritic_sensitive is False:
        raise _bad("$diacriticSensitive - false not supported, install Postgres Unaccent Extension")
    # Parse Server hands these to PostgreSQL, which fails the whole query (500); Bastion refuses
    # them here, identically on every backend.
    if language not in text_search.LANGUAGES:
        raise _bad(f"$language, unsupported language {language[:50]}")
    if len(term) > MAX_TERM_LENGTH:
        raise _bad("$term is too long")
    if "\x00" in term:  # PostgreSQL text cannot hold it
        raise _bad("$term holds a NUL character")
    try:
        text_search.parse_query(language, term)
    except text_search.TextQueryError as exc:
        raise _bad(f"$term is not a valid text search query: {exc}") from None
    if field is None or ft is None:
        return ir.FALSE  # a field the class lacks is null everywhere
    if ft.type != "String" or field.is_json_path:
        raise ParseError(Code.INVALID_QUERY, f"bad $text: {field.column} is not a String field")
    return ir.TextSearch(field, term, language)


def first_text_search(node: ir.Node) -> ir.TextSearch | None:
    """The ``$text`` constraint that ``$score`` refers to: the first in the query."""
    if isinstance(node, ir.TextSearch):
        return node
    if isinstance(node, (ir.And, ir.Or)):
        for child in node.children:
            found = first_text_search(child)
            if found is not None:
                return found
    if isinstance(node, ir.Not):
        return first_text_search(node.child)
    return None
