"""PostgreSQL's full-text search, modelled in Python for SQLite and the in-memory matcher.

Parse Server answers ``$text`` with ``to_tsvector(cfg, field) @@ to_tsquery(cfg, term)`` and ranks with
``ts_rank_cd(..., 32)``. This module reproduces those four functions of PostgreSQL 15 so that SQLite
and the matcher return the objects PostgreSQL returns, in its order, for ordinary prose:

- the default parser: words (ASCII or not), words with digits, numbers (signed, decimal, versions),
  hyphenated words (the compound, then each part), dotted names (hosts, files), paths (``and/or``),
  e-mail addresses, URLs (the URL, its host, its path); XML tags and entities are skipped. Its
  rarer corners (URLs with user names, scientific notation next to letters...) are approximated;
- the configurations: ``simple`` (lower case) and the Snowball ones (stop words, then the stemmer of
  ``snowballstemmer`` 2.2, the Snowball release PostgreSQL 15 embeds; Hindi and Russian stem ASCII
  words as English). Words, hyphenated words and their letter parts are stemmed; the rest is
  lower-cased;
- to_tsquery: its syntax and errors, operands that become phrases (``<->``), stop-word removal with
  phrase distances kept, prefixes (``:*``) and weights;
- ``@@`` (positions for phrases) and ts_rank_cd's cover density with normalisation 32
  (rank / (rank + 1)), rounded to float4.
"""

from __future__ import annotations

import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import snowballstemmer

from bastion.core.text_stopwords import STOP_WORDS

# The text search configurations PostgreSQL 15 ships, and so the only $language values accepted.
LANGUAGES = frozenset({
    "simple", "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english", "finnish", "french",
    "german", "greek", "hindi", "hungarian", "indonesian", "irish", "italian", "lithuanian", "nepali",
    "norwegian", "portuguese", "romanian", "russian", "serbian", "spanish", "swedish", "tamil", "turkish",
    "yiddish",
})
_ENGLISH_FOR_ASCII = frozenset({"hindi", "russian"})  # their configurations map ASCII words to english_stem

MAX_TOKEN_BYTES = 2047  # longer tokens are not indexed (PostgreSQL's MAXSTRLEN)
MAX_POSITION = 16383  # positions beyond are clamped (MAXENTRYPOS - 1)
MAX_POSITIONS_PER_LEXEME = 255  # MAXNUMPOS - 1: later ones are dropped
MAX_STEM_BYTES = 1000  # Snowball dictionaries do not stem longer words
MAX_PHRASE_DISTANCE = 16384
# Bastion's own bound on a query's words and operators (PostgreSQL takes thousands): it keeps the
# recursive evaluation shallow and the ranking's cost in check.
MAX_QUERY_ITEMS = 256
MAX_QUERY_DEPTH = 32  # nested parentheses and NOTs
# Query evaluations one ranking may spend: ordinary documents need hundreds; the cover search is
# quadratic in the matched positions, which a hostile document can make tens of thousands.
MAX_RANK_STEPS = 200_000
_WEIGHT_D = 1  # to_tsvector gives every position weight D; a query's weight mask bit for D


class TextQueryError(ValueError):
    """to_tsquery refuses the term (PostgreSQL raises a syntax error)."""


class RankTooCostly(RuntimeError):
    """ts_rank_cd's cover search would take too long on this document (see MAX_RANK_STEPS)."""


# --- dictionaries ----------------------------------------------------------------------------------

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


# Token kinds: a word of letters (stemmed) or anything else (lower-cased, as the "simple" dictionary).
_WORD, _OTHER = 0, 1


def _lexize(language: str, kind: int, token: str) -> str | None:
    if language == "simple" or kind == _OTHER:
        return token.lower()
    if language in _ENGLISH_FOR_ASCII and token.isascii():
        return _snowball("english", token)
    return _snowball(language, token)


# --- the default parser ----------------------------------------------------------------------------


def _run_end(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i].isalnum():
        i += 1
    return i


