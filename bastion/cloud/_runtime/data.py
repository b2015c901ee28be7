"""The server-side data API's executors: ``cloud.Object``, ``cloud.Query``, ``cloud.User`` and
``cloud.Role`` read and write through the running server's own pipelines, in-process.

A call goes through the server's pipelines exactly as an HTTP request does: saves and destroys
through the object service of the class (``Objects.for_class``: the users, sessions and
installations services for their classes, else the writer), queries through the reader.
Class-level permissions, ACLs, protected fields and triggers all apply. It
acts as the public by default (Parse's server-side SDK without a session), as the master with
``use_master_key=True``, or as a user with ``session_token="r:..."`` (a trigger or function acts as
its caller with ``session_token=request.session_token``). Errors are ``cloud.Error``. The server is
the one whose request, handler or job is running (``context.current_server()``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from bastion.cloud._runtime.context import current_server
from bastion.cloud.errors import Error
from bastion.cloud.objects import Object
from bastion.core.auth import MASTER_AUTH, Auth, CallInfo
from bastion.core.system_classes import ROLE
from bastion.domain.read import FindRequest, Reader
from bastion.errors import Code, ParseError, Unauthorized

if TYPE_CHECKING:
    from bastion.cloud._runtime.runtime import CloudRuntime
    from bastion.cloud.query import Query
    from bastion.domain.objects import Objects
    from bastion.domain.schema_registry import SchemaRegistry
    from bastion.domain.users import Users
    from bastion.domain.write import Writer
    from bastion.ports.storage import StorageAdapter

_T = TypeVar("_T")

_ROLE_NAME = re.compile(r"^[0-9a-zA-Z\-_ ]+$")


@dataclass(frozen=True, slots=True)
class CloudServer:
    """The server cloud code runs in: its runtime, and the pipelines the data API goes through."""

    runtime: CloudRuntime
    storage: StorageAdapter
    schemas: SchemaRegistry
    reader: Reader
    writer: Writer
    users: Users
    objects: Objects
    file_url: Callable[[str], str]


async def auth_for(use_master_key: bool = False, session_token: str | None = None) -> Auth:
    """Who a data-API call acts as: the master key wins, then a session token, else the public."""
    if use_master_key:
        return MASTER_AUTH
    if session_token is not None:
        if not isinstance(session_token, str) or not session_token:
            raise Error(Code.INVALID_SESSION_TOKEN, "Invalid session token")
        return await _call(current_server().users.authenticate(Auth(), session_token))
    return Auth()


def _info(context: dict[str, Any] | None) -> CallInfo:
    if context is not None and not isinstance(context, dict):
        raise TypeError("context must be a dict")
    return CallInfo(context=dict(context or {}))


async def _call(awaitable: Awaitable[_T]) -> _T:
    """Await a pipeline call; its Parse errors come out as ``cloud.Error``."""
    try:
        return await awaitable
    except Error:
        raise
    except ParseError as exc:
        raise Error(exc.code, exc.message, exc.status) from None
    except Unauthorized as exc:
        raise Error(Code.OPERATION_FORBIDDEN, exc.message) from None


# --- objects -------------------------------------------------------------------------------------


def _check_role(obj: Object) -> None:
    """The Parse SDK's own checks of a role's name (the server checks only that it is unique)."""
    if "name" not in obj._changes:
        return
    name = obj._changes["name"]
    if obj.id and name != obj._server.get("name"):
        raise Error(Code.OTHER_CAUSE, "A role's name can only be set before it has been saved.")
    if not isinstance(name, str):
        raise Error(Code.OTHER_CAUSE, "A role's name must be a String.")
    if not _ROLE_NAME.match(name):
        raise Error(Code.OTHER_CAUSE, "A role's name can be only contain alphanumeric characters, _, -, and spaces.")


def _take_answer(obj: Object, response: dict[str, Any], created: bool) -> None:
    """A write's answer merged into the object, as the SDK takes it: the pending changes become
    server state, and the answer's fields (a trigger's changes, operations' results) win."""
    data = dict(response)
    deleted = [key for key, value in data.items() if isinstance(value, dict) and value.get("__op") == "Delete"]
    for key in deleted:
        del data[key]
    if created and "updatedAt" not in data and "createdAt" in data:
        data["updatedAt"] = data["createdAt"]
    obj._merge_server(data)
    for key in deleted:
        obj._server.pop(key, None)
    obj._server.pop("password", None)
    obj._existed = None


