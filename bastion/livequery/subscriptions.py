"""This process's subscriptions and the requests that change them.

``Subscriptions`` files each subscription under its class's ``ClassIndex`` (``index.py``) and
handles ``subscribe``, ``update`` and ``unsubscribe``: cloud ``before_subscribe``, then the checks
of a find (readable class, CLP, no ``where`` or ``watch`` on a protected field, a query LiveQuery
can match in memory). ``Interest`` tells the Writer which classes have subscribers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.cloud._runtime.runtime import CloudRuntime
from bastion.core.auth import Auth
from bastion.core.events import Hook, InterestChanged
from bastion.core.js import js_string
from bastion.core.names import check_class_name
from bastion.core.permissions import Permissions
from bastion.core.query import ir
from bastion.core.query.parse import parse_where
from bastion.core.schema import ClassSchema
from bastion.core.system_classes import USER, LiveQueryRule, live_query_rule
from bastion.domain.read import Reader
from bastion.domain.schema_registry import SchemaRegistry
from bastion.errors import Code, ParseError
from bastion.livequery.access import PrincipalCache, acting_auth
from bastion.livequery.connection import Connection, Subscription
from bastion.livequery.index import ClassIndex, check_supported
from bastion.livequery.protocol import NOT_CONNECTED, error_message, message


def parse_class_list(value: str | None) -> frozenset[str] | None:
    """``--live-query-classes A,B``: None (every class) when unset or empty."""
    if not value:
        return None
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    return names or None


class Interest:
    """Whether a write's class may have a LiveQuery subscriber in some process: the Writer asks
    before it reads an object's original state, so writes nobody watches cost nothing.

    ``local`` counts this process's subscribed classes; a cross-process adapter keeps ``remote``
    (classes other processes subscribe to) or sets ``everything``; ``changed`` tells when a class
    gains its first or loses its last local subscription."""

    def __init__(self, allowed: frozenset[str] | None = None) -> None:
        self.allowed = allowed
        self.local: dict[str, int] = {}
        self.remote: set[str] = set()
        self.everything = False
        # A handler's failure is logged: it must not fail a subscribe.
        self.changed: Hook[InterestChanged] = Hook("LiveQuery interest changed", contain=True)

    def __call__(self, class_name: str) -> bool:
        if self.allowed is not None and class_name not in self.allowed:
            return False
        return self.everything or class_name in self.local or class_name in self.remote

    def enabled(self, class_name: str) -> bool:
        """Whether LiveQuery serves the class at all (``--live-query-classes``)."""
        return self.allowed is None or class_name in self.allowed

    def add(self, class_name: str) -> None:
        count = self.local.get(class_name, 0)
        self.local[class_name] = count + 1
        if count == 0:
            self._tell(class_name, True)

    def remove(self, class_name: str) -> None:
        count = self.local.get(class_name, 0) - 1
        if count > 0:
            self.local[class_name] = count
            return
        if self.local.pop(class_name, None) is not None:
            self._tell(class_name, False)

    def _tell(self, class_name: str, present: bool) -> None:
        if self.changed:
            self.changed.emit(InterestChanged(class_name, present))


class Subscriptions:
    """Every subscription of this process, by class and query group."""

    def __init__(self, interest: Interest, principals: PrincipalCache, schemas: SchemaRegistry, reader: Reader,
                 permissions: Permissions, cloud: CloudRuntime) -> None:
        self.interest = interest
        self.principals = principals
        self.schemas = schemas
        self.reader = reader  # its query limits
        self.permissions = permissions
        self.cloud = cloud
        self.classes: dict[str, ClassIndex] = {}

    def count(self) -> int:
        """The subscription count cloud triggers are told: one per distinct query (query group)."""
        return sum(len(index.groups) for index in self.classes.values())

    def parser(self, class_name: str) -> Callable[[ClassSchema | None, dict[str, Any]], ir.Node]:
        schemas = self.schemas
        limits = self.reader.options.query_limits

        def parse(schema: ClassSchema | None, where: dict[str, Any]) -> ir.Node:
            return parse_where(where, schema, class_name, schemas.get, limits)
        return parse

    async def subscribe(self, conn: Connection, request: dict[str, Any]) -> None:
        if not conn.connected:
            conn.push(error_message(NOT_CONNECTED, "Can not find this client, make sure you connect to server "
                                                   "before subscribing"))
            return
        request_id = request["requestId"]
        query = request["query"]
        class_name: str = query["className"]
        where: dict[str, Any] = query["where"]
        keys = query.get("keys") or query.get("fields")
        watch = query.get("watch")
        token = request.get("sessionToken") or None
        principal = await self.principals.acquire(token) if token else None
        try:
            auth = acting_auth(conn.master, principal or conn.principal, conn.installation_id)
            cloud = self.cloud
            if cloud.has("beforeSubscribe", class_name):
                where, keys, watch = await cloud.before_subscribe(class_name, where, keys, watch, auth, conn.info,
                                                                  request_id=request_id)
            schema = self._check_query(class_name, where, watch, auth)
            if live_query_rule(class_name) is LiveQueryRule.OWN_SESSIONS and not auth.is_master:
                # As Parse Server: a client watches its own sessions only.
                where = {**where, "user": {"__type": "Pointer", "className": USER, "objectId": auth.user_id}}
            parse = self.parser(class_name)
            check_supported(parse(schema, where))
        except ParseError as exc:
            self.principals.release(principal)
            conn.push(error_message(exc.code, exc.message, False, request_id))
            return
        previous = conn.subs.pop(request_id, None)
        if previous is not None:
            self.remove(previous)
        index = self.classes.get(class_name)
        if index is None:
            index = self.classes[class_name] = ClassIndex(class_name)
        group = index.group(where, parse, schema)
        sub = Subscription(conn, request_id, group, principal,
                           tuple(keys) if keys else None, tuple(watch) if watch else None)
        group.subs[(conn.num, request_id)] = sub
        conn.subs[request_id] = sub
        self.interest.add(class_name)
        conn.push(message("subscribed", conn.client_id, conn.installation_id, request_id))

    def _check_query(self, class_name: str, where: Any, watch: Any, auth: Auth) -> ClassSchema | None:
        """The checks of a subscription's query, as of a find: readable class, CLP, no query on or
        watch of a protected field. Returns the class's schema (None when it does not exist yet)."""
        check_class_name(class_name)
        rule = live_query_rule(class_name)  # the table of system classes (core/system_classes.py)
        if rule is LiveQueryRule.NEVER:
            raise ParseError(Code.OPERATION_FORBIDDEN, f"Class {class_name} is not readable.")
        if rule is LiveQueryRule.MASTER and not auth.is_master:
            raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")
        if not self.interest.enabled(class_name):
            raise ParseError(Code.OPERATION_FORBIDDEN, f"LiveQuery is not enabled for class {class_name}.")
        if not isinstance(where, dict):
            raise ParseError(Code.INVALID_QUERY, "Invalid where, must be an object.")
        if rule is LiveQueryRule.OWN_SESSIONS and not auth.is_master and not auth.user_id:
            raise ParseError(Code.INVALID_SESSION_TOKEN, "Invalid session token")
        schema = self.schemas.get(class_name)
        if auth.is_master:
            return schema
        permissions = self.permissions
        op = "get" if len(where) == 1 and isinstance(where.get("objectId"), str) else "find"
        permissions.require(schema, auth, op)
        permissions.deny_auth_data_query(class_name, auth, where)
        protection = permissions.protection(schema, auth, where)
        permissions.deny_query(protection, where, None)
        if protection is not None and watch:
            for name in watch:
                if name in protection.fields or name.split(".")[0] in protection.fields:
                    raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")
        return schema

    def unsubscribe(self, conn: Connection, request: dict[str, Any], notify: bool = True) -> None:
        if not conn.connected:
            conn.push(error_message(NOT_CONNECTED, "Can not find this client, make sure you connect to server "
                                                   "before unsubscribing"))
            return
        request_id = request["requestId"]
        sub = conn.subs.pop(request_id, None)
        if sub is None:
            conn.push(error_message(
                NOT_CONNECTED, f"Cannot find subscription with clientId {conn.client_id} subscriptionId "
                               f"{js_string(request_id)}. Make sure you subscribe to live query server before "
                               "unsubscribing."))
            return
        self.remove(sub)
        if notify:
            conn.push(message("unsubscribed", conn.client_id, conn.installation_id, request_id))

    def remove_all(self, conn: Connection) -> None:
        """Every subscription of a connection (it closed, or connected again as a fresh client)."""
        for sub in list(conn.subs.values()):
            self.remove(sub)
        conn.subs.clear()

    def remove(self, sub: Subscription) -> None:
        group = sub.group
        if group.subs.pop((sub.conn.num, sub.request_id), None) is None:
            return
        index = self.classes.get(group.class_name)
        if index is not None:
            index.drop_if_empty(group)
            if not len(index):
                del self.classes[group.class_name]
        self.interest.remove(group.class_name)
        self.principals.release(sub.principal)
        sub.principal = None