# Markup the parser recognises and no configuration indexes.
_TAG = re.compile(r"<!--.*?-->|<[/?]?[A-Za-z_:][\w:.\-]*(?:\s+[^<>]*?)?\s*/?>", re.DOTALL)
_HIDDEN_ELEMENT = re.compile(r"<(script|style)\b", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);")
_HOST = r"(?:[A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}"
_EMAIL = re.compile(r"[A-Za-z0-9_.\-]+@" + _HOST)
_URL = re.compile(r"(?P<protocol>[A-Za-z][A-Za-z0-9+.\-]*://)?(?P<host>" + _HOST + r"(?::[0-9]+)?)"
                  r"(?P<path>/[^\s<>\"`]*)?")
_PROTOCOL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_SCIENTIFIC = re.compile(r"[0-9]+(?:\.[0-9]+)?[eE][+\-]?[0-9]+(?![0-9A-Za-z])")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_\-]*[A-Za-z0-9])?"
_UNDERSCORED_HOST = re.compile(_LABEL + r"(?:\." + _LABEL + r")*\.[A-Za-z]{2,}(?![A-Za-z0-9_\-])")
_FILE = re.compile(r"[A-Za-z0-9.]*(?:/[A-Za-z0-9_][A-Za-z0-9_.\-]*)+")


def _address(text: str, i: int) -> tuple[list[str], int] | None:
    """An e-mail address, URL or path at ``i``: its tokens (none for a bare protocol) and its end."""
    email = _EMAIL.match(text, i)
    if email is not None:
        return [email.group()], email.end()
    url = _URL.match(text, i)
    if url is not None and (url.group("protocol") or url.group("path")):
        host, path = url.group("host"), url.group("path")
        return ([host + path, host, path] if path else [host]), url.end()
    protocol = _PROTOCOL.match(text, i)
    if protocol is not None:  # not indexed; what follows is read as usual
        return [], protocol.end()
    number = _SCIENTIFIC.match(text, i)
    if number is not None:
        return [number.group()], number.end()
    host = _UNDERSCORED_HOST.match(text, i)
    if host is not None and "_" in host.group():  # "my_file.tar.gz" is one host name
        return [host.group()], host.end()
    path_match = _FILE.match(text, i)
    if path_match is not None:
        head = path_match.group().split("/", 1)[0]
        if not ("." in head and head.replace(".", "").isdigit()):  # "3.14/2": a number, then "/2"
            token = path_match.group().rstrip(".")
            if "/" in token and token != "/":
                return [token], i + len(token)
    return None


def _word_kind(token: str) -> int:
    return _WORD if token.isalpha() else _OTHER


def tokens(text: str) -> list[tuple[int, str]]:
    """The indexable tokens of ``text`` in order, as (kind, token)."""
    out: list[tuple[int, str]] = []
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if (ch.isascii() and ch.isalnum()) or ch == "/":
            address = _address(text, i)
            if address is not None:
                out.extend((_OTHER, token) for token in address[0])
                i = address[1]
                continue
        if ch.isalnum():
            j = _run_end(text, i)
            run = text[i:j]
            if j + 1 < n and text[j] == "." and text[j + 1].isalnum():
                dotted = _dotted(text, i, j, run)
                if dotted is not None:
                    out.append((_OTHER, dotted[0]))
                    i = dotted[1]
                    continue
            if run[0].isalpha() and j + 1 < n and text[j] == "-" and text[j + 1].isalnum():
                parts, k = [run], j
                while k + 1 < n and text[k] == "-" and text[k + 1].isalnum():
                    end = _run_end(text, k + 1)
                    part = text[k + 1:end]
                    if not any(c.isalpha() for c in part):
                        break  # "covid-19": a word, then the signed number -19
                    parts.append(part)
                    k = end
                if len(parts) > 1:
                    compound = "-".join(parts)
                    has_digits = any(not p.isalpha() for p in parts)
                    out.append((_OTHER if has_digits else _WORD, compound))
                    out.extend((_word_kind(p), p) for p in parts)
                    i = k
                    continue
            out.append((_word_kind(run), run))
            i = j
            if text.startswith("..", j) and (j + 2 == n or not (text[j + 2] == "." or text[j + 2].isalnum())):
                out.append((_OTHER, ".."))  # the parser's quirk: "so.. yes" holds the file name ".."
                i = j + 2
            continue
        if ch in "<&":
            markup = (_TAG if ch == "<" else _ENTITY).match(text, i)
            if markup is not None:
                i = markup.end()
                hidden = _HIDDEN_ELEMENT.match(markup.group())
                if hidden is not None:  # a script's or style's content is not text
                    close = re.compile(r"</" + hidden.group(1) + r"\b", re.IGNORECASE).search(text, i)
                    i = n if close is None else close.start()
                continue
        if ch in "+-" and i + 1 < n and text[i + 1].isdigit():
            scientific = _SCIENTIFIC.match(text, i + 1)
            if scientific is not None:
                out.append((_OTHER, text[i:scientific.end()]))
                i = scientific.end()
                continue
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            if j + 1 < n and text[j] == "." and text[j + 1].isdigit():  # "-123.456"
                j += 1
                while j < n and text[j].isdigit():
                    j += 1
            out.append((_OTHER, text[i:j]))  # "-19a" is -19, then a
            i = j
            continue
        i += 1
    return out


