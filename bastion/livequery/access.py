"""Who a subscriber is and what each event shows them.

A viewer is who a subscription acts as: the master key, or a session's user and roles. Sessions
are ``Principal``s, one per token however many connections and subscriptions use it, kept by the
``PrincipalCache``, which resolves them again when roles or sessions change. ``Access`` makes Parse
Server's per-event decision for one viewer (CLP with pointer permissions, the ACL of each state,
the event's type) and filters what the viewer may see of an object (the ``_User`` sanitizer,
protected fields).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from bastion.core.auth import Auth
from bastion.core.permissions import Permissions
from bastion.core.query import ir
from bastion.core.query.matcher import json_equal
from bastion.core.query.parse import parse_where
from bastion.core.schema import ClassSchema
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.users import Users
from bastion.errors import ParseError
from bastion.livequery.index import QueryGroup
from bastion.livequery.protocol import event_head

log = logging.getLogger("bastion.livequery")

ACCESS_REFRESH_INTERVAL = 60.0  # sessions and roles of live subscribers are resolved again this often
DEFAULT_FIELDS = ("className", "objectId", "updatedAt", "createdAt", "ACL")  # always sent with `keys`

Sanitizer = Callable[[dict[str, Any], Auth], dict[str, Any]]  # Reader.sanitizers' values


class Principal:
    """Who a session token acts as: its user and roles (public when the token is no live session).
    Shared by every connection and subscription using the token."""

    __slots__ = ("token", "auth", "entries", "refs", "ready")

    def __init__(self, token: str) -> None:
        self.token = token
        self.auth = Auth()
        self.entries: frozenset[str] = frozenset({"*"})
        self.refs = 0
        self.ready: asyncio.Future[None] | None = None

    async def resolve(self, users: Users) -> None:
        try:
            auth = await users.authenticate(Auth(), self.token)
        except ParseError:
            auth = Auth()
        except Exception:  # noqa: BLE001 - the database failing: keep what was known
            log.exception("LiveQuery could not resolve a session")
            return
        self.auth = auth
        self.entries = frozenset(auth.acting_as() or ())


# Who a subscription acts as: the master key, its session, and another session whose ACL access
# counts too (see connection.Subscription.viewer).
Viewer = tuple[bool, Principal | None, Principal | None]


class PrincipalCache:
    """The sessions in use by this process's connections and subscriptions, by token; each is
    resolved once when first used and again when roles or sessions change."""

    def __init__(self, users: Users) -> None:
        self.users = users
        self.by_token: dict[str, Principal] = {}
        # Resolving every principal again: events wait for it (see ``changed``).
        self.refreshing: asyncio.Task[None] | None = None
        self._refresh_again = False

    async def acquire(self, token: str) -> Principal:
        principal = self.by_token.get(token)
        if principal is None:
            principal = self.by_token[token] = Principal(token)
            principal.ready = asyncio.ensure_future(principal.resolve(self.users))
        principal.refs += 1
        try:
            assert principal.ready is not None
            await asyncio.shield(principal.ready)
        except BaseException:
            self.release(principal)
            raise
        return principal

    def release(self, principal: Principal | None) -> None:
        if principal is None:
            return
        principal.refs -= 1
        if principal.refs <= 0 and self.by_token.get(principal.token) is principal:
            del self.by_token[principal.token]

    def changed(self) -> None:
        """Roles or sessions changed (here, or in another process): resolve every subscriber's
        access again; events wait for it, so none goes out with access that was just revoked."""
        if self.refreshing is not None:
            self._refresh_again = True
            return
        self.refreshing = asyncio.get_running_loop().create_task(self._refresh_all())

    async def _refresh_all(self) -> None:
        try:
            while True:
                self._refresh_again = False
                await self.resolve_all()
                if not self._refresh_again:
                    break
        finally:
            self.refreshing = None

    async def resolve_all(self) -> None:
        principals = list(self.by_token.values())
        for start in range(0, len(principals), 50):
            await asyncio.gather(*(p.resolve(self.users) for p in principals[start:start + 50]))

    async def refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(ACCESS_REFRESH_INTERVAL)
            try:
                await self.resolve_all()  # sessions that expired, roles changed by other processes
            except Exception:  # noqa: BLE001
                log.exception("LiveQuery access refresh failed")


def acting_auth(master: bool, principal: Principal | None, installation_id: str | None = None) -> Auth:
    """The Auth of a viewer (a fresh one: callers may change it)."""
    if master:
        return Auth(is_master=True, installation_id=installation_id)
    if principal is None:
        return Auth(installation_id=installation_id)
    auth = principal.auth
    return Auth(user=auth.user, roles=list(auth.roles), installation_id=installation_id,
                session_token=auth.session_token)


class Decision:
    """What one viewer gets of one event for one query: the event type, the object and original
    (filtered for the viewer), encoded once per ``keys`` as the message's end (``event_tail``)."""

    __slots__ = ("event", "obj", "original", "auth", "filtered", "head", "encoded")

    def __init__(self, event: str, obj: dict[str, Any], original: dict[str, Any] | None, auth: Auth) -> None:
        self.event = event
        self.obj = obj
        self.original = original
        self.auth = auth
        self.filtered: tuple[dict[str, Any], dict[str, Any] | None] | None = None
        self.head = event_head(event)
        self.encoded: dict[tuple[str, ...] | None, bytes] = {}