async def save(obj: Object, use_master_key: bool = False, session_token: str | None = None,
               context: dict[str, Any] | None = None) -> Object:
    server = current_server()
    auth = await auth_for(use_master_key, session_token)
    info = _info(context)
    if obj.class_name == ROLE:
        _check_role(obj)
    body = obj.changes()
    # A new user is a sign-up (the user then carries its session's token), a new session one a
    # user opens, a new installation may update the one it matches: as the routes of each class.
    objects = server.objects.for_class(obj.class_name)
    if obj.id is None:
        saved = await _call(objects.create(body, auth, info))
        response = saved.response if saved.created else {**saved.response, "objectId": saved.object_id}
        _take_answer(obj, response, created=True)
    else:
        _take_answer(obj, await _call(objects.update(obj.id, body, auth, info)), created=False)
    return obj


async def fetch(obj: Object, use_master_key: bool = False, session_token: str | None = None,
                include: list[str] | str | None = None, context: dict[str, Any] | None = None) -> Object:
    """The object as stored (as the caller may read it); pending changes are dropped, as the SDK does."""
    if not obj.id:
        raise Error(Code.MISSING_OBJECT_ID, "Object does not have an ID")
    server = current_server()
    auth = await auth_for(use_master_key, session_token)
    includes = [include] if isinstance(include, str) else list(include or [])
    data = await _call(server.reader.get(obj.class_name, obj.id, auth, include=includes, info=_info(context)))
    obj._server = {k: v for k, v in data.items() if k not in ("__type", "className")}
    obj._changes = {}
    obj._existed = None
    return obj


async def destroy(obj: Object, use_master_key: bool = False, session_token: str | None = None,
                  context: dict[str, Any] | None = None) -> None:
    if not obj.id:
        return  # as the SDK: an unsaved object has nothing to delete
    server = current_server()
    auth = await auth_for(use_master_key, session_token)
    await _call(server.objects.for_class(obj.class_name).delete(obj.id, auth, _info(context)))


async def fetch_all(objects: list[Object], use_master_key: bool = False, session_token: str | None = None,
                    include: list[str] | str | None = None, context: dict[str, Any] | None = None) -> list[Object]:
    """Fetches objects of one class with one query, as the SDK's fetchAll."""
    from bastion.cloud.query import Query

    objects = list(objects)
    if not objects:
        return objects
    class_name = objects[0].class_name
    for obj in objects:
        if obj.class_name != class_name:
            raise Error(Code.INVALID_CLASS_NAME, "All objects should be of the same class")
        if not obj.id:
            raise Error(Code.MISSING_OBJECT_ID, "All objects must have an ID")
    ids = list(dict.fromkeys(obj.id for obj in objects))
    query = Query(class_name).contained_in("objectId", ids).set_limit(len(ids))
    if include:
        query.include_key(*([include] if isinstance(include, str) else include))
    found = {o.id: o for o in await find(query, use_master_key, session_token, context)}
    for obj in objects:
        fresh = found.get(obj.id)
        if fresh is None:
            raise Error(Code.OBJECT_NOT_FOUND, "All objects must exist on the server.")
        obj._server = dict(fresh._server)
        obj._changes = {}
        obj._existed = None
    return objects


# --- users ---------------------------------------------------------------------------------------


async def log_in(username: str, password: str, use_master_key: bool = False) -> dict[str, Any]:
    auth = MASTER_AUTH if use_master_key else Auth()
    return await _call(current_server().users.log_in({"username": username, "password": password}, auth))


