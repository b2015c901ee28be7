"""PostgreSQL's full-text search, modelled in Python for SQLite and the in-memory matcher.

Parse Server answers ``$text`` with ``to_tsvector(cfg, field) @@ to_tsquery(cfg, term)`` and ranks with
``ts_rank_cd(..., 32)``. This package reproduces those four functions of PostgreSQL 15 so that SQLite
and the matcher return the objects PostgreSQL returns, in its order, for ordinary prose:

- parser.py: the default parser's tokens (words, numbers, hyphenated words, hosts, paths, e-mail
  addresses, URLs; markup skipped);
- dictionaries.py: the configurations, ``simple`` and the Snowball ones (stopwords.py: their stop
  words);
- vector.py: to_tsvector, the lexemes and their positions;
- tsquery.py: to_tsquery, its syntax and errors, phrases, stop-word removal, prefixes and weights;
- match.py: ``@@`` (positions for phrases);
- rank.py: ts_rank_cd's cover density with normalisation 32 (rank / (rank + 1)), rounded to float4.
"""

from bastion.core.text_search.dictionaries import LANGUAGES, MAX_STEM_BYTES
from bastion.core.text_search.match import Lookup, matches
from bastion.core.text_search.parser import tokens
from bastion.core.text_search.rank import MAX_RANK_STEPS, RankTooCostly, float4, rank, score_value
from bastion.core.text_search.tsquery import (
    MAX_PHRASE_DISTANCE,
    MAX_QUERY_DEPTH,
    MAX_QUERY_ITEMS,
    Not,
    Op,
    Query,
    QueryNode,
    TextQueryError,
    Val,
    parse_query,
)
from bastion.core.text_search.vector import (
    MAX_POSITION,
    MAX_POSITIONS_PER_LEXEME,
    MAX_TOKEN_BYTES,
    Vector,
    lexemes,
    to_tsvector,
)

__all__ = [
    "LANGUAGES",
    "Lookup",
    "MAX_PHRASE_DISTANCE",
    "MAX_POSITION",
    "MAX_POSITIONS_PER_LEXEME",
    "MAX_QUERY_DEPTH",
    "MAX_QUERY_ITEMS",
    "MAX_RANK_STEPS",
    "MAX_STEM_BYTES",
    "MAX_TOKEN_BYTES",
    "Not",
    "Op",
    "Query",
    "QueryNode",
    "RankTooCostly",
    "TextQueryError",
    "Val",
    "Vector",
    "float4",
    "lexemes",
    "matches",
    "parse_query",
    "rank",
    "score_value",
    "to_tsvector",
    "tokens",
]
