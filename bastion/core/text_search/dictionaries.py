"""The dictionaries of PostgreSQL 15's text search configurations: ``simple`` (lower case) and the
Snowball ones (stop words, then the stemmer of ``snowballstemmer`` 2.2, the Snowball release
PostgreSQL 15 embeds; Hindi and Russian stem ASCII words as English)."""

from __future__ import annotations

import threading
from functools import lru_cache

import snowballstemmer

from bastion.core.text_search.parser import OTHER
from bastion.core.text_search.stopwords import STOP_WORDS

# The text search configurations PostgreSQL 15 ships, and so the only $language values accepted.
LANGUAGES = frozenset({
    "simple", "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english", "finnish", "french",
    "german", "greek", "hindi", "hungarian", "indonesian", "irish", "italian", "lithuanian", "nepali",
    "norwegian", "portuguese", "romanian", "russian", "serbian", "spanish", "swedish", "tamil", "turkish",
    "yiddish",
})
_ENGLISH_FOR_ASCII = frozenset({"hindi", "russian"})  # their configurations map ASCII words to english_stem
MAX_STEM_BYTES = 1000  # Snowball dictionaries do not stem longer words

_local = threading.local()  # snowballstemmer's stemmers keep state while they stem: one per thread


def _stemmer(language: str) -> snowballstemmer.stemmer:
    cache = getattr(_local, "stemmers", None)
    if cache is None:
        cache = _local.stemmers = {}
    stemmer = cache.get(language)
    if stemmer is None:
        stemmer = cache[language] = snowballstemmer.stemmer(language)
    return stemmer


@lru_cache(maxsize=65536)
def _snowball(language: str, word: str) -> str | None:
    """``<language>_stem``: None for a stop word, else the stem of the lower-cased word."""
    lowered = word.lower()
    if len(lowered.encode()) > MAX_STEM_BYTES:
        return lowered
    if not lowered or lowered in STOP_WORDS.get(language, ()):
        return None
    stem: str = _stemmer(language).stemWord(lowered)  # snowballstemmer has no type hints
    return stem


def lexize(language: str, kind: int, token: str) -> str | None:
    """A token's lexeme (None for a stop word): words, hyphenated words and their letter parts are
    stemmed; the rest is lower-cased."""
    if language == "simple" or kind == OTHER:
        return token.lower()
    if language in _ENGLISH_FOR_ASCII and token.isascii():
        return _snowball("english", token)
    return _snowball(language, token)