def _dotted(text: str, start: int, first_end: int, first: str) -> tuple[str, int] | None:
    """A dotted token (``3.14``, ``1.2.3``, ``example.com``, ``e.g``) starting at ``start``."""
    n = len(text)
    parts, k = [first], first_end
    if first.isdigit() and first.isascii():
        # Numbers: "3.14", "1.2.3"; "3.5kg" is 3.5 then kg, "10.5.x" is 10.5 then x.
        while k + 1 < n and text[k] == "." and text[k + 1].isdigit() and text[k + 1].isascii():
            end = k + 1
            while end < n and text[end].isdigit() and text[end].isascii():
                end += 1
            parts.append(text[k + 1:end])
            k = end
            if end < n and text[end].isalnum():
                break
        return (".".join(parts), k) if len(parts) > 1 else None
    while k + 1 < n and text[k] == "." and text[k + 1].isalnum():
        end = _run_end(text, k + 1)
        parts.append(text[k + 1:end])
        k = end
    if first[0].isalpha() and all(p.isascii() for p in parts):
        return ".".join(parts), k  # host or file name
    return None


def lexemes(language: str, text: str) -> list[tuple[str | None, int]]:
    """(lexeme or None for a stop word, position) for each token, as to_tsvector numbers them."""
    out: list[tuple[str | None, int]] = []
    position = 0
    for kind, token in tokens(text):
        if len(token.encode()) > MAX_TOKEN_BYTES:
            continue
        position += 1
        out.append((_lexize(language, kind, token), min(position, MAX_POSITION)))
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


# --- to_tsquery ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Val:
    lexeme: str
    prefix: bool = False
    weights: int = 0  # bits: A 8, B 4, C 2, D 1; 0 means any


@dataclass(frozen=True, slots=True)
class Not:
    child: QueryNode


@dataclass(frozen=True, slots=True)
class Op:
    op: str  # "&", "|" or "<->"
    left: QueryNode
    right: QueryNode
    distance: int = 0  # for "<->"


QueryNode = Val | Not | Op


class _Stop:
    """An operand that held only stop words; removed before the query is used."""


_STOP = _Stop()
_Raw = Val | Not | Op | _Stop
_OPERATOR_CHARS = frozenset("!&|()<:")
_WEIGHT_BITS = {"a": 8, "b": 4, "c": 2, "d": 1}


def _syntax_error() -> TextQueryError:
    return TextQueryError("an operator, parenthesis or quote is misplaced")


def _scan(term: str) -> list[tuple[str, object]]:
    """to_tsquery's tokens: ("op", "!" "(" ")" "&" "|"), ("phrase", distance), ("operand", (text, prefix, weights))."""
    out: list[tuple[str, object]] = []
    n, i, want_operand = len(term), 0, True
    while True:
        while i < n and term[i].isspace():
            i += 1
        if i >= n:
            return out
        ch = term[i]
        if want_operand:
            if ch in "!(":
                out.append(("op", ch))
                i += 1
                continue
            if ch in "&|)<:":
                raise _syntax_error()
            text, i = _operand(term, i)
            prefix, weights = False, 0
            if i < n and term[i] == ":":
                i += 1
                while i < n and (term[i] == "*" or term[i].lower() in _WEIGHT_BITS):
                    if term[i] == "*":
                        prefix = True
                    else:
                        weights |= _WEIGHT_BITS[term[i].lower()]
                    i += 1
            out.append(("operand", (text, prefix, weights)))
            want_operand = False
            continue
        if ch in "&|":
            out.append(("op", ch))
            i += 1
            want_operand = True
        elif ch == ")":
            out.append(("op", ch))
            i += 1
        elif ch == "<":
            i, distance = _phrase_operator(term, i)
            out.append(("phrase", distance))
            want_operand = True
        else:
            raise _syntax_error()


