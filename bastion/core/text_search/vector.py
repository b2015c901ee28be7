"""to_tsvector: a text's lexemes and their positions, as PostgreSQL numbers them."""

from __future__ import annotations

from functools import lru_cache

from bastion.core.text_search.dictionaries import lexize
from bastion.core.text_search.parser import tokens

MAX_TOKEN_BYTES = 2047  # longer tokens are not indexed (PostgreSQL's MAXSTRLEN)
MAX_POSITION = 16383  # positions beyond are clamped (MAXENTRYPOS - 1)
MAX_POSITIONS_PER_LEXEME = 255  # MAXNUMPOS - 1: later ones are dropped
WEIGHT_D = 1  # to_tsvector gives every position weight D; a query's weight mask bit for D


def lexemes(language: str, text: str) -> list[tuple[str | None, int]]:
    """(lexeme or None for a stop word, position) for each token, as to_tsvector numbers them."""
    out: list[tuple[str | None, int]] = []
    position = 0
    for kind, token in tokens(text):
        if len(token.encode()) > MAX_TOKEN_BYTES:
            continue
        position += 1
        out.append((lexize(language, kind, token), min(position, MAX_POSITION)))
    return out


Vector = dict[str, tuple[int, ...]]


@lru_cache(maxsize=512)
def to_tsvector(language: str, text: str) -> Vector:
    positions: dict[str, list[int]] = {}
    for lexeme, position in lexemes(language, text):
        if lexeme is None:
            continue
        seen = positions.setdefault(lexeme, [])
        if len(seen) < MAX_POSITIONS_PER_LEXEME and position not in seen:
            seen.append(position)
    return {lexeme: tuple(sorted(p)) for lexeme, p in positions.items()}
