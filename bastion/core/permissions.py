"""Class-level permissions (CLP) and protected fields, as Parse Server 9 enforces them.

One place answers, for every read and write path (REST, batch, and later LiveQuery and cloud code):
- may ``auth`` do ``op`` on a class (``require``: Parse's ``validatePermission``);
- which extra constraint the class's pointer permissions put on the objects it may touch
  (``pointer_where``: ``addPointerPermissions``, as a ``where`` JSON the caller parses);
- which fields are hidden from ``auth`` (``protection``: ``addProtectedFields``, then per object
  ``filterSensitiveData``'s ``userField:`` rules and the ``_User`` owner exemption);
- whether a query or sort uses a hidden field (``deny_query``: the "oracle" refusal of RestQuery).

The master key (and the read-only master key, for reads) bypasses all of it; callers skip these
calls for it. Refusals are answered as Parse Server 9 sanitizes them ("Permission denied").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bastion.core.auth import Auth
from bastion.core.schema import CLP_OPERATIONS, ClassSchema
from bastion.core.system_classes import CLIENT_QUERYABLE, USER
from bastion.errors import Code, ParseError

DENIED = "Permission denied"
READ_OPS = frozenset({"get", "find", "count"})
# Parse Server's default ``protectedFields`` option: other users never see a user's email.
DEFAULT_PROTECTED_FIELDS: dict[str, dict[str, list[str]]] = {USER: {"*": ["email"]}}
# ``where`` keys that hold subqueries, and where their class and constraints sit.
_IN_QUERY = ("$inQuery", "$notInQuery")
_SELECT = ("$select", "$dontSelect")
NOTHING: dict[str, Any] = {"objectId": {"$in": []}}  # a where no object matches


@dataclass(frozen=True, slots=True)
class Protection:
    """The fields hidden from one caller in one class (``fields``, from ``*``, ``authenticated``,
    ``role:`` and user-id entries), and the ``userField:<field>`` rules that replace them for
    objects whose ``field`` names the caller."""

    fields: frozenset[str]
    user_fields: tuple[tuple[str, frozenset[str]], ...]
    user_id: str | None
    owner_exempt: bool  # _User: a user sees all of their own object

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Remove from one REST object what the caller may not see (in place)."""
        hidden: frozenset[str] | None = self.fields
        if self.user_fields:
            # Intersect every set that applies to this object, as filterSensitiveData does.
            matched = [fields for name, fields in self.user_fields if _names_user(obj.get(name), self.user_id)]
            if matched:
                hidden = self.fields
                for fields in matched:
                    hidden = hidden & fields
        if self.owner_exempt and self.user_id and obj.get("objectId") == self.user_id:
            return obj
        for name in hidden or ():
            obj.pop(name, None)
        return obj

    def extra_columns(self) -> tuple[str, ...]:
        """Fields the filter reads, to be fetched even when ``keys`` leaves them out."""
        return tuple(name for name, _ in self.user_fields)


@dataclass(frozen=True, slots=True)
class _Policy:
    """One class's effective permissions, computed once per stored CLP."""

    clp: dict[str, Any]
    protected: dict[str, list[str]]
    any_protected: bool