def _operand(term: str, i: int) -> tuple[str, int]:
    n = len(term)
    chars: list[str] = []
    if term[i] == "'":
        i += 1
        while True:
            if i >= n:
                raise _syntax_error()
            ch = term[i]
            if ch == "\\":
                if i + 1 >= n:
                    raise TextQueryError("a backslash escapes nothing")
                chars.append(term[i + 1])
                i += 2
            elif ch == "'":
                if i + 1 < n and term[i + 1] == "'":
                    chars.append("'")
                    i += 2
                else:
                    i += 1
                    break
            else:
                chars.append(ch)
                i += 1
        if not chars:
            raise _syntax_error()
        return "".join(chars), i
    while i < n:
        ch = term[i]
        if ch.isspace() or ch in _OPERATOR_CHARS:
            break
        if ch == "\\":
            if i + 1 >= n:
                raise TextQueryError("a backslash escapes nothing")
            chars.append(term[i + 1])
            i += 2
            continue
        chars.append(ch)
        i += 1
    return "".join(chars), i


def _phrase_operator(term: str, i: int) -> tuple[int, int]:
    """``<->`` or ``<N>`` at ``i``: (index after it, distance)."""
    if term.startswith("<->", i):
        return i + 3, 1
    j = i + 1
    while j < len(term) and term[j].isdigit() and term[j].isascii():
        j += 1
    if j == i + 1 or j >= len(term) or term[j] != ">":
        raise _syntax_error()
    distance = int(term[i + 1:j])
    if distance > MAX_PHRASE_DISTANCE:
        raise TextQueryError("a phrase distance must be between 0 and 16384")
    return j + 1, distance


