"""``cloud.Query``: a query over one class, as the REST API takes it, and its executors.

Its state is plain REST: ``where`` (the REST where dict), ``limit``, ``skip``, ``order`` (Parse's
comma-separated keys, ``-`` for descending), ``keys``, ``include`` and ``exclude_keys``. A
``before_find`` trigger receives the query of the request being served and changes these in place.

Cloud code builds queries with the Parse SDK's methods in snake case (``equal_to``,
``greater_than``, ``matches_query``, ...; each returns the query), and runs them through the
server's read pipeline with ``await query.find()``, ``first()``, ``get(id)``, ``count()``,
``distinct(key)``, ``aggregate(pipeline)``, ``each(callback)`` or ``async for obj in query``.
Where the SDK's method name is one of the state attributes, the method has another name:
``set_limit(n)``, ``set_skip(n)``, ``include_key(*keys)`` (``select``/``exclude`` set ``keys`` and
``exclude_keys``; ``ascending``/``descending`` set ``order``).
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeGuard

from bastion.cloud._runtime import data
from bastion.cloud.errors import Error
from bastion.cloud.objects import Object, encode
from bastion.errors import Code

if TYPE_CHECKING:
    from bastion.domain.read import FindRequest

EARTH_RADIUS_MILES = 3958.8
EARTH_RADIUS_KM = 6371.0
_FLAGS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"))


def quote(text: str) -> str:
    """A literal section of a regex, as the Parse SDKs write it (``\\Q...\\E``)."""
    return "\\Q" + text.replace("\\E", "\\E\\\\E\\Q") + "\\E"


def geo_point(value: Any) -> dict[str, Any]:
    """A GeoPoint's REST form from a REST dict, a ``(latitude, longitude)`` pair, or an object with
    ``latitude`` and ``longitude`` attributes."""
    if isinstance(value, dict) and value.get("__type") == "GeoPoint":
        return {"__type": "GeoPoint", "latitude": value.get("latitude"), "longitude": value.get("longitude")}
    if isinstance(value, dict) and "latitude" in value and "longitude" in value:
        return {"__type": "GeoPoint", "latitude": value["latitude"], "longitude": value["longitude"]}
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return {"__type": "GeoPoint", "latitude": value[0], "longitude": value[1]}
    if hasattr(value, "latitude") and hasattr(value, "longitude"):
        return {"__type": "GeoPoint", "latitude": value.latitude, "longitude": value.longitude}
    raise TypeError("a geo point is {'__type': 'GeoPoint', ...} or a (latitude, longitude) pair")


def _strings(keys: Iterable[Any]) -> list[str]:
    """Keys given as arguments, lists of keys or comma-separated strings."""
    names: list[str] = []
    for key in keys:
        if isinstance(key, (list, tuple)):
            names.extend(_strings(key))
        elif isinstance(key, str):
            names.extend(part for part in key.replace(" ", "").split(",") if part)
        else:
            raise TypeError("keys are strings")
    return names


def _is_operators(value: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and bool(value) and all(isinstance(k, str) and k.startswith("$") for k in value)


class Query:
    def __init__(self, class_name: Any) -> None:
        name = getattr(class_name, "class_name", class_name)
        if not isinstance(name, str) or not name:
            raise ValueError("cloud.Query needs a class name or a cloud object class")
        self.class_name: str = name
        self.where: dict[str, Any] = {}
        self.limit: int | None = None
        self.skip: int = 0
        self.order: str | None = None
        self.keys: list[str] | None = None
        self.include: list[str] = []
        self.exclude_keys: list[str] = []

    # --- the REST form --------------------------------------------------------------------------

    @classmethod
    def from_find_request(cls, class_name: str, request: FindRequest) -> Query:
        query = cls(class_name)
        query.where = dict(request.where) if isinstance(request.where, dict) else {}
        query.limit = request.limit
        query.skip = request.skip
        query.order = request.order
        query.keys = list(request.keys) if request.keys is not None else None
        query.include = list(request.include)
        query.exclude_keys = list(request.exclude_keys)
        return query

    def to_find_request(self, count: bool = False) -> FindRequest:
        from bastion.domain.read import FindRequest

        return FindRequest(where=self.where or None, order=self.order, limit=self.limit, skip=self.skip,
                           keys=self.keys, exclude_keys=list(self.exclude_keys), include=list(self.include),
                           count=count)

    def to_json(self) -> dict[str, Any]:
        """The query's REST parameters, as the SDK's ``toJSON`` (how subqueries carry it)."""
        params: dict[str, Any] = {"where": copy.deepcopy(self.where)}
        if self.include:
            params["include"] = ",".join(self.include)
        if self.exclude_keys:
            params["excludeKeys"] = ",".join(self.exclude_keys)
        if self.keys is not None:
            params["keys"] = ",".join(self.keys)
        if self.limit is not None and self.limit >= 0:
            params["limit"] = self.limit
        if self.skip:
            params["skip"] = self.skip
        if self.order:
            params["order"] = self.order
        return params

    def _subquery(self) -> dict[str, Any]:
        return {**self.to_json(), "className": self.class_name}

    def copy(self) -> Query:
        other = Query(self.class_name)
        other.where = copy.deepcopy(self.where)
        other.limit, other.skip, other.order = self.limit, self.skip, self.order
        other.keys = list(self.keys) if self.keys is not None else None
        other.include, other.exclude_keys = list(self.include), list(self.exclude_keys)
        return other

    # --- constraints ----------------------------------------------------------------------------

    def _add(self, key: str, condition: str, value: Any) -> Query:
        if not isinstance(key, str) or not key:
            raise ValueError("a query key must be a non-empty string")
        current = self.where.get(key)
        if not _is_operators(current):
            current = self.where[key] = {}
        current[condition] = encode(value)
        return self

    def equal_to(self, key: str | dict[str, Any], value: Any = None) -> Query:
        """``key`` equals ``value`` (an object compares as its pointer); ``equal_to({k: v, ...})``."""
        if isinstance(key, dict):
            for name, item in key.items():
                self.equal_to(name, item)
            return self
        if not isinstance(key, str) or not key:
            raise ValueError("a query key must be a non-empty string")
        self.where[key] = encode(value)
        return self

    def not_equal_to(self, key: str, value: Any) -> Query:
        return self._add(key, "$ne", value)

    def less_than(self, key: str, value: Any) -> Query:
        return self._add(key, "$lt", value)

    def less_than_or_equal_to(self, key: str, value: Any) -> Query:
        return self._add(key, "$lte", value)

    def greater_than(self, key: str, value: Any) -> Query:
        return self._add(key, "$gt", value)

    def greater_than_or_equal_to(self, key: str, value: Any) -> Query:
        return self._add(key, "$gte", value)

    def contained_in(self, key: str, values: Iterable[Any]) -> Query:
        return self._add(key, "$in", list(values))

    def not_contained_in(self, key: str, values: Iterable[Any]) -> Query:
        return self._add(key, "$nin", list(values))

    def contained_by(self, key: str, values: Iterable[Any]) -> Query:
        """An array field whose every element is one of ``values``."""
        return self._add(key, "$containedBy", list(values))

    def contains_all(self, key: str, values: Iterable[Any]) -> Query:
        return self._add(key, "$all", list(values))

    def contains_all_starting_with(self, key: str, prefixes: Iterable[str] | str) -> Query:
        items = [prefixes] if isinstance(prefixes, str) else list(prefixes)
        return self.contains_all(key, [{"$regex": "^" + quote(_text(p))} for p in items])

    def exists(self, key: str) -> Query:
        return self._add(key, "$exists", True)

    def does_not_exist(self, key: str) -> Query:
        return self._add(key, "$exists", False)

    def matches(self, key: str, regex: str | re.Pattern[str], modifiers: str = "") -> Query:
        """A regular expression (a string or a compiled ``re`` pattern, whose i/m/s/x flags count);
        ``modifiers`` as Parse's ``$options`` (``"i"``, ``"m"``, ``"s"``, ``"x"``)."""
        if isinstance(regex, re.Pattern):
            pattern = regex.pattern
            modifiers = (modifiers or "") + "".join(flag for bit, flag in _FLAGS if regex.flags & bit)
        elif isinstance(regex, str):
            pattern = regex
        else:
            raise TypeError("matches() takes a string or a compiled regular expression")
        self._add(key, "$regex", pattern)
        if modifiers:
            self._add(key, "$options", modifiers)
        return self

    def contains(self, key: str, substring: str) -> Query:
        return self._add(key, "$regex", quote(_text(substring)))

    def starts_with(self, key: str, prefix: str, modifiers: str = "") -> Query:
        return self.matches(key, "^" + quote(_text(prefix)), modifiers)

    def ends_with(self, key: str, suffix: str, modifiers: str = "") -> Query:
        return self.matches(key, quote(_text(suffix)) + "$", modifiers)

    def full_text(self, key: str, value: str, language: str | None = None, case_sensitive: bool | None = None,
                  diacritic_sensitive: bool | None = None) -> Query:
        """Full-text search (``$text``); rank with ``sort_by_text_score()``."""
        if not key:
            raise ValueError("A key is required.")
        if not value:
            raise ValueError("A search term is required")
        search: dict[str, Any] = {"$term": _text(value)}
        if language is not None:
            search["$language"] = language
        if case_sensitive is not None:
            search["$caseSensitive"] = case_sensitive
        if diacritic_sensitive is not None:
            search["$diacriticSensitive"] = diacritic_sensitive
        return self._add(key, "$text", {"$search": search})

    def sort_by_text_score(self) -> Query:
        self.ascending("$score")
        return self.select("$score")

    # --- geo ------------------------------------------------------------------------------------

    def near(self, key: str, point: Any) -> Query:
        """Nearest first (``$nearSphere``)."""
        return self._add(key, "$nearSphere", geo_point(point))

    def within_radians(self, key: str, point: Any, max_distance: float, sorted: bool = True) -> Query:  # noqa: A002
        """Within ``max_distance`` radians of ``point``: nearest first, or unsorted with ``sorted=False``."""
        if sorted:
            self.near(key, point)
            return self._add(key, "$maxDistance", max_distance)
        center = geo_point(point)
        return self._add(key, "$geoWithin",
                         {"$centerSphere": [[center["longitude"], center["latitude"]], max_distance]})

    def within_miles(self, key: str, point: Any, max_distance: float, sorted: bool = True) -> Query:  # noqa: A002
        return self.within_radians(key, point, max_distance / EARTH_RADIUS_MILES, sorted)

    def within_kilometers(self, key: str, point: Any, max_distance: float, sorted: bool = True) -> Query:  # noqa: A002
        return self.within_radians(key, point, max_distance / EARTH_RADIUS_KM, sorted)

    def within_geo_box(self, key: str, southwest: Any, northeast: Any) -> Query:
        return self._add(key, "$within", {"$box": [geo_point(southwest), geo_point(northeast)]})

    def within_polygon(self, key: str, points: Any) -> Query:
        """Inside a polygon: a list of points (GeoPoints or ``(latitude, longitude)`` pairs), or a
        REST Polygon."""
        if isinstance(points, dict):
            return self._add(key, "$geoWithin", {"$polygon": points})
        return self._add(key, "$geoWithin", {"$polygon": [geo_point(p) for p in points]})

    def polygon_contains(self, key: str, point: Any) -> Query:
        """A Polygon field that contains ``point``."""
        return self._add(key, "$geoIntersects", {"$point": geo_point(point)})

    # --- subqueries and relations ---------------------------------------------------------------

    def matches_query(self, key: str, query: Query) -> Query:
        """A pointer (or relation) field pointing to an object that ``query`` finds."""
        return self._add(key, "$inQuery", query._subquery())

    def does_not_match_query(self, key: str, query: Query) -> Query:
        return self._add(key, "$notInQuery", query._subquery())

    def matches_key_in_query(self, key: str, query_key: str, query: Query) -> Query:
        """``key``'s value is the ``query_key`` of an object that ``query`` finds."""
        return self._add(key, "$select", {"key": query_key, "query": query._subquery()})

    def does_not_match_key_in_query(self, key: str, query_key: str, query: Query) -> Query:
        return self._add(key, "$dontSelect", {"key": query_key, "query": query._subquery()})

    def related_to(self, parent: Object, key: str) -> Query:
        """The objects in ``parent``'s relation ``key`` (the query's class is the relation's target)."""
        self.where["$relatedTo"] = {"object": parent.to_pointer(), "key": key}
        return self

    @staticmethod
    def _combine(op: str, queries: tuple[Any, ...]) -> Query:
        items: list[Query] = []
        for query in queries:
            items.extend(query if isinstance(query, (list, tuple)) else [query])
        if not items or not all(isinstance(q, Query) for q in items):
            raise TypeError(f"Query.{op.strip('$')}() takes queries")
        class_name = items[0].class_name
        if any(q.class_name != class_name for q in items):
            raise ValueError("All queries must be for the same class.")
        combined = Query(class_name)
        combined.where[op] = [copy.deepcopy(q.where) for q in items]
        return combined

    @classmethod
    def or_(cls, *queries: Query) -> Query:
        """A query matching what any of ``queries`` matches (all of one class)."""
        return cls._combine("$or", queries)

    @classmethod
    def and_(cls, *queries: Query) -> Query:
        return cls._combine("$and", queries)

    @classmethod
    def nor(cls, *queries: Query) -> Query:
        return cls._combine("$nor", queries)

    # --- order, projection, paging --------------------------------------------------------------

    def ascending(self, *keys: str) -> Query:
        self.order = None
        return self.add_ascending(*keys)

    def add_ascending(self, *keys: str) -> Query:
        names = _strings(keys)
        self.order = ",".join([*([self.order] if self.order else []), *names]) or None
        return self

    def descending(self, *keys: str) -> Query:
        self.order = None
        return self.add_descending(*keys)

    def add_descending(self, *keys: str) -> Query:
        names = ["-" + name for name in _strings(keys)]
        self.order = ",".join([*([self.order] if self.order else []), *names]) or None
        return self

    def select(self, *keys: str) -> Query:
        """Only these fields (and objectId, createdAt, updatedAt, ACL) come back (``keys``)."""
        self.keys = [*(self.keys or []), *_strings(keys)]
        return self

    def exclude(self, *keys: str) -> Query:
        self.exclude_keys = [*self.exclude_keys, *_strings(keys)]
        return self

    def include_key(self, *keys: str) -> Query:
        """The objects these pointer fields point to come back whole (``include``; dotted paths)."""
        self.include = [*self.include, *_strings(keys)]
        return self

    def include_all(self) -> Query:
        return self.include_key("*")

    def set_limit(self, n: int) -> Query:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("You can only set the limit to a numeric value")
        self.limit = n
        return self

    def set_skip(self, n: int) -> Query:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise TypeError("You can only skip by a positive number")
        self.skip = n
        return self

    # --- running --------------------------------------------------------------------------------

    async def find(self, *, use_master_key: bool = False, session_token: str | None = None,
                   context: dict[str, Any] | None = None) -> list[Object]:
        """The objects the query finds (at most ``limit``, the server's default 100 without one)."""
        return await data.find(self, use_master_key, session_token, context)

    async def first(self, *, use_master_key: bool = False, session_token: str | None = None,
                    context: dict[str, Any] | None = None) -> Object | None:
        query = self.copy()
        query.limit = 1
        found = await data.find(query, use_master_key, session_token, context)
        return found[0] if found else None

    async def get(self, object_id: str, *, use_master_key: bool = False, session_token: str | None = None,
                  context: dict[str, Any] | None = None) -> Object:
        """The object with this id that the query finds; ``cloud.Error`` 101 when there is none."""
        query = self.copy().equal_to("objectId", object_id)
        found = await query.first(use_master_key=use_master_key, session_token=session_token, context=context)
        if found is None:
            raise Error(Code.OBJECT_NOT_FOUND, "Object not found.")
        return found

    async def count(self, *, use_master_key: bool = False, session_token: str | None = None,
                    context: dict[str, Any] | None = None) -> int:
        return await data.count(self, use_master_key, session_token, context)

    async def distinct(self, key: str) -> list[Any]:
        """The distinct values of ``key`` among the objects the query matches (REST JSON values); as
        the SDK, always with the master key."""
        return await data.distinct(self, key)

    async def aggregate(self, pipeline: list[dict[str, Any]] | dict[str, Any], *, use_master_key: bool = True,
                        session_token: str | None = None) -> list[dict[str, Any]]:
        """An aggregation pipeline over the objects the query matches; the master key only (the
        default, as in the SDK)."""
        return await data.aggregate(self, pipeline, use_master_key, session_token)

    def iterate(self, *, batch_size: int = 100, use_master_key: bool = False, session_token: str | None = None,
                context: dict[str, Any] | None = None) -> AsyncIterator[Object]:
        """Every object the query matches, fetched ``batch_size`` at a time in objectId order:
        ``async for obj in query.iterate(use_master_key=True): ...``. The query may not have an
        order, skip or limit."""
        async def objects() -> AsyncIterator[Object]:
            async for batch in data.batches(self, batch_size, use_master_key, session_token, context):
                for obj in batch:
                    yield obj
        return objects()

    def __aiter__(self) -> AsyncIterator[Object]:
        """``async for obj in query``: every object, as the public (see ``iterate`` for options)."""
        return self.iterate()

    async def each_batch(self, callback: Callable[[list[Object]], Any], *, batch_size: int = 100,
                         use_master_key: bool = False, session_token: str | None = None,
                         context: dict[str, Any] | None = None) -> None:
        await data.each_batch(self, callback, batch_size, use_master_key, session_token, context)

    async def each(self, callback: Callable[[Object], Any], *, batch_size: int = 100, use_master_key: bool = False,
                   session_token: str | None = None, context: dict[str, Any] | None = None) -> None:
        """Calls ``callback`` (plain or async) with every object the query matches, in batches."""
        async for obj in self.iterate(batch_size=batch_size, use_master_key=use_master_key,
                                      session_token=session_token, context=context):
            result = callback(obj)
            if inspect.isawaitable(result):
                await result

    async def find_all(self, *, batch_size: int = 100, use_master_key: bool = False,
                       session_token: str | None = None, context: dict[str, Any] | None = None) -> list[Object]:
        """Every object the query matches (fetched in batches; no order, skip or limit)."""
        return [obj async for obj in self.iterate(batch_size=batch_size, use_master_key=use_master_key,
                                                  session_token=session_token, context=context)]

    def __repr__(self) -> str:
        return f"<Query {self.class_name} where={self.where!r}>"


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("The value being searched for must be a string.")
    return value