class Permissions:
    def __init__(self, protected_fields: Mapping[str, Mapping[str, list[str]]] | None = None,
                 owner_exempt: bool = True) -> None:
        """``protected_fields``: Parse Server's ``protectedFields`` option, merged with its default
        (``_User``'s email) as Parse Server merges them; ``owner_exempt``: its
        ``protectedFieldsOwnerExempt``."""
        self.owner_exempt = owner_exempt
        merged: dict[str, dict[str, list[str]]] = {c: {k: list(v) for k, v in e.items()}
                                                  for c, e in (protected_fields or {}).items()}
        for class_name, entries in DEFAULT_PROTECTED_FIELDS.items():
            current = merged.get(class_name)
            if current is None:
                merged[class_name] = {k: list(v) for k, v in entries.items()}
                continue
            for entity, names in entries.items():
                if entity in current and not owner_exempt:
                    continue
                current[entity] = _union(current.get(entity, []), names)
        self.protected_option = merged
        # class name -> (the stored CLP it was computed from, policy); the identity check notices
        # any schema change, which always installs a new CLP object.
        self._cache: dict[str, tuple[dict[str, Any], _Policy]] = {}

    # --- the class's effective permissions ------------------------------------------------------

    def _policy(self, schema: ClassSchema) -> _Policy:
        stored = schema.clp
        cached = self._cache.get(schema.class_name)
        if cached is not None and cached[0] is stored:
            return cached[1]
        # As Parse Server on PostgreSQL reads a stored CLP: an operation left out grants nothing.
        clp: dict[str, Any] = {op: {} for op in CLP_OPERATIONS}
        clp["protectedFields"] = {}
        clp.update(stored or {})
        protected = {k: list(v) for k, v in (clp.get("protectedFields") or {}).items() if isinstance(v, list)}
        for entity, names in self.protected_option.get(schema.class_name, {}).items():
            protected[entity] = _union(protected.get(entity, []), names)
        policy = _Policy(clp, protected, any(protected.values()))
        self._cache[schema.class_name] = (stored, policy)
        return policy

    @staticmethod
    def _test(perms: Any, group: list[str]) -> bool:
        """Parse's testPermissions: the operation is open to ``*`` or to an entry the caller acts as."""
        if not isinstance(perms, dict):
            return True
        if perms.get("*"):
            return True
        return any(perms.get(entry) is True for entry in group)

    # --- may auth do op -------------------------------------------------------------------------

    def allows(self, schema: ClassSchema | None, auth: Auth, op: str) -> bool:
        """Whether the class's CLP opens ``op`` to the caller outright (no pointer permission needed)."""
        if auth.is_master or schema is None:
            return True
        return self._test(self._policy(schema).clp.get(op), _group(auth))

    def require(self, schema: ClassSchema | None, auth: Auth, op: str, action: str | None = None) -> None:
        """Parse's validatePermission: raise unless ``auth`` may do ``op`` on the class, possibly
        through pointer permissions that ``pointer_where`` then turns into a constraint.
        ``action`` is "update" when a field is added by an update (pointerFields of addField
        only allow that)."""
        if auth.is_master or schema is None:
            return
        clp = self._policy(schema).clp
        group = _group(auth)
        perms = clp.get(op)
        if self._test(perms, group):
            return
        assert isinstance(perms, dict)
        if perms.get("requiresAuthentication"):
            if auth.user_id is None:
                # Parse Server answers 101 here ("Permission denied, user needs to be authenticated.").
                raise ParseError(Code.OBJECT_NOT_FOUND, DENIED)
            return
        user_fields_key = "readUserFields" if op in READ_OPS else "writeUserFields"
        if user_fields_key == "writeUserFields" and op == "create":
            raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)
        user_fields = clp.get(user_fields_key)
        if isinstance(user_fields, list) and user_fields:
            return
        pointer_fields = perms.get("pointerFields")
        if isinstance(pointer_fields, list) and pointer_fields and (op != "addField" or action == "update"):
            return
        raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)  # "Permission denied for action op on class X."

    def pointer_where(self, schema: ClassSchema | None, auth: Auth, op: str) -> dict[str, Any] | None:
        """Parse's addPointerPermissions as a ``where`` the objects must also match: ``{}`` when no
        pointer permission applies, None when one applies and the caller is no user (nothing
        matches; Parse Server then answers a get with 101 and a find with no results)."""
        if auth.is_master or schema is None:
            return {}
        clp = self._policy(schema).clp
        perms = clp.get(op)
        if self._test(perms, _group(auth)):
            return {}
        names: list[str] = []
        if isinstance(perms, dict) and isinstance(perms.get("pointerFields"), list):
            names.extend(perms["pointerFields"])
        group_fields = clp.get("readUserFields" if op in READ_OPS else "writeUserFields")
        for name in group_fields if isinstance(group_fields, list) else ():
            if name not in names:
                names.append(name)
        if not names:
            return {}
        if auth.user_id is None:
            return None
        pointer = {"__type": "Pointer", "className": USER, "objectId": auth.user_id}
        clauses: list[dict[str, Any]] = []
        for name in names:
            ft = schema.fields.get(name)
            if ft is not None and ft.type in ("Pointer", "Object"):
                clauses.append({name: pointer})
            elif ft is not None and ft.type == "Array":
                clauses.append({name: {"$all": [pointer]}})
            else:
                # Parse Server throws here ("An unexpected condition occurred when resolving pointer
                # permissions"); a field deleted after the CLP named it lands here.
                raise ParseError(Code.INTERNAL_SERVER_ERROR, "An internal server error occurred")
        return clauses[0] if len(clauses) == 1 else {"$or": clauses}

    # --- protected fields -----------------------------------------------------------------------

    def protection(self, schema: ClassSchema | None, auth: Auth, where: Any = None) -> Protection | None:
        """What ``auth`` may not see of the class's objects; None when nothing is hidden (the cheap
        common case: a class whose protectedFields are all empty)."""
        if auth.is_master or schema is None:
            return None
        policy = self._policy(schema)
        if not policy.any_protected:
            return None
        is_user_class = schema.class_name == USER
        user_id = auth.user_id
        if (is_user_class and self.owner_exempt and user_id and isinstance(where, dict)
                and where.get("objectId") == user_id):
            return None  # a user's query for their own object (addProtectedFields' exemption)
        roles = {"role:" + name for name in auth.roles}
        sets: list[list[str]] = []
        user_fields: list[tuple[str, frozenset[str]]] = []
        for entity, names in policy.protected.items():
            if entity.startswith("userField:"):
                user_fields.append((entity[len("userField:"):], frozenset(names)))
            elif entity == "*" or (user_id and (entity == "authenticated" or entity in roles)):
                sets.append(names)
        if user_id and user_id in policy.protected:
            sets.append(policy.protected[user_id])
        hidden = {name for names in sets for name in names}
        for names in sets:
            hidden &= set(names)
        if not hidden:
            return None  # userField: rules only ever narrow this set, as in Parse Server
        return Protection(frozenset(hidden), tuple(user_fields), user_id,
                          is_user_class and self.owner_exempt)

    def deny_query(self, protection: Protection | None, where: Any, order: str | None) -> None:
        """Refuse a query or sort on a field hidden from the caller (RestQuery's denyProtectedFields,
        against Parse Server's protected-field oracle advisory); $or/$and/$nor included."""
        if protection is None or not protection.fields:
            return
        hidden = protection.fields
        _deny_where(where, hidden)
        for key in (order or "").split(","):
            key = key.strip().lstrip("-")
            if key and (key in hidden or key.split(".")[0] in hidden):
                raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)  # "not allowed to sort by ..."

    @staticmethod
    def deny_auth_data_query(class_name: str | None, auth: Auth, where: Any, order: str | None = None,
                             select_key: Any = None) -> None:
        """A client may not query, sort or $select on ``_User``'s ``authData`` beyond a provider's
        ``id``: the entries hold secrets (MFA's TOTP secret and recovery codes, access tokens) that
        answers never show, and a $regex or comparison on them would test guesses one by one."""
        if auth.is_master or class_name != USER:
            return
        if _auth_data_where(where) or (isinstance(select_key, str) and _secret_auth_data_key(select_key)):
            raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)
        for key in (order or "").split(","):
            if _secret_auth_data_key(key.strip().lstrip("-")):
                raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)

    # --- subqueries -----------------------------------------------------------------------------

    def secure_subqueries(self, where: Any, auth: Auth, lookup: Any) -> tuple[Any, list[OwnerCheck]]:
        """A ``where`` whose subqueries ($inQuery, $notInQuery, $select, $dontSelect) each obey the
        CLP of their class, as Parse Server runs each as a query of its own: ``find`` must be
        allowed, their constraints may not use fields hidden from the caller, and pointer
        permissions join their ``where``; and whose ``$relatedTo`` owners the caller may get.
        Returns ``where`` itself when nothing changes, and the owners whose pointer permissions
        the caller (who must read the database for it) still has to check."""
        if auth.is_master or not isinstance(where, (dict, list)):
            return where, []
        walk = _Walk(auth, lookup, [])
        return self._secure(where, walk, 0), walk.owner_checks

    def _secure(self, value: Any, walk: _Walk, depth: int) -> Any:
        if depth > 64:
            return value  # the query parser refuses what is this deep
        if isinstance(value, list):
            items = [self._secure(v, walk, depth + 1) for v in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] | None = None
        for key, item in value.items():
            new = item
            if key in _IN_QUERY and isinstance(item, dict):
                new = self._secure_sub(item, walk, depth, None)
            elif key == "$relatedTo" and isinstance(item, dict):
                new = self._secure_related_to(item, walk)
            elif key in _SELECT and isinstance(item, dict) and isinstance(item.get("query"), dict):
                query = self._secure_sub(item["query"], walk, depth, item.get("key"))
                new = item if query is item["query"] else {**item, "query": query}
            elif isinstance(item, (dict, list)):
                new = self._secure(item, walk, depth + 1)
            if new is not item:
                out = dict(value) if out is None else out
                out[key] = new
        return value if out is None else out

    def _secure_sub(self, sub: dict[str, Any], walk: _Walk, depth: int, select_key: Any) -> dict[str, Any]:
        class_name = sub.get("className")
        if isinstance(class_name, str) and class_name.startswith("_") and class_name not in CLIENT_QUERYABLE:
            # As Parse Server's enforceRoleSecurity: a subquery is a find of its own class, and
            # clients may not find installations or the master-only classes.
            raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)
        inner = sub.get("where")
        secured = self._secure(inner, walk, depth + 1) if isinstance(inner, (dict, list)) else inner
        schema = walk.lookup(class_name) if isinstance(class_name, str) else None
        if schema is None:
            return sub if secured is inner else {**sub, "where": secured}
        self.require(schema, walk.auth, "find")
        self.deny_auth_data_query(schema.class_name, walk.auth, inner, None, select_key)
        protection = self.protection(schema, walk.auth, inner)
        self.deny_query(protection, inner, None)
        if (protection is not None and isinstance(select_key, str)
                and (select_key in protection.fields or select_key.split(".")[0] in protection.fields)):
            # Parse Server answers this with a 500 (the hidden values it selects are undefined).
            raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)
        extra = self.pointer_where(schema, walk.auth, "find")
        if extra is None:
            secured = NOTHING
        elif extra:
            secured = {"$and": [secured, extra]} if isinstance(secured, dict) and secured else extra
        return sub if secured is inner else {**sub, "where": secured}

    def _secure_related_to(self, value: dict[str, Any], walk: _Walk) -> dict[str, Any]:
        """``$relatedTo`` as Parse Server's authorizeRelatedToQuery allows it: the relation may not be
        a field hidden from the caller (119), and an owning object the caller may not get has no
        related objects."""
        owner, key = value.get("object"), value.get("key")
        class_name = owner.get("className") if isinstance(owner, dict) else None
        owner_id = owner.get("objectId") if isinstance(owner, dict) else None
        schema = walk.lookup(class_name) if isinstance(class_name, str) else None
        if schema is None or not isinstance(key, str) or not isinstance(owner_id, str):
            return value
        protection = self.protection(schema, walk.auth, {})
        if protection is not None and (key in protection.fields or key.split(".")[0] in protection.fields):
            raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)
        try:
            self.require(schema, walk.auth, "get")
        except ParseError as exc:
            if exc.code not in (Code.OPERATION_FORBIDDEN, Code.OBJECT_NOT_FOUND):
                raise
            return {**value, "key": None}  # no relation key: no related objects
        extra = self.pointer_where(schema, walk.auth, "get")
        if extra is None:
            return {**value, "key": None}
        if not extra:
            return value
        checked = dict(value)  # our own copy, which a failed check may still change
        walk.owner_checks.append(OwnerCheck(schema, {"objectId": owner_id, **extra}, checked))
        return checked