class _Parser:
    """Operator precedence as to_tsquery's: ``!`` over ``<->`` over ``&`` over ``|``."""

    def __init__(self, language: str, items: list[tuple[str, object]]) -> None:
        self.language = language
        self.items = items
        self.i = 0
        self.budget = MAX_QUERY_ITEMS
        self.depth = 0

    def spend(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise TextQueryError(f"it has more than {MAX_QUERY_ITEMS} words and operators")

    def peek(self) -> tuple[str, object] | None:
        return self.items[self.i] if self.i < len(self.items) else None

    def parse(self) -> _Raw:
        node = self.disjunction()
        if self.peek() is not None:
            raise _syntax_error()
        return node

    def disjunction(self) -> _Raw:
        node = self.conjunction()
        while self.peek() == ("op", "|"):
            self.i += 1
            node = Op("|", node, self.conjunction())  # type: ignore[arg-type]
        return node

    def conjunction(self) -> _Raw:
        node = self.phrase()
        while self.peek() == ("op", "&"):
            self.i += 1
            node = Op("&", node, self.phrase())  # type: ignore[arg-type]
        return node

    def phrase(self) -> _Raw:
        node = self.unary()
        while (item := self.peek()) is not None and item[0] == "phrase":
            self.i += 1
            node = Op("<->", node, self.unary(), item[1])  # type: ignore[arg-type]
        return node

    def unary(self) -> _Raw:
        item = self.peek()
        if item is None:
            raise TextQueryError("an operator lacks its operand")
        self.i += 1
        self.spend()
        if item in (("op", "!"), ("op", "(")):
            self.depth += 1
            if self.depth > MAX_QUERY_DEPTH:
                raise TextQueryError(f"it nests more than {MAX_QUERY_DEPTH} parentheses or NOTs")
            if item == ("op", "!"):
                node: _Raw = Not(self.unary())  # type: ignore[arg-type]
            else:
                node = self.disjunction()
                if self.peek() != ("op", ")"):
                    raise _syntax_error()
                self.i += 1
            self.depth -= 1
            return node
        if item[0] != "operand":
            raise _syntax_error()
        text, prefix, weights = cast(tuple[str, bool, int], item[1])  # _scan's operand payload
        return self.morph(text, prefix, weights)

    def morph(self, text: str, prefix: bool, weights: int) -> _Raw:
        """An operand's words as lexemes: several words make a phrase, stop words keep their distance."""
        node: _Raw | None = None
        last = 0
        for lexeme, position in lexemes(self.language, text):
            if lexeme is None:
                continue
            self.spend()
            val = Val(lexeme, prefix, weights)
            node = val if node is None else Op("<->", node, val, position - last)  # type: ignore[arg-type]
            last = position
        return _STOP if node is None else node


def _clean(node: _Raw) -> tuple[QueryNode | None, int, int]:
    """Stop words out of the tree, their room kept in phrase distances (PostgreSQL's
    clean_stopword_intree): (node or None, distance to add on the left, on the right)."""
    if isinstance(node, _Stop):
        return None, 0, 0
    if isinstance(node, Val):
        return node, 0, 0
    if isinstance(node, Not):
        child, ladd, radd = _clean(node.child)
        return (None, 0, 0) if child is None else (Not(child), ladd, radd)
    left, lladd, lradd = _clean(node.left)
    right, rladd, rradd = _clean(node.right)
    phrase = node.op == "<->"
    distance = node.distance if phrase else 0
    if left is None and right is None:
        add = lladd + distance + rradd if phrase else 0
        return None, add, add
    if left is None:
        return right, (lladd + distance + rladd if phrase else 0), (rradd if phrase else 0)
    if right is None:
        return left, (lladd if phrase else 0), (lradd + distance + rradd if phrase else 0)
    if phrase:
        return Op("<->", left, right, distance + lradd + rladd), lladd, rradd
    return Op(node.op, left, right), 0, 0


@dataclass(frozen=True, slots=True)
class Query:
    root: QueryNode | None  # None: nothing but stop words, which matches nothing


@lru_cache(maxsize=1024)
def parse_query(language: str, term: str) -> Query:
    """to_tsquery(language, term); raises TextQueryError where PostgreSQL raises an error."""
    items = _scan(term)
    if not items:
        return Query(None)
    if len(items) > MAX_QUERY_ITEMS:
        raise TextQueryError(f"it has more than {MAX_QUERY_ITEMS} words and operators")
    root, _, _ = _clean(_Parser(language, items).parse())
    return Query(root)


# --- @@ --------------------------------------------------------------------------------------------

Lookup = Callable[[Val], "set[int] | frozenset[int]"]


def _vector_lookup(vector: Vector) -> Lookup:
    def positions(val: Val) -> set[int]:
        if val.weights and not val.weights & _WEIGHT_D:
            return set()
        if not val.prefix:
            return set(vector.get(val.lexeme, ()))
        found: set[int] = set()
        for lexeme, where in vector.items():
            if lexeme.startswith(val.lexeme):
                found.update(where)
        return found

    return positions


def _execute(node: QueryNode, lookup: Lookup, calc_not: bool = True) -> bool:
    if isinstance(node, Val):
        return bool(lookup(node))
    if isinstance(node, Not):
        return not _execute(node.child, lookup, calc_not) if calc_not else True
    if node.op == "&":
        return _execute(node.left, lookup, calc_not) and _execute(node.right, lookup, calc_not)
    if node.op == "|":
        return _execute(node.left, lookup, calc_not) or _execute(node.right, lookup, calc_not)
    positions, _, negated = _phrase(node, lookup)
    return negated or bool(positions)  # negated: everywhere but those positions, so somewhere


def _phrase(node: QueryNode, lookup: Lookup) -> tuple[set[int], int, bool]:
    """(positions where the match ends, its width, whether the positions are negated)."""
    if isinstance(node, Val):
        return set(lookup(node)), 0, False
    if isinstance(node, Not):
        positions, width, negated = _phrase(node.child, lookup)
        return positions, width, not negated
    lp, lw, ln = _phrase(node.left, lookup)
    rp, rw, rn = _phrase(node.right, lookup)
    if node.op == "<->":
        offset = node.distance + rw
        width = node.distance + lw + rw
        if not rn:
            return {r for r in rp if ((r - offset) in lp) != ln}, width, False
        if not ln:
            return {left + offset for left in lp if left + offset not in rp}, width, False
        return lp | rp, width, True  # neither side present: an approximation PostgreSQL refines
    width = max(lw, rw)
    if node.op == "&":
        if ln and rn:
            return lp | rp, width, True
        if ln or rn:
            return (rp - lp if ln else lp - rp), width, False
        return lp & rp, width, False
    if ln or rn:
        if ln and rn:
            return lp & rp, width, True
        return (lp - rp if ln else rp - lp), width, True
    return lp | rp, width, False


def matches(language: str, term: str, text: object) -> bool:
    """``to_tsvector(language, text) @@ to_tsquery(language, term)``; False for a non-string."""
    if not isinstance(text, str):
        return False
    root = parse_query(language, term).root
    if root is None:
        return False
    return _execute(root, _vector_lookup(to_tsvector(language, text)))


# --- ts_rank_cd(..., 32) ---------------------------------------------------------------------------

_INVERSE_D = 1.0 / struct.unpack("f", struct.pack("f", 0.1))[0]  # 1 / float4 weight of D, as a double


def float4(value: float) -> float:
    single: float = struct.unpack("f", struct.pack("f", value))[0]
    return single


def _operands(node: QueryNode) -> list[Val]:
    if isinstance(node, Val):
        return [node]
    if isinstance(node, Not):
        return _operands(node.child)
    return _operands(node.left) + _operands(node.right)


def rank(language: str, term: str, text: object) -> float:
    """``ts_rank_cd(to_tsvector(language, text), to_tsquery(language, term), 32)`` as a float4."""
    if not isinstance(text, str):
        return 0.0
    root = parse_query(language, term).root
    if root is None:
        return 0.0
    vector = to_tsvector(language, text)
    # The document as the query sees it: each position where some operand matches, in order.
    at: dict[tuple[int, str], set[Val]] = {}
    for val in dict.fromkeys(_operands(root)):
        if val.weights and not val.weights & _WEIGHT_D:
            continue
        for lexeme, where in vector.items():
            if lexeme == val.lexeme or (val.prefix and lexeme.startswith(val.lexeme)):
                for position in where:
                    at.setdefault((position, lexeme), set()).add(val)
    if not at:
        return 0.0
    doc = sorted(at.items(), key=lambda item: (item[0][0], item[0][1].encode()))
    wdoc = 0.0
    start = 0
    steps = [MAX_RANK_STEPS]
    while (cover := _cover(doc, start, root, steps)) is not None:
        begin, end, p, q, start = cover
        inv_sum = 0.0
        for _ in range(begin, end + 1):
            inv_sum += _INVERSE_D
        cpos = (end - begin + 1) / inv_sum
        noise = (q - p) - (end - begin)
        if noise < 0:
            noise = (end - begin) // 2
        wdoc += cpos / (1 + noise)
    wdoc /= wdoc + 1
    return float4(wdoc)


def _cover(doc: list[tuple[tuple[int, str], set[Val]]], start: int, root: QueryNode,
           steps: list[int]) -> tuple[int, int, int, int, int] | None:
    """The next cover from ``start``: (begin, end, first position, last position, next start)."""
    seen: dict[Val, set[int]] = {}

    def lookup(val: Val) -> set[int]:
        steps[0] -= 1
        if steps[0] < 0:
            raise RankTooCostly("ranking this document would take too long")
        return seen.get(val, set())

    while True:
        seen.clear()
        end = -1
        for index in range(start, len(doc)):
            (position, _), vals = doc[index]
            for val in vals:
                seen.setdefault(val, set()).add(position)
            if _execute(root, lookup):
                end = index
                break
        if end < 0:
            return None
        q = doc[end][0][0]
        seen.clear()
        p, begin = None, -1
        index = end
        while index >= start:
            (position, _), vals = doc[index]
            for val in vals:
                seen.setdefault(val, set()).add(position)
            if _execute(root, lookup, calc_not=False):
                p, begin = position, index
                break
            index -= 1
        if p is not None and p <= q:
            return begin, end, p, q, index + 1
        start += 1


def score_value(value: float) -> float:
    """A float4 score as PostgreSQL prints it (the shortest decimal that reads back as the same
    float4), which is what Parse Server's clients receive."""
    single = float4(value)
    for digits in range(1, 10):
        text = f"{single:.{digits}g}"
        if float4(float(text)) == single:
            return float(text)
    return single
