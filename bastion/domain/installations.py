"""Installations (``_Installation``): the devices and browsers push notifications go to.

Writes follow Parse Server's ``RestWrite.handleInstallation`` before they reach the write pipeline:

- a create needs ``installationId`` or ``deviceToken`` (or the ``X-Parse-Installation-Id`` header of a
  client), and ``deviceType`` unless it matches an installation that exists (135);
- ``installationId`` is stored lower-cased, as is a 64-character (APNs) ``deviceToken``;
- a create whose ``installationId`` (or the client's header id) or ``deviceToken`` matches an existing
  installation updates that one instead (answered 200 with ``updatedAt``, as an update);
- ``installationId``, ``deviceType`` and (when neither object has an installationId) ``deviceToken``
  may not change (136);
- a ``deviceToken`` moves to the installation that claims it: other installations holding it are
  deleted (Parse Server's default ``duplicateDeviceTokenAction``), and an installation with the same
  ``installationId`` merges into one that holds the token but has no installationId (the default
  ``duplicateDeviceTokenMergePriority``: the token's row survives); 132 when a token names several
  installations and the write gives no installationId to tell them apart.

These clean-ups bypass ACLs and triggers, as Parse Server's do by default. The write itself goes
through ``Writer`` (ACLs, class-level permissions, cloud code triggers apply). Clients may create,
get and update installations; finding and deleting them takes the master key (119). Parse Server
checks no channel names and sets no default ACL, and neither does Bastion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.core.auth import Auth, CallInfo
from bastion.core.query import ir
from bastion.core.system_classes import INSTALLATION
from bastion.core.types import infer_type
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.write import Writer
from bastion.errors import Code, ParseError
from bastion.ports.storage import MASTER, FindQuery, StorageAdapter

# Parse's error codes of installation writes (Parse.Error has no names for them).
MISSING_ID = 135
ID_CHANGED = 136
AMBIGUOUS_TOKEN = 132
DENIED = "Permission denied"  # Parse Server 9's sanitized "Clients aren't allowed to perform ..."

_OBJECT_ID = ir.Field("objectId", "String")
_INSTALLATION_ID = ir.Field("installationId", "String")
_DEVICE_TOKEN = ir.Field("deviceToken", "String")


@dataclass(slots=True)
class SaveResult:
    response: dict[str, Any]
    object_id: str
    created: bool


def _truthy(value: Any) -> bool:
    """JavaScript's truthiness for the values a body holds."""
    return value not in (None, False, "", 0) and not (isinstance(value, float) and value != value)


def _string_field(body: dict[str, Any], key: str) -> str | None:
    """The string a body sets ``key`` to; None when it does not set one (absent, null, Delete);
    111 for another type, as the schema would answer."""
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, dict) and value.get("__op") == "Delete":
        return None
    given = infer_type(value)
    described = given.describe() if given is not None else type(value).__name__
    raise ParseError(Code.INCORRECT_TYPE,
                     f"schema mismatch for {INSTALLATION}.{key}; expected String but got {described}")


