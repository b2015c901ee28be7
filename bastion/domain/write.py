"""The write pipeline: create, update and delete one object, as Parse Server's RestWrite does.

Stages, in order: check names and body -> derive field types -> make sure the schema has them
(inferring new fields) -> build canonical values and update operations -> defaults and required
fields -> one storage statement -> relation rows -> the REST answer.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.core.acl import acl_to_perms
from bastion.core.auth import Auth, CallInfo
from bastion.core.codec import to_canonical, to_rest
from bastion.core.events import ChangeCommitted, Hook, ObjectWritten
from bastion.core.names import check_class_name, check_field_name, check_no_denylisted_keys
from bastion.core.permissions import Permissions
from bastion.core.query import ir
from bastion.core.query.parse import parse_where
from bastion.core.query.relation_parse import js_truthy
from bastion.core.schema import ClassSchema
from bastion.core.system_classes import CLIENT_WRITABLE, INTERNAL_CLASSES, JOIN_PREFIX, ROLE
from bastion.core.types import (
    FieldType,
    check_value,
    format_iso,
    infer_type,
    now_ms,
)
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.triggers import NO_TRIGGERS, Triggers
from bastion.domain.update_ops import (
    RelationChange,
    bad_nested_key,
    check_path,
    field_ops,
    path_op,
    result_value,
)
from bastion.errors import Code, ParseError
from bastion.ports import storage as ops
from bastion.ports.storage import DuplicateValue, StorageAdapter

if TYPE_CHECKING:
    from bastion.domain.read import Reader

OBJECT_ID_ALPHABET = string.ascii_letters + string.digits
SERVER_FIELDS = frozenset({"objectId", "createdAt", "updatedAt"})
# Fields every object of a class must keep, Parse Server's requiredColumns.write: refused (111
# "<field> is required.") when a create leaves one out (or falsy), or an update deletes it.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {ROLE: ("name", "ACL")}
# Operations whose result Parse Server returns in the write's answer.
RESULT_OPS = frozenset({"Increment", "Add", "AddUnique", "Remove"})


def new_object_id(length: int = 10) -> str:
    """``length`` random base-62 characters (one draw from the CSPRNG, then digits: unbiased)."""
    number = secrets.randbelow(len(OBJECT_ID_ALPHABET) ** length)
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(OBJECT_ID_ALPHABET))
        chars.append(OBJECT_ID_ALPHABET[digit])
    return "".join(chars)


def add_trigger_changes(response: dict[str, Any], body: dict[str, Any], changed: list[str]) -> None:
    """As Parse Server: a write's answer carries the fields a before_save trigger changed, with the
    values written (an operation's result is in the answer already, or the client computes it)."""
    for key in changed:
        if key in response or key not in body:
            continue
        value = body[key]
        if value is None:
            continue
        if isinstance(value, dict) and "__op" in value:
            if value["__op"] == "Delete":
                response[key] = value
            continue
        response[key] = value


# Takes what is no field out of a body after its before_save trigger (see Writer.create).
TakeSecrets = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(slots=True)
class WriteOptions:
    allow_client_class_creation: bool = False
    max_array_items: int = 10_000


def _is_delete(value: Any) -> bool:
    return isinstance(value, dict) and value.get("__op") == "Delete"


def _without_deletes(body: dict[str, Any]) -> dict[str, Any]:
    """A create's body as Parse Server stores it: a field to delete is left out (it adds no field
    to the schema, and a default value still fills it in), and an ACL to delete becomes the empty
    ACL, which Parse Server makes of the operation's keys."""
    if not any(_is_delete(value) for value in body.values()):
        return body
    return {key: ({} if key == "ACL" and _is_delete(value) else value) for key, value in body.items()
            if key == "ACL" or not _is_delete(value)}


def _check_required_columns(class_name: str, body: dict[str, Any], creating: bool) -> None:
    for column in REQUIRED_COLUMNS.get(class_name, ()):
        missing = not js_truthy(body.get(column)) if creating else _is_delete(body.get(column))
        if missing:
            raise ParseError(Code.INCORRECT_TYPE, f"{column} is required.")


def _nobody(_class_name: str) -> bool:
    return False


@dataclass(slots=True)
class WriteResult:
    response: dict[str, Any]
    record: dict[str, Any] | None = None
    object_id: str = ""


class Writer:
    def __init__(self, storage: StorageAdapter, schemas: SchemaRegistry, options: WriteOptions,
                 permissions: Permissions | None = None, *, reader: Reader,
                 triggers: Triggers = NO_TRIGGERS, wants_changes: Callable[[str], bool] | None = None) -> None:
        self.storage = storage
        self.schemas = schemas
        self.options = options
        # Class-level permissions (shared with the Reader); they apply to trusted services too.
        self.permissions = permissions or Permissions()
        # After each write (caches of roles and sessions listen); a handler's failure fails the write.
        self.written: Hook[ObjectWritten] = Hook("object written")
        # After-commit changes (LiveQuery). ``wants_changes(class_name)`` says whether anyone may
        # listen: only then does an update or delete read the object's state before the write. The
        # write is committed, so a handler's failure is only logged.
        self.committed: Hook[ChangeCommitted] = Hook("change committed", contain=True)
        self.wants_changes: Callable[[str], bool] = wants_changes or _nobody
        # Cloud code's triggers, and the reader that loads what they see as ``original``.
        self.triggers = triggers
        self.reader = reader

    # --- shared checks --------------------------------------------------------------------------

    def _check_target(self, class_name: str, auth: Auth, trusted: bool = False) -> None:
        """``trusted``: the caller is the service owning a system class and applied its rules."""
        check_class_name(class_name)
        if class_name in INTERNAL_CLASSES or class_name.startswith(JOIN_PREFIX):  # inlined is_internal
            raise ParseError(Code.OPERATION_FORBIDDEN, f"Class {class_name} is not writable.")
        if class_name.startswith("_") and not auth.is_master and not trusted and class_name not in CLIENT_WRITABLE:
            # _User, _Session and _Installation writes go through their owners' services (trusted:
            # core/system_classes.py, domain/objects.py). Sanitized as Parse Server 9 does
            # ("Clients aren't allowed to perform ...").
            raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")
        if auth.is_read_only:
            # Sanitized ("read-only masterKey isn't allowed to perform the create operation.").
            raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")

    def _check_body(self, body: Any, creating: bool = False) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ParseError(Code.INVALID_JSON, "This object must be a JSON object.")
        check_no_denylisted_keys(body)
        # Parse Server on PostgreSQL refuses '$' and '.' in the keys of stored objects: at any depth
        # when creating, in the first level of a value when updating.
        for key, value in body.items():
            if key == "ACL":
                continue
            if isinstance(value, dict) and "__op" not in value and "__type" not in value:
                if bad_nested_key(value, deep=creating):
                    raise ParseError(Code.INVALID_NESTED_KEY,
                                     "Nested keys should not contain the '$' or '.' characters")
            elif creating and isinstance(value, list) and bad_nested_key(value, deep=True):
                raise ParseError(Code.INVALID_NESTED_KEY, "Nested keys should not contain the '$' or '.' characters")
        return body

    def _wanted_types(self, class_name: str, body: dict[str, Any]) -> dict[str, FieldType]:
        """The field types the body implies, for fields it sets at their top level."""
        wanted: dict[str, FieldType] = {}
        for key, value in body.items():
            if key in ("createdAt", "updatedAt") and value is not None:
                # Ignored, but like any field checked against its type (Date) first, as Parse Server does.
                given = infer_type(value)
                if given is not None and given.type != "Date":
                    raise ParseError(Code.INCORRECT_TYPE, f"schema mismatch for {class_name}.{key}; "
                                                          f"expected Date but got {given.describe()}")
            if key in SERVER_FIELDS or key == "ACL":
                continue
            head, dot, rest = key.partition(".")
            check_field_name(head, class_name)
            if dot:
                check_path(head, tuple(rest.split(".")))
                wanted.setdefault(head, FieldType("Object"))
                continue
            ft = infer_type(value)
            if ft is not None:
                wanted[key] = ft
        return wanted

    def _check_clp(self, schema: ClassSchema | None, body: dict[str, Any], auth: Auth, op: str) -> ir.Node | None:
        """The class-level permission checks of a write, in Parse Server's order: ``addField`` when
        the body adds a field to an existing class, then ``op``. Returns the constraint pointer
        permissions put on the object written (TRUE for none, None when nothing can match)."""
        if auth.is_master or schema is None:
            return ir.TRUE
        adds_field = any(
            not (isinstance(value, dict) and value.get("__op") == "Delete")
            and key.split(".")[0] not in schema.fields and key not in SERVER_FIELDS
            for key, value in body.items())
        action = "update" if op == "update" else None
        if adds_field:
            self.permissions.require(schema, auth, "addField", action)
        self.permissions.require(schema, auth, op)
        if op == "create":
            return ir.TRUE
        wheres = [self.permissions.pointer_where(schema, auth, op)]
        if adds_field:
            wheres.append(self.permissions.pointer_where(schema, auth, "addField"))
        nodes: list[ir.Node] = []
        for where in wheres:
            if where is None:
                return None
            if where:
                nodes.append(parse_where(where, schema, schema.class_name, self.schemas.get))
        return ir.conjoin(nodes)

    def _check_new_values(self, class_name: str, body: dict[str, Any], wanted: dict[str, FieldType]) -> None:
        """Values of fields the class does not have yet are checked before the schema grows, so that
        a refused write adds no field."""
        schema = self.schemas.get(class_name)
        for key, ft in wanted.items():
            value = body.get(key)
            if value is None or (schema is not None and key in schema.fields):
                continue
            if not (isinstance(value, dict) and "__op" in value):
                check_value(value, ft)

    # --- create ---------------------------------------------------------------------------------

    async def create(self, class_name: str, body: Any, auth: Auth, *, trusted: bool = False,
                     object_id: str | None = None, hidden: dict[str, Any] | None = None,
                     info: CallInfo | None = None, take_secrets: TakeSecrets | None = None) -> WriteResult:
        """Create an object. Services of system classes pass ``trusted``, may choose the
        ``object_id``, and may store ``hidden`` columns (such as a password hash) beside the fields.
        ``info`` is what cloud code's triggers see of the request. ``take_secrets`` gets the body
        after the before_save trigger and takes out what is no field (the users service hashes a
        password into ``hidden`` so: the trigger sees the password, as in Parse Server)."""
        self._check_target(class_name, auth, trusted)
        body = self._check_body(body, creating=True)
        triggers = self.triggers
        changed: list[str] = []
        if triggers.has("beforeSave", class_name):
            self._check_clp(self.schemas.get(class_name), body, auth, "create")
            body, changed = await triggers.before_save(class_name, body, None, auth, info)
            body = self._check_body(body, creating=True)
        if take_secrets is not None:
            body = await take_secrets(body)
        if body.get("objectId"):
            raise ParseError(Code.INVALID_KEY_NAME, "objectId is an invalid field name.")
        if body.get("id"):
            raise ParseError(Code.INVALID_KEY_NAME, "id is an invalid field name.")
        answered = body  # the trigger's deletes are answered as such
        body = _without_deletes(body)
        wanted = self._wanted_types(class_name, body)
        self._check_new_values(class_name, body, wanted)
        self._check_clp(self.schemas.get(class_name), body, auth, "create")
        schema = await self.schemas.ensure_fields(
            class_name, wanted,
            may_create_class=auth.is_master or self.options.allow_client_class_creation,
        )
        _check_required_columns(class_name, body, creating=True)
        now = now_ms()
        object_id = object_id or new_object_id()
        record: dict[str, Any] = {"objectId": object_id, "createdAt": now, "updatedAt": now,
                                  "_rperm": None, "_wperm": None, **(hidden or {})}
        relations: dict[str, RelationChange] = {}
        response: dict[str, Any] = {"objectId": object_id, "createdAt": format_iso(now)}
        for key, value in body.items():
            if key in SERVER_FIELDS:
                continue
            if key == "ACL":
                record["_rperm"], record["_wperm"] = acl_to_perms(value)
                continue
            head, dot, rest = key.partition(".")
            if dot:
                current = record.get(head) if isinstance(record.get(head), dict) else {}
                op = path_op(head, tuple(rest.split(".")), value)
                record[head] = ops.apply_op(current, op)
                continue
            ft = schema.fields.get(key)
            if ft is None or value is None:
                continue  # null or Delete: nothing to store (Parse Server accepts null for any field)
            if isinstance(value, dict) and "__op" in value:
                for op in field_ops(key, ft, value, relations, self.options.max_array_items):
                    record[key] = ops.apply_op(record.get(key), op)
                if value["__op"] in RESULT_OPS:
                    response[key] = result_value(record[key])
                continue
            check_value(value, ft)
            if ft.type == "Relation":
                continue
            record[key] = to_canonical(ft, value)
        for name in self._apply_defaults_and_required(schema, record, creating=True):
            # Parse Server answers a create with the default values it filled in (not pointers).
            ft = schema.fields[name]
            default = ft.default_value
            if ft.type == "Polygon":  # as stored: closed
                default = to_rest(ft, record[name], str)
            if not (isinstance(default, dict) and default.get("__type") == "Pointer"):
                response[name] = default
        try:
            await self.storage.insert(schema, record)
        except DuplicateValue:
            raise ParseError(Code.DUPLICATE_VALUE,
                             "A duplicate value for a field with unique values was provided") from None
        await self._apply_relations(class_name, object_id, relations)
        self._notify(class_name)
        if self.committed and self.wants_changes(class_name):
            self.committed.emit(ChangeCommitted(class_name, "create", record))
        if changed:
            add_trigger_changes(response, answered, changed)
        if triggers.has("afterSave", class_name):
            await triggers.after_save(class_name, self.reader.encode_record(class_name, record), None, auth, info)
        return WriteResult(response, record, object_id)

    # --- update ---------------------------------------------------------------------------------

    async def update(self, class_name: str, object_id: str, body: Any, auth: Auth, *, trusted: bool = False,
                     hidden: dict[str, Any] | None = None, info: CallInfo | None = None,
                     take_secrets: TakeSecrets | None = None) -> WriteResult:
        self._check_target(class_name, auth, trusted)
        body = self._check_body(body)
        if not isinstance(object_id, str) or not object_id or len(object_id) > 120:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        existing = await self.schemas.get_or_reload(class_name, force=auth.is_master)
        if existing is None:
            if not auth.is_master and not self.options.allow_client_class_creation:
                raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")  # as Parse Server, sanitized
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        triggers = self.triggers
        changed: list[str] = []
        original: dict[str, Any] | None = None
        if triggers.has("beforeSave", class_name) or triggers.has("afterSave", class_name):
            # As Parse Server: the stored object, as the caller may read it, is the triggers' original.
            original = await self.reader.load(class_name, object_id, auth)
            if original is None:
                raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
            if triggers.has("beforeSave", class_name):
                body, changed = await triggers.before_save(class_name, body, original, auth, info)
                body = self._check_body(body)
        if take_secrets is not None:
            body = await take_secrets(body)
        wanted = self._wanted_types(class_name, body)
        self._check_new_values(class_name, body, wanted)
        permitted = self._check_clp(existing, body, auth, "update")
        if permitted is None:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        schema = await self.schemas.ensure_fields(class_name, wanted, may_create_class=False)
        _check_required_columns(class_name, body, creating=False)
        now = now_ms()
        update_ops: list[ops.UpdateOp] = [ops.Set("updatedAt", now)]
        update_ops += [ops.Set(column, value) for column, value in (hidden or {}).items()]
        relations: dict[str, RelationChange] = {}
        result_keys: list[str] = []
        for key, value in body.items():
            if key in SERVER_FIELDS:
                continue
            if key == "ACL":
                if value is None or (isinstance(value, dict) and value.get("__op") == "Delete"):
                    update_ops += [ops.Set("_rperm", None), ops.Set("_wperm", None)]
                else:
                    read, write = acl_to_perms(value)
                    update_ops += [ops.Set("_rperm", read), ops.Set("_wperm", write)]
                continue
            head, dot, rest = key.partition(".")
            if dot:
                update_ops.append(path_op(head, tuple(rest.split(".")), value))
                if isinstance(value, dict) and value.get("__op") == "Increment":
                    result_keys.append(key)
                continue
            ft = schema.fields.get(key)
            is_delete = value is None or (isinstance(value, dict) and value.get("__op") == "Delete")
            if is_delete:
                if ft is not None and ft.required:
                    raise ParseError(Code.VALIDATION_ERROR, f"{key} is required")
                if ft is not None and ft.type != "Relation":
                    update_ops.append(ops.Set(key, None))
                continue
            assert ft is not None
            if isinstance(value, dict) and "__op" in value:
                update_ops.extend(field_ops(key, ft, value, relations, self.options.max_array_items))
                if value["__op"] in RESULT_OPS:
                    result_keys.append(key)
                continue
            check_value(value, ft)
            if ft.type != "Relation":
                update_ops.append(ops.Set(key, to_canonical(ft, value)))
        before = await self._before_change(schema, object_id)
        try:
            record = await self.storage.update(schema, object_id, update_ops, auth.access(), permitted)
        except DuplicateValue:
            raise ParseError(Code.DUPLICATE_VALUE,
                             "A duplicate value for a field with unique values was provided") from None
        if record is None:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        await self._apply_relations(class_name, object_id, relations)
        self._notify(class_name)
        if before is not None:
            self.committed.emit(ChangeCommitted(class_name, "update", record, before))
        response: dict[str, Any] = {"updatedAt": format_iso(now)}
        if changed:
            add_trigger_changes(response, body, changed)
        if original is not None and triggers.has("afterSave", class_name):
            await triggers.after_save(class_name, self.reader.encode_record(class_name, record), original, auth,
                                      info)
        for key in result_keys:
            # A nested key's result comes back nested, as Parse Server expands it:
            # {"stats.wins": Increment} answers {"stats": {"wins": 3}}.
            path = key.split(".")
            result: Any = record.get(path[0])
            target = response
            for part in path[1:]:
                result = result.get(part) if isinstance(result, dict) else None
            for part in path[:-1]:
                child = target.get(part)
                if not isinstance(child, dict):
                    child = target[part] = {}
                target = child
            target[path[-1]] = result_value(result)
        return WriteResult(response, record, object_id)

    # --- delete ---------------------------------------------------------------------------------

    async def delete(self, class_name: str, object_id: str, auth: Auth, *, trusted: bool = False,
                     info: CallInfo | None = None) -> None:
        self._check_target(class_name, auth, trusted)
        schema = await self.schemas.get_or_reload(class_name, force=auth.is_master)
        if schema is None:
            # Nothing to delete: 101, as Parse Server answers on its default database (MongoDB) and
            # the SDKs' suites expect. Its PostgreSQL adapter swallows the missing table into 200 {}.
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        if not isinstance(object_id, str) or len(object_id) > 120:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        permitted = self._check_clp(schema, {}, auth, "delete")
        triggers = self.triggers
        stored: dict[str, Any] | None = None
        if triggers.has("beforeDelete", class_name) or triggers.has("afterDelete", class_name):
            stored = await self.reader.load(class_name, object_id, auth)
            if stored is None:
                raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found for delete.")  # Parse Server's words
            if triggers.has("beforeDelete", class_name):
                await triggers.before_delete(class_name, stored, auth, info)
        before = await self._before_change(schema, object_id) if permitted is not None else None
        if permitted is None or not await self.storage.delete(schema, object_id, auth.access(), permitted):
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        self._notify(class_name)
        if before is not None:
            self.committed.emit(ChangeCommitted(class_name, "delete", before))
        if stored is not None and triggers.has("afterDelete", class_name):
            await triggers.after_delete(class_name, stored, auth, info)

    def _notify(self, class_name: str) -> None:
        if self.written:
            self.written.emit(ObjectWritten(class_name))

    async def _before_change(self, schema: ClassSchema, object_id: str) -> dict[str, Any] | None:
        """The stored record before an update or delete, only when a change listener wants the class."""
        if not self.committed or not self.wants_changes(schema.class_name):
            return None
        node = parse_where({"objectId": object_id}, schema, schema.class_name, self.schemas.get)
        found = await self.storage.find(schema, ops.FindQuery(node, limit=1), ops.MASTER)
        return found[0] if found else None

    @staticmethod
    def _apply_defaults_and_required(schema: ClassSchema, record: dict[str, Any], creating: bool) -> list[str]:
        """Fill default values in and check required fields; the names of the fields filled in."""
        filled: list[str] = []
        for name, ft in schema.fields.items():
            if record.get(name) is None and ft.default_value is not None and creating:
                record[name] = to_canonical(ft, ft.default_value)
                filled.append(name)
            if ft.required and record.get(name) is None and ft.type != "Relation":
                raise ParseError(Code.VALIDATION_ERROR, f"{name} is required")
        return filled

    async def _apply_relations(self, class_name: str, object_id: str,
                               relations: dict[str, RelationChange]) -> None:
        for change in relations.values():
            if change.add:
                await self.storage.add_relations(class_name, change.key, change.target_class, object_id, change.add)
            if change.remove:
                await self.storage.remove_relations(class_name, change.key, change.target_class, object_id,
                                                    change.remove)
