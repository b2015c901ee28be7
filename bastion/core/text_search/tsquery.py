"""to_tsquery: its syntax and errors, operands that become phrases (``<->``), stop-word removal with
phrase distances kept, prefixes (``:*``) and weights."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from bastion.core.text_search.vector import lexemes

MAX_PHRASE_DISTANCE = 16384
# Bastion's own bound on a query's words and operators (PostgreSQL takes thousands): it keeps the
# recursive evaluation shallow and the ranking's cost in check.
MAX_QUERY_ITEMS = 256
MAX_QUERY_DEPTH = 32  # nested parentheses and NOTs


class TextQueryError(ValueError):
    """to_tsquery refuses the term (PostgreSQL raises a syntax error)."""


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