def project(obj: dict[str, Any], keys: tuple[str, ...] | None) -> dict[str, Any]:
    """Parse Server's Client._toJSONWithFields: the default fields and the listed keys."""
    if keys is None:
        return obj
    out = {name: obj[name] for name in DEFAULT_FIELDS if name in obj}
    for name in keys:
        if name in obj:
            out[name] = obj[name]
    return out


def watch_changed(watch: tuple[str, ...], current: dict[str, Any], original: dict[str, Any] | None) -> bool:
    before = original or {}
    return any(not json_equal(current.get(name), before.get(name)) for name in watch)


class Access:
    """The access decisions of events: whether and as what a viewer gets one, and what it may see."""

    def __init__(self, schemas: SchemaRegistry, permissions: Permissions, sanitizers: dict[str, Sanitizer]) -> None:
        self.schemas = schemas
        self.permissions = permissions
        self.sanitizers = sanitizers  # the Reader's, by class (filled as services register theirs)

    def decide(self, op: str, schema: ClassSchema | None, group: QueryGroup, viewer: Viewer,
               current: dict[str, Any] | None, current_json: dict[str, Any], current_match: bool,
               original: dict[str, Any] | None, original_json: dict[str, Any] | None,
               original_match: bool) -> Decision | None:
        """Parse Server's _onAfterSave/_onAfterDelete decision for one viewer: CLP (with pointer
        permissions) on the current object, ACL of the original and of the current object, and from
        them the event type and what the viewer may see of each state."""
        master, effective, other = viewer
        auth = acting_auth(master, effective)
        if not master and not self._clp_allows(schema, auth, group.op, current):
            return None
        entries: frozenset[str] = frozenset({"*"})
        if effective is not None:
            entries = effective.entries
        if other is not None:
            entries = entries | other.entries

        def readable(record: dict[str, Any] | None) -> bool:
            if record is None:
                return False
            if master:
                return True
            perms = record.get("_rperm")
            return perms is None or not entries.isdisjoint(perms)

        if op == "delete":
            return Decision("delete", current_json, None, auth) if current_match and readable(current) else None
        was = original_match and readable(original)
        now = current_match and readable(current)
        if was and now:
            return Decision("update", current_json, original_json, auth)
        if was:
            # A leave caused by lost access shows the last state the viewer could read.
            shown = current_json if not current_match and readable(current) else original_json
            assert shown is not None
            return Decision("leave", shown, original_json, auth)
        if now:
            if original_json is None:
                return Decision("create", current_json, None, auth)
            seen = original_json if not original_match and readable(original) else None
            return Decision("enter", current_json, seen, auth)
        return None

    def _clp_allows(self, schema: ClassSchema | None, auth: Auth, op: str, record: dict[str, Any] | None) -> bool:
        if schema is None:
            return True
        permissions = self.permissions
        try:
            permissions.require(schema, auth, op)
            where = permissions.pointer_where(schema, auth, op)
        except ParseError:
            return False
        if where is None:
            return False
        if not where:
            return True
        if record is None:
            return False
        try:
            node = parse_where(where, schema, schema.class_name, self.schemas.get)
        except ParseError:
            return False
        return _matches(node, record)

    def filter(self, class_name: str, schema: ClassSchema | None, auth: Auth, where: dict[str, Any],
               obj: dict[str, Any] | None) -> dict[str, Any] | None:
        """What the viewer may see of an object: _User's secrets and protected fields removed."""
        if obj is None:
            return None
        obj = dict(obj)
        sanitize = self.sanitizers.get(class_name)
        if sanitize is not None:
            obj = sanitize(obj, auth)
        if not auth.is_master:
            protection = self.permissions.protection(schema, auth, where)
            if protection is not None:
                obj = protection.apply(obj)
        return obj


def _matches(node: ir.Node, record: dict[str, Any]) -> bool:
    from bastion.core.query.matcher import matches

    try:
        return matches(node, record)
    except Exception:  # noqa: BLE001
        return False