async def become(session_token: str) -> dict[str, Any]:
    return await _call(current_server().users.me(session_token))


async def log_out(session_token: str | None) -> None:
    await _call(current_server().users.log_out(session_token))


# --- queries -------------------------------------------------------------------------------------


async def find_raw(query: Query, request: FindRequest, use_master_key: bool, session_token: str | None,
                   context: dict[str, Any] | None) -> dict[str, Any]:
    auth = await auth_for(use_master_key, session_token)
    return await _call(current_server().reader.find(query.class_name, request, auth, info=_info(context)))


async def find(query: Query, use_master_key: bool = False, session_token: str | None = None,
               context: dict[str, Any] | None = None) -> list[Object]:
    response = await find_raw(query, query.to_find_request(), use_master_key, session_token, context)
    return [Object.from_json(query.class_name, data) for data in response["results"]]


async def count(query: Query, use_master_key: bool = False, session_token: str | None = None,
                context: dict[str, Any] | None = None) -> int:
    request = query.to_find_request(count=True)
    request.limit = 0
    response = await find_raw(query, request, use_master_key, session_token, context)
    found = response.get("count")
    return found if isinstance(found, int) else 0


async def distinct(query: Query, key: str) -> list[Any]:
    """As the SDK: distinct always runs with the master key (the REST route requires it)."""
    if not isinstance(key, str) or not key:
        raise Error(Code.INVALID_QUERY, "Invalid distinct value.")
    return await _call(current_server().reader.distinct(query.class_name, key, query.where or None, MASTER_AUTH))


async def aggregate(query: Query, pipeline: Any, use_master_key: bool = True,
                    session_token: str | None = None) -> list[dict[str, Any]]:
    """A pipeline over the class (the query's where first); the master key only, as the REST route."""
    from bastion.domain.aggregate_results import run_pipeline

    if not isinstance(pipeline, (list, dict)):
        raise TypeError("aggregate() takes a pipeline: a list of stages or a dict of them")
    auth = await auth_for(use_master_key, session_token)
    if not auth.is_master:
        raise Error(Code.OPERATION_FORBIDDEN, "Permission denied")  # the route's 403 "master key is required"
    server = current_server()
    return await _call(run_pipeline(server.storage, server.schemas, query.class_name, pipeline, query.where or None,
                                    auth, server.file_url, server.reader.options.query_limits))


async def each_batch(query: Query, callback: Callable[[list[Object]], Any], batch_size: int = 100,
                     use_master_key: bool = False, session_token: str | None = None,
                     context: dict[str, Any] | None = None) -> None:
    async for batch in batches(query, batch_size, use_master_key, session_token, context):
        result = callback(batch)
        if inspect.isawaitable(result):
            await result


async def batches(query: Query, batch_size: int = 100, use_master_key: bool = False,
                  session_token: str | None = None,
                  context: dict[str, Any] | None = None) -> AsyncIterator[list[Object]]:
    """Every object of the query, in batches ordered by objectId, as the SDK's eachBatch walks them."""
    if query.order or query.skip or query.limit is not None:
        raise Error(Code.INVALID_QUERY, "Cannot iterate on a query with sort, skip, or limit.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError("batch_size must be a positive number")
    auth = await auth_for(use_master_key, session_token)
    server = current_server()
    base = query.to_find_request()
    last: str | None = None
    while True:
        where = dict(base.where or {})
        if last is not None:
            where = {"$and": [where, {"objectId": {"$gt": last}}]} if where else {"objectId": {"$gt": last}}
        request = FindRequest(where=where or None, order="objectId", limit=batch_size, keys=base.keys,
                              exclude_keys=list(base.exclude_keys), include=list(base.include))
        response = await _call(server.reader.find(query.class_name, request, auth, info=_info(context)))
        results = [Object.from_json(query.class_name, data) for data in response["results"]]
        if results:
            yield results
        if len(results) < batch_size:
            return
        last = results[-1].id