class Installations:
    def __init__(self, storage: StorageAdapter, schemas: SchemaRegistry, writer: Writer) -> None:
        self.storage = storage
        self.schemas = schemas
        self.writer = writer

    async def _ensure_class(self) -> None:
        if self.schemas.get(INSTALLATION) is None:
            await self.schemas.ensure_fields(INSTALLATION, {}, may_create_class=True)

    # --- writes ---------------------------------------------------------------------------------

    async def save(self, body: Any, auth: Auth, object_id: str | None = None,
                   info: CallInfo | None = None) -> SaveResult:
        """Create (``object_id`` None) or update an installation, with Parse's matching rules: a
        create may become an update of the installation it matches (``created`` False then)."""
        if auth.is_read_only:
            # Before the matching, which deletes duplicates (Parse Server refuses in RestWrite's constructor).
            raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)
        if not isinstance(body, dict):
            raise ParseError(Code.INVALID_JSON, "This object must be a JSON object.")
        if object_id is None and _truthy(body.get("objectId")):
            raise ParseError(Code.INVALID_KEY_NAME, "objectId is an invalid field name.")
        if object_id is not None and (not isinstance(object_id, str) or not object_id or len(object_id) > 120):
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        body = dict(body)
        device_token = _string_field(body, "deviceToken")
        given_id = _string_field(body, "installationId")
        device_type = _string_field(body, "deviceType")
        if object_id is None and not device_token and not given_id and not auth.installation_id:
            raise ParseError(MISSING_ID, "at least one ID field (deviceToken, installationId) "
                                         "must be specified in this operation")
        if device_token and len(device_token) == 64:
            device_token = body["deviceToken"] = device_token.lower()  # an APNs token, in hex
        if given_id:
            given_id = body["installationId"] = given_id.lower()
        installation_id = given_id
        if not installation_id and not auth.is_master and auth.installation_id:
            installation_id = auth.installation_id.lower()
        await self._ensure_class()
        target = object_id
        if not (object_id is not None and not device_token and not installation_id and not device_type):
            target = await self._match(body, auth, object_id, installation_id, given_id, device_token, device_type)
        if target is None:
            result = await self.writer.create(INSTALLATION, body, auth, trusted=True, info=info)
            return SaveResult(result.response, result.object_id, True)
        body.pop("objectId", None)
        body.pop("createdAt", None)
        result = await self.writer.update(INSTALLATION, target, body, auth, trusted=True, info=info)
        return SaveResult(result.response, target, False)

    async def _match(self, body: dict[str, Any], auth: Auth, object_id: str | None, installation_id: str | None,
                     given_id: str | None, device_token: str | None, device_type: str | None) -> str | None:
        """The installation the write goes to (None: a new one), after removing the installations
        whose device token it takes over."""
        schema = self.schemas.get(INSTALLATION)
        assert schema is not None
        wheres: list[ir.Node] = []
        if object_id is not None:
            wheres.append(ir.Compare(_OBJECT_ID, ir.EQ, object_id))
        if installation_id:
            wheres.append(ir.Compare(_INSTALLATION_ID, ir.EQ, installation_id))
        if device_token:
            wheres.append(ir.Compare(_DEVICE_TOKEN, ir.EQ, device_token))
        if not wheres:
            return object_id
        columns = ("objectId", "installationId", "deviceToken", "deviceType", "appIdentifier")
        records = await self.storage.find(schema, FindQuery(ir.disjoin(wheres), columns=columns), MASTER)
        object_id_match: dict[str, Any] | None = None
        installation_id_match: dict[str, Any] | None = None
        token_matches: list[dict[str, Any]] = []
        for record in records:
            if object_id is not None and record["objectId"] == object_id:
                object_id_match = record
            # As Parse Server's loose comparisons: a missing value equals a missing value.
            if record.get("installationId") == installation_id:
                installation_id_match = record
            if record.get("deviceToken") == device_token:
                token_matches.append(record)
        if object_id is not None:
            if object_id_match is None:
                raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found for update.")
            stored_id = object_id_match.get("installationId")
            if given_id and stored_id and given_id != stored_id:
                raise ParseError(ID_CHANGED, "installationId may not be changed in this operation")
            stored_token = object_id_match.get("deviceToken")
            if (device_token and stored_token and device_token != stored_token and not given_id
                    and not stored_id):
                raise ParseError(ID_CHANGED, "deviceToken may not be changed in this operation")
            if device_type and device_type != object_id_match.get("deviceType"):
                raise ParseError(ID_CHANGED, "deviceType may not be changed in this operation")
        id_match = object_id_match
        if installation_id and installation_id_match is not None:
            id_match = installation_id_match
        if object_id is None and not device_type and id_match is None:
            raise ParseError(MISSING_ID, "deviceType must be specified in this operation")
        app_identifier = body.get("appIdentifier") if _truthy(body.get("appIdentifier")) else None

        def holders(keep: Any) -> list[str]:
            """The other installations holding the device token (as Parse's delete query selects them)."""
            return [r["objectId"] for r in token_matches
                    if r.get("deviceToken") == device_token and keep(r)
                    and (app_identifier is None or r.get("appIdentifier") == app_identifier)]

        if id_match is None:
            if not token_matches:
                return None
            if len(token_matches) == 1 and (not token_matches[0].get("installationId") or not installation_id):
                return str(token_matches[0]["objectId"])  # the installation that holds the token
            if not given_id:
                raise ParseError(AMBIGUOUS_TOKEN,
                                 "Must specify installationId when deviceToken matches multiple Installation objects")
            # A new installation takes the token from the installations that held it.
            await self._delete(holders(lambda r: r.get("installationId") != installation_id))
            return None
        if len(token_matches) == 1 and not token_matches[0].get("installationId"):
            # The same device twice: the row holding the token survives, the other goes.
            survivor = token_matches[0]
            if survivor["objectId"] != id_match["objectId"]:
                await self._delete([id_match["objectId"]])
            return str(survivor["objectId"])
        if device_token and id_match.get("deviceToken") != device_token:
            # The installation takes a token over: the others holding it go.
            if given_id:
                await self._delete(holders(lambda r: r.get("installationId") != given_id))
            elif _truthy(body.get("objectId")) and body.get("objectId") == id_match["objectId"]:
                await self._delete(holders(lambda r: r["objectId"] != id_match["objectId"]))
        return str(id_match["objectId"])

    async def _delete(self, object_ids: list[str]) -> None:
        schema = self.schemas.get(INSTALLATION)
        assert schema is not None
        for object_id in object_ids:
            await self.storage.delete(schema, object_id, MASTER)

    async def delete(self, object_id: str, auth: Auth, info: CallInfo | None = None) -> None:
        if not auth.is_master:
            raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)
        await self.writer.delete(INSTALLATION, object_id, auth, trusted=True, info=info)

    @staticmethod
    def check_find(auth: Auth) -> None:
        """Clients may not query installations (Parse Server's enforceRoleSecurity)."""
        if not auth.is_master:
            raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)
