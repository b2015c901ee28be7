"""SQL shared by the SQLite and PostgreSQL adapters: statements, boolean structure, ordering.

A dialect supplies placeholders, parameter encoding and the leaves of the query IR (comparisons,
arrays, JSON paths, regular expressions); everything else is here. Every leaf compiles to an
expression that is TRUE or FALSE, never NULL, so that NOT means what the matcher means by it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from bastion.core.query import ir
from bastion.core.schema import ClassSchema
from bastion.errors import Code, ParseError
from bastion.ports.storage import SCORE_COLUMN, Access, FindQuery

MAX_SQL_DEPTH = 64


def quote(name: str) -> str:
    """A quoted identifier. Names were validated upstream; quoting is the second line of defence."""
    if "\x00" in name:
        raise ParseError(Code.INVALID_KEY_NAME, "Invalid name.")
    return '"' + name.replace('"', '""') + '"'


def balanced(terms: list[str], op: str) -> str:
    """``terms`` joined by AND or OR as a balanced tree: a flat ``a OR b OR c ...`` nests one level per
    term in the parser, and SQLite refuses expressions nested deeper than 1000."""
    if len(terms) <= 16:
        return "(" + f" {op} ".join(terms) + ")"
    middle = len(terms) // 2
    return f"({balanced(terms[:middle], op)} {op} {balanced(terms[middle:], op)})"


class Params:
    """Collects bound parameters while a statement is built."""

    def __init__(self, dialect: SqlDialect) -> None:
        self.dialect = dialect
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return self.dialect.placeholder(len(self.values))


# The nodes a dialect compiles itself; the boolean structure, subqueries and relations are compiled here.
GeoLeaf = ir.GeoNear | ir.GeoWithinBox | ir.GeoWithinPolygon | ir.PolygonContains
Leaf = (ir.Compare | ir.In | ir.ArrayContains | ir.ArrayStartsWith | ir.ContainsAll | ir.ContainedBy | ir.Exists
        | ir.Regex | GeoLeaf | ir.TextSearch)


@dataclass(frozen=True, slots=True)
class Compilation:
    """What compiling one where clause carries down its tree: the statement's parameters, the access
    that subqueries and relations read with, and how deep the node is (refused past MAX_SQL_DEPTH)."""

    params: Params
    access: Access
    depth: int = 0

    def deeper(self) -> Compilation:
        return Compilation(self.params, self.access, self.depth + 1)


class SqlDialect(ABC):
    """How one database spells what the IR means."""

    @abstractmethod
    def placeholder(self, index: int) -> str: ...

    @abstractmethod
    def leaf(self, node: Leaf, params: Params) -> str:
        """SQL for one leaf node (Compare, In, ArrayContains, ContainsAll, ContainedBy, Exists, Regex,
        the geo nodes, TextSearch)."""

    @abstractmethod
    def perm_predicate(self, column: str, access: Access, params: Params, table: str | None) -> str:
        """A predicate admitting the rows whose ``column`` (``_rperm``/``_wperm``) lets ``access`` in:
        a missing list means public; the master key passes every row."""

    def read_access(self, access: Access, params: Params, table: str | None = None) -> str:
        """A predicate admitting the rows ``access`` may read (``TRUE`` for the master key)."""
        return self.perm_predicate("_rperm", access, params, table)

    def write_access(self, access: Access, params: Params) -> str:
        return self.perm_predicate("_wperm", access, params, None)

    @abstractmethod
    def order_term(self, key: ir.Order, params: Params | None = None) -> str:
        """SQL sorting by ``key``; a DistanceOrder binds its point in ``params``."""

    @abstractmethod
    def column_value(self, type_name: str, value: Any) -> Any:
        """A canonical value as the driver wants it bound for a column of that type."""

    def true(self) -> str:
        return "TRUE"

    def false(self) -> str:
        return "FALSE"

    # --- structure ------------------------------------------------------------------------------

    def where(self, node: ir.Node, params: Params, access: Access) -> str:
        """The predicate of ``node``, its values bound in ``params``, its subqueries read with ``access``."""
        return self.predicate(node, Compilation(params, access))

    def predicate(self, node: ir.Node, ctx: Compilation) -> str:
        if ctx.depth > MAX_SQL_DEPTH:
            raise ParseError(Code.INVALID_QUERY, "Query is nested too deeply.")
        match node:
            # Leaves first: most nodes are leaves (a get's whole where is one), and each case is a class test.
            case (ir.Compare() | ir.In() | ir.ArrayContains() | ir.ArrayStartsWith() | ir.ContainsAll()
                  | ir.ContainedBy() | ir.Exists() | ir.Regex() | ir.GeoNear() | ir.GeoWithinBox()
                  | ir.GeoWithinPolygon() | ir.PolygonContains() | ir.TextSearch()):
                return self.leaf(node, ctx.params)
            case ir.Const():
                return self.true() if node.value else self.false()
            case ir.And():
                deeper = ctx.deeper()
                return balanced([self.predicate(c, deeper) for c in node.children], "AND")
            case ir.Or():
                deeper = ctx.deeper()
                return balanced([self.predicate(c, deeper) for c in node.children], "OR")
            case ir.Not():
                return "(NOT " + self.predicate(node.child, ctx.deeper()) + ")"
            case ir.InSubQuery():
                return self.in_subquery(node, ctx)
            case ir.SubQueryExists():
                return f"EXISTS (SELECT 1 FROM {self.subquery_source(node.sub, ctx)})"
            case ir.RelatedTo() | ir.RelationHas():
                return self.relation(node, ctx)
            case _:
                raise ParseError(Code.INVALID_QUERY, f"unsupported query node {type(node).__name__}")

    def relation(self, node: ir.RelatedTo | ir.RelationHas, ctx: Compilation) -> str:
        """The object's membership in a ``_Join:<key>:<class>`` table (``relatedId``, ``owningId``)."""
        params, access = ctx.params, ctx.access
        if isinstance(node, ir.RelationHas):  # owners whose relation holds one of the ids
            join = quote(f"_Join:{node.key}:{node.class_name}")
            related: list[str] = []
            if node.related_ids:
                related.append(f'"relatedId" IN ({", ".join(params.add(i) for i in node.related_ids)})')
            if node.sub is not None:
                source = self.subquery_source(node.sub, ctx)
                related.append(f'"relatedId" IN (SELECT "objectId" FROM {source})')
            held = " OR ".join(related) or self.false()
            return f'("objectId" IN (SELECT "owningId" FROM {join} WHERE {held}))'
        join = quote(f"_Join:{node.key}:{node.owning_class}")
        sql = f'"objectId" IN (SELECT "relatedId" FROM {join} WHERE "owningId" = {params.add(node.owning_id)})'
        if not access.is_master:
            # As Parse Server 9: a caller who may not read the owning object sees none of its relation.
            owner = '"_owner"'
            sql += (f" AND EXISTS (SELECT 1 FROM {quote(node.owning_class)} AS {owner} "
                    f'WHERE {owner}."objectId" = {params.add(node.owning_id)} '
                    f"AND {self.read_access(access, params, owner)})")
        return f"({sql})"

    def subquery_source(self, sub: ir.SubQuery, ctx: Compilation) -> str:
        """``"Class" WHERE <its where> AND <read access>``: the rows a subquery may see."""
        table = quote(sub.class_name)
        inner = self.predicate(sub.where, ctx.deeper())
        acl = self.read_access(ctx.access, ctx.params, table)
        return f"{table} WHERE {inner} AND {acl}"

    def in_subquery(self, node: ir.InSubQuery, ctx: Compilation) -> str:
        source = self.subquery_source(node.sub, ctx)
        key_sql = self.subquery_key(node.sub.key)
        # Without the IS NOT NULL, one object lacking the key makes "x IN (...)" NULL, not FALSE,
        # and NOT of it (``$dontSelect``) would drop objects the matcher keeps.
        select_sql = f"SELECT {key_sql} FROM {source} AND {key_sql} IS NOT NULL"
        return self.membership(node.field, select_sql, ctx.params)

    @abstractmethod
    def subquery_key(self, key: ir.Field) -> str: ...

    @abstractmethod
    def membership(self, field: ir.Field, select_sql: str, params: Params) -> str:
        """A predicate that ``field`` (or, for an Array of pointers, one element) is in the select."""

    # --- statements -----------------------------------------------------------------------------

    def select(self, schema: ClassSchema, query: FindQuery, access: Access, columns: list[str],
               select_list: str | None = None) -> tuple[str, list[Any]]:
        params = Params(self)
        # The select list comes first in the statement, so a $score's parameters bind first.
        selected = select_list or ", ".join(self.select_item(c, query, params) for c in columns)
        where = self.where(query.where, params, access)
        acl = self.read_access(access, params)
        sql = f"SELECT {selected} FROM {quote(schema.class_name)} WHERE {where} AND {acl}"
        if query.order:
            sql += " ORDER BY " + ", ".join(self.score_order(k.search, params) if isinstance(k, ir.ScoreOrder)
                                            else self.order_term(k, params) for k in query.order)
        if query.limit is not None:
            sql += f" LIMIT {params.add(int(query.limit))}"
        if query.skip:
            if query.limit is None:
                sql += f" LIMIT {params.add(-1) if self.placeholder(1) == '?' else 'ALL'}"
            sql += f" OFFSET {params.add(int(query.skip))}"
        return sql, params.values

    def select_item(self, column: str, query: FindQuery, params: Params) -> str:
        if column == SCORE_COLUMN and query.score is not None:
            return f"{self.text_rank(query.score, params)} AS {quote(column)}"
        return quote(column)

    def text_rank(self, search: ir.TextSearch, params: Params) -> str:
        """``ts_rank_cd(to_tsvector(lang, field), to_tsquery(lang, term), 32)``: Parse's ``$score``."""
        raise ParseError(Code.INVALID_QUERY, "$score is not supported by this database")

    def score_order(self, search: ir.TextSearch, params: Params) -> str:
        # Parse Server sorts "score DESC" for $score and -$score alike; PostgreSQL puts nulls first.
        return f"{self.text_rank(search, params)} DESC NULLS FIRST"

    def count(self, schema: ClassSchema, where: ir.Node, access: Access) -> tuple[str, list[Any]]:
        params = Params(self)
        predicate = self.where(where, params, access)
        acl = self.read_access(access, params)
        return f"SELECT COUNT(*) FROM {quote(schema.class_name)} WHERE {predicate} AND {acl}", params.values
