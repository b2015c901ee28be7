"""Class schemas: the fields each class has, as ``_SCHEMA`` stores them and the API shows them."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bastion.core.js import js_string
from bastion.core.system_classes import (
    AUDIENCE,
    IDEMPOTENCY,
    INSTALLATION,
    JOB_SCHEDULE,
    JOB_STATUS,
    PUSH_STATUS,
    ROLE,
    SESSION,
    USER,
)
from bastion.core.types import FIELD_TYPES, FieldType, explicit_required
from bastion.errors import Code, ParseError

_T = TypeVar("_T")
# Entries ClassSchema.derived may hold: keys can come from clients (a query's `keys` list), so the
# cache starts over rather than grow without end.
DERIVED_LIMIT = 256

DEFAULT_FIELDS: dict[str, FieldType] = {
    "objectId": FieldType("String"),
    "createdAt": FieldType("Date"),
    "updatedAt": FieldType("Date"),
    "ACL": FieldType("ACL"),
}

# Fields every instance of a system class has, as Parse Server defines them.
SYSTEM_CLASS_FIELDS: dict[str, dict[str, FieldType]] = {
    USER: {
        "username": FieldType("String"),
        "password": FieldType("String"),
        "email": FieldType("String"),
        "emailVerified": FieldType("Boolean"),
        "authData": FieldType("Object"),
    },
    INSTALLATION: {
        "installationId": FieldType("String"),
        "deviceToken": FieldType("String"),
        "channels": FieldType("Array"),
        "deviceType": FieldType("String"),
        "pushType": FieldType("String"),
        "GCMSenderId": FieldType("String"),
        "timeZone": FieldType("String"),
        "localeIdentifier": FieldType("String"),
        "badge": FieldType("Number"),
        "appVersion": FieldType("String"),
        "appName": FieldType("String"),
        "appIdentifier": FieldType("String"),
        "parseVersion": FieldType("String"),
    },
    ROLE: {
        "name": FieldType("String"),
        "users": FieldType("Relation", USER),
        "roles": FieldType("Relation", ROLE),
    },
    SESSION: {
        "user": FieldType("Pointer", USER),
        "installationId": FieldType("String"),
        "sessionToken": FieldType("String"),
        "expiresAt": FieldType("Date"),
        "createdWith": FieldType("Object"),
    },
    JOB_STATUS: {
        "jobName": FieldType("String"),
        "source": FieldType("String"),
        "status": FieldType("String"),
        "message": FieldType("String"),
        "params": FieldType("Object"),
        "finishedAt": FieldType("Date"),
    },
    # As Parse Dashboard writes a schedule (see bastion/cloud/_runtime/scheduler.py for how it runs).
    JOB_SCHEDULE: {
        "jobName": FieldType("String"),
        "description": FieldType("String"),
        "params": FieldType("String"),
        "startAfter": FieldType("String"),
        "daysOfWeek": FieldType("Array"),
        "timeOfDay": FieldType("String"),
        "lastRun": FieldType("Number"),
        "repeatMinutes": FieldType("Number"),
    },
    PUSH_STATUS: {
        "pushTime": FieldType("String"),
        "source": FieldType("String"),
        "query": FieldType("String"),
        "payload": FieldType("String"),
        "title": FieldType("String"),
        "expiry": FieldType("Number"),
        "expiration_interval": FieldType("Number"),
        "status": FieldType("String"),
        "numSent": FieldType("Number"),
        "numFailed": FieldType("Number"),
        "pushHash": FieldType("String"),
        "errorMessage": FieldType("Object"),
        "sentPerType": FieldType("Object"),
        "failedPerType": FieldType("Object"),
        "sentPerUTCOffset": FieldType("Object"),
        "failedPerUTCOffset": FieldType("Object"),
        "count": FieldType("Number"),
    },
    AUDIENCE: {
        "name": FieldType("String"),
        "query": FieldType("String"),
        "lastUsed": FieldType("Date"),
        "timesUsed": FieldType("Number"),
    },    # Request ids of --idempotency-paths (bastion/domain/idempotency.py), as Parse Server's.
    IDEMPOTENCY: {
        "reqId": FieldType("String"),
        "expire": FieldType("Date"),
    },
}

# Columns a system class's table has beyond its schema fields, never selected by reads (Parse
# Server's internal _User columns, created alike so that both servers can share a database).
HIDDEN_COLUMNS: dict[str, dict[str, str]] = {
    USER: {
        "_hashed_password": "String",
        "_email_verify_token": "String",
        "_email_verify_token_expires_at": "Date",
        "_account_lockout_expires_at": "Date",
        "_failed_login_count": "Number",
        "_perishable_token": "String",
        "_perishable_token_expires_at": "Date",
        "_password_changed_at": "Date",
        "_password_history": "Array",
    },
}

CLP_OPERATIONS = ("find", "get", "count", "create", "update", "delete", "addField")
CLP_KEYS = frozenset(CLP_OPERATIONS + ("ACL", "readUserFields", "writeUserFields", "protectedFields"))


def default_clp() -> dict[str, Any]:
    """The permissions of a class created without any, as Parse Server on PostgreSQL shows them
    (its ``ACL`` entry included)."""
    clp: dict[str, Any] = {"ACL": {"*": {"read": True, "write": True}}}
    clp.update({op: {"*": True} for op in CLP_OPERATIONS})
    clp["protectedFields"] = {"*": []}
    return clp


def api_clp(stored: dict[str, Any]) -> dict[str, Any]:
    """Stored permissions as the schemas API answers them: Parse Server fills every operation the
    stored permissions leave out with ``{}`` (which grants nothing)."""
    out: dict[str, Any] = {"ACL": copy.deepcopy(stored["ACL"])} if "ACL" in stored else {}
    for key in (*CLP_OPERATIONS, "protectedFields"):  # in Parse Server's order
        out[key] = copy.deepcopy(stored.get(key, {}))
    out.update((key, copy.deepcopy(value)) for key, value in stored.items() if key not in out)
    return out


@dataclass(slots=True)
class ClassSchema:
    """One class: its fields (default ones included), class-level permissions and indexes."""

    class_name: str
    fields: dict[str, FieldType]
    clp: dict[str, Any] = field(default_factory=default_clp)
    indexes: dict[str, Any] = field(default_factory=dict)
    # Whether indexes were ever set (Parse Server then keeps an ``indexes`` document, with its
    # primary key's ``_id_``, even once every index is deleted).
    indexed: bool = False
    # What storage adapters derive from the fields (statement text), kept per schema; see derive().
    # The schema registry empties it whenever it may have changed the schema (SchemaRegistry._locked).
    derived: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def new(cls, class_name: str, fields: dict[str, FieldType] | None = None) -> ClassSchema:
        all_fields = dict(DEFAULT_FIELDS)
        all_fields.update(SYSTEM_CLASS_FIELDS.get(class_name, {}))
        all_fields.update(fields or {})
        return cls(class_name, all_fields)

    def derive(self, key: Any, make: Callable[[], _T]) -> _T:
        """``make()``, computed once per ``key`` while the schema stays as it is."""
        try:
            return self.derived[key]  # type: ignore[no-any-return]
        except KeyError:
            pass
        if len(self.derived) >= DERIVED_LIMIT:
            self.derived.clear()
        value = self.derived[key] = make()
        return value

    def user_fields(self) -> dict[str, FieldType]:
        return {name: ft for name, ft in self.fields.items() if name not in DEFAULT_FIELDS}

    def relation_fields(self) -> dict[str, FieldType]:
        return {name: ft for name, ft in self.fields.items() if ft.type == "Relation"}

    def to_api(self, primary_index: bool = True) -> dict[str, Any]:
        """The shape ``GET /schemas/:className`` answers with.

        As Parse Server on PostgreSQL: no ``indexes`` key until indexes were set, and then the
        primary key's ``_id_`` beside them, in the order of its jsonb column (shorter names first).
        ``primary_index=False`` leaves ``_id_`` out, as the answer to creating a class does.
        """
        fields = {name: ft.to_json() for name, ft in self.fields.items()}
        if self.class_name == USER:
            fields.pop("authData", None)  # implicit: Parse Server does not show it
        out: dict[str, Any] = {
            "className": self.class_name,
            "fields": fields,
            "classLevelPermissions": api_clp(self.clp),
        }
        if not primary_index:
            if self.indexes:
                out["indexes"] = copy.deepcopy(self.indexes)
        elif self.indexes or self.indexed:
            indexes = {"_id_": {"_id": 1}, **copy.deepcopy(self.indexes)}
            out["indexes"] = {name: indexes[name] for name in sorted(indexes, key=_jsonb_key_order)}
        return out

    def to_storage(self) -> dict[str, Any]:
        """The document stored in ``_SCHEMA.schema``, laid out as Parse Server lays it out."""
        fields: dict[str, Any] = {}
        for name, ft in self.fields.items():
            if name == "ACL":
                continue
            fields[name] = ft.to_json()
        fields["_rperm"] = {"type": "Array"}
        fields["_wperm"] = {"type": "Array"}
        doc: dict[str, Any] = {
            "className": self.class_name,
            "fields": fields,
            "classLevelPermissions": self.clp,
        }
        if self.indexes or self.indexed:
            doc["indexes"] = self.indexes
        return doc

    @classmethod
    def from_storage(cls, doc: dict[str, Any]) -> ClassSchema:
        raw_fields = dict(doc.get("fields") or {})
        fields: dict[str, FieldType] = dict(DEFAULT_FIELDS)
        for name, spec in raw_fields.items():
            if name in ("_rperm", "_wperm") or name.startswith("_hashed_") or name.startswith("_"):
                continue
            try:
                fields[name] = FieldType.from_json(spec)
            except ParseError:
                continue
        clp = doc.get("classLevelPermissions")
        if clp is None:
            clp = default_clp()  # an empty {} is kept: it grants nothing
        indexes = doc.get("indexes")
        return cls(doc["className"], fields, clp, dict(indexes or {}), indexed=indexes is not None)


def _jsonb_key_order(name: str) -> tuple[int, bytes]:
    """PostgreSQL's jsonb keeps an object's keys shorter first, then by their bytes."""
    raw = name.encode()
    return len(raw), raw


def check_field_type_spec(class_name: str, name: str, spec: Any) -> FieldType:
    """Validate a field definition given to the schemas API."""
    if not isinstance(spec, dict):
        raise ParseError(Code.INVALID_JSON, "invalid JSON")
    kind = spec.get("type")
    if not isinstance(kind, str):
        raise ParseError(Code.INVALID_JSON, "invalid JSON")
    if kind not in FIELD_TYPES:
        raise ParseError(Code.INCORRECT_TYPE, f"invalid field type: {kind[:50]}")
    target = spec.get("targetClass")
    if kind in ("Pointer", "Relation"):
        from bastion.core.names import class_name_is_valid, invalid_class_message

        if not isinstance(target, str):
            raise ParseError(135, f"type {kind} needs a class name")  # MISSING_REQUIRED_FIELD_ERROR
        if not class_name_is_valid(target):
            raise ParseError(Code.INVALID_CLASS_NAME, invalid_class_message(target[:200]))
    ft = FieldType(kind, target if kind in ("Pointer", "Relation") else None,
                   bool(spec.get("required", False)), spec.get("defaultValue"), explicit_required(spec))
    if ft.default_value is not None:
        if kind == "Relation":
            raise ParseError(
                Code.INCORRECT_TYPE, f"The 'default value' option is not applicable for {ft.describe()}"
            )
        from bastion.core.types import infer_type

        got = infer_type(ft.default_value)
        if got is None or not got.same_type(FieldType(kind, ft.target_class)):
            raise ParseError(
                Code.INCORRECT_TYPE,
                f"schema mismatch for {class_name}.{name} default value; expected {ft.describe()} "
                f"but got {got.describe() if got else 'null'}",
            )
    elif ft.required and kind == "Relation":
        raise ParseError(Code.INCORRECT_TYPE, f"The 'required' option is not applicable for {ft.describe()}")
    return ft


# --- class-level permissions, validated as Parse Server validates them ------------------------------

_CLP_ENTITY = re.compile(r"^(pointerFields|\*|requiresAuthentication|role:.*|[a-zA-Z0-9]+)$", re.DOTALL)
_PROTECTED_ENTITY = re.compile(r"^(userField:.*|\*|authenticated|role:.*|[a-zA-Z0-9]+)$", re.DOTALL)


def _check_user_field(name: Any, fields: dict[str, FieldType], operation: str) -> None:
    ft = fields.get(name) if isinstance(name, str) else None
    if ft is None or not ((ft.type == "Pointer" and ft.target_class == USER) or ft.type == "Array"):
        raise ParseError(Code.INVALID_JSON,
                         f"'{js_string(name)}' is not a valid column for class level pointer permissions {operation}")


def validate_clp(perms: Any, fields: dict[str, FieldType]) -> None:
    """Refuse class-level permissions Parse Server refuses (107), given the class's fields."""
    if perms is None:
        return
    if not isinstance(perms, dict):
        raise ParseError(Code.INVALID_JSON, "classLevelPermissions must be an object")
    for key, operation in perms.items():
        if key not in CLP_KEYS:
            raise ParseError(Code.INVALID_JSON, f"{str(key)[:50]} is not a valid operation for class level permissions")
        if key in ("readUserFields", "writeUserFields"):
            if not isinstance(operation, list):
                raise ParseError(Code.INVALID_JSON, f"'{js_string(operation)}' is not a valid value for class level "
                                                    f"permissions {key} - must be an array")
            for name in operation:
                _check_user_field(name, fields, key)
            continue
        if not isinstance(operation, (dict, list)):
            raise ParseError(Code.INVALID_JSON, f"'{js_string(operation)}' is not a valid value for class level "
                                                f"permissions {key} - must be an object")
        if not isinstance(operation, dict):
            continue  # Parse Server lets an array through here (it has no keys to check)
        if key == "protectedFields":
            for entity, protected in operation.items():
                if not _PROTECTED_ENTITY.match(entity):
                    raise ParseError(Code.INVALID_JSON, f"'{entity[:100]}' is not a valid key for class level permissions")
                if not isinstance(protected, list):
                    raise ParseError(Code.INVALID_JSON, f"'{js_string(protected)}' is not a valid value for "
                                                        f"protectedFields[{entity}] - expected an array.")
                for name in protected:
                    if name in DEFAULT_FIELDS:
                        raise ParseError(Code.INVALID_JSON, f"Default field '{name}' can not be protected")
                    if not isinstance(name, str) or name not in fields:
                        raise ParseError(Code.INVALID_JSON,
                                         f"Field '{js_string(name)}' in protectedFields:{entity} does not exist")
            continue
        for entity, permit in operation.items():
            if not _CLP_ENTITY.match(entity):
                raise ParseError(Code.INVALID_JSON, f"'{entity[:100]}' is not a valid key for class level permissions")
            if entity == "pointerFields":
                if not isinstance(permit, list):
                    raise ParseError(Code.INVALID_JSON, f"'{js_string(permit)}' is not a valid value for "
                                                        f"{key}[{entity}] - expected an array.")
                for name in permit:
                    _check_user_field(name, fields, "[object Object]")  # sic: Parse Server's message
                continue
            if key == "ACL":
                if not isinstance(permit, dict):
                    raise ParseError(Code.INVALID_JSON,
                                     f"'{js_string(permit)}' is not a valid value for class level permissions acl")
                bad_keys = [k for k in permit if k not in ("read", "write")]
                if bad_keys:
                    raise ParseError(Code.INVALID_JSON,
                                     f"'{','.join(bad_keys)}' is not a valid key for class level permissions acl")
                bad_values = [v for v in permit.values() if not isinstance(v, bool)]
                if bad_values:
                    raise ParseError(Code.INVALID_JSON, f"'{js_string(bad_values)}' is not a valid value for class "
                                                        "level permissions acl")
            elif permit is not True:
                raise ParseError(Code.INVALID_JSON, f"'{js_string(permit)}' is not a valid value for class level "
                                                    f"permissions acl {key}:{entity}")