@dataclass(slots=True)
class OwnerCheck:
    """A ``$relatedTo`` owner the caller may get only if it matches ``where`` (pointer permissions
    of the owning class): the reader looks, and calls ``deny`` when it does not match."""

    schema: ClassSchema
    where: dict[str, Any]
    related_to: dict[str, Any]

    def deny(self) -> None:
        self.related_to["key"] = None  # no relation key: no related objects


@dataclass(slots=True)
class _Walk:
    auth: Auth
    lookup: Any
    owner_checks: list[OwnerCheck]


def check_protected_fields_option(value: Any) -> dict[str, dict[str, list[str]]]:
    """The ``protectedFields`` option as given at start: ValueError unless it has Parse's shape."""
    if not isinstance(value, dict):
        raise ValueError('must be a JSON object: {"<class>": {"<entity>": ["field", ...]}}')
    for class_name, entries in value.items():
        if not isinstance(entries, dict):
            raise ValueError(f"protectedFields of {class_name} must be an object")
        for entity, names in entries.items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"protectedFields of {class_name} for {entity} must be a list of field names")
    return value


def _group(auth: Auth) -> list[str]:
    return auth.acting_as() or []


def _union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    out = list(first)
    for name in second:
        if name not in out:
            out.append(name)
    return out


def _names_user(value: Any, user_id: str | None) -> bool:
    if not user_id:
        return False
    if isinstance(value, list):
        return any(isinstance(v, dict) and v.get("objectId") == user_id for v in value)
    return isinstance(value, dict) and value.get("objectId") == user_id


def _secret_auth_data_key(key: str) -> bool:
    """``authData`` or a key inside it, but not ``authData.<provider>.id``."""
    parts = key.split(".")
    return parts[0] == "authData" and not (len(parts) == 3 and parts[2] == "id")


def _auth_data_where(where: Any) -> bool:
    if not isinstance(where, dict):
        return False
    if any(isinstance(key, str) and _secret_auth_data_key(key) for key in where):
        return True
    return any(isinstance(branches, list) and any(_auth_data_where(b) for b in branches)
               for op in ("$or", "$and", "$nor") if (branches := where.get(op)) is not None)


def _deny_where(where: Any, hidden: frozenset[str]) -> None:
    if not isinstance(where, dict):
        return
    for key in where:
        if isinstance(key, str) and (key in hidden or key.split(".")[0] in hidden):
            raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)  # "not allowed to query ... on class"
    for op in ("$or", "$and", "$nor"):
        branches = where.get(op)
        if isinstance(branches, list):
            for branch in branches:
                _deny_where(branch, hidden)
