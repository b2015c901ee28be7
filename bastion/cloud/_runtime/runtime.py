"""Runs cloud code for the server: functions, and the triggers the read and write pipelines call.

The pipelines ask ``has(kind, class_name)`` first (a dict lookup), so a class without triggers pays
nothing. A handler's validator runs first; ``cloud.Error`` (any ParseError) reaches the client as it
is; any other exception is logged with its traceback and reaches the client as Parse Server answers
a thrown error: 141 with the exception's message (142 from a validator).
"""

from __future__ import annotations

import base64
import copy
import inspect
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from bastion.cloud._runtime import run_log
from bastion.cloud._runtime.context import current_server
from bastion.cloud._runtime.registry import EVERY_EVENT, TRACK_EVENT, CloudRegistry, Registered
from bastion.cloud._runtime.webhooks import Webhooks
from bastion.cloud.acl import ACL
from bastion.cloud.errors import (
    SCRIPT_FAILED,
    TRIGGER_FAILED,
    VALIDATION_FAILED,
    ScriptFailure,
    exception_message,
)
from bastion.cloud.objects import Object, decode, encode
from bastion.cloud.query import Query
from bastion.cloud.request import (
    AuthTriggerRequest,
    EventRequest,
    FindTriggerRequest,
    FunctionRequest,
    LiveQueryRequest,
    ObjectTriggerRequest,
    Request,
)
from bastion.cloud.system_classes import Session, User
from bastion.core.auth import MASTER_AUTH, Auth, CallInfo
from bastion.core.system_classes import SESSION, USER
from bastion.domain.read import FindRequest
from bastion.errors import Code, ParseError

if TYPE_CHECKING:
    from bastion.ports.tables import HooksTable

log = logging.getLogger("bastion.cloud")
_ABSENT = object()
_R = TypeVar("_R", bound=Request)


def _user_from_json(data: dict[str, Any]) -> User:
    # from_json builds the class registered for "_User": User, unless cloud code registered its own.
    return cast(User, User.from_json(USER, data))


def encode_result(value: Any) -> Any:
    """A function's return value as Parse encodes it: objects in full, with their class."""
    if isinstance(value, Object):
        if value.id and (value.dirty() or len(value._server) < 2):
            return value.to_pointer()  # as the Parse SDK encodes an object with unsaved changes
        return {key: encode_result(item) if isinstance(item, (list, dict)) else item
                for key, item in value.to_full_json().items()}
    if isinstance(value, (datetime, ACL)):
        return encode(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__type": "Bytes", "base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, (list, tuple)):
        return [encode_result(item) for item in value]
    if isinstance(value, dict):
        return {str(key): encode_result(item) for key, item in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot send a {type(value).__name__} to the client")


def _event_time(value: Any) -> datetime | None:
    """An event's ``at``: a Date (decoded already) or an ISO 8601 text; None when it is neither."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


class CloudRuntime:
    def __init__(self, registry: CloudRegistry | None = None, *, hooks_table: HooksTable,
                 webhook_key: str | None = None) -> None:
        # Functions and triggers served by URLs (/hooks), over the code's; kept in the _Hooks table.
        self.webhooks = Webhooks(self, hooks_table, webhook_key)
        self.registry = registry or CloudRegistry()

    @property
    def registry(self) -> CloudRegistry:
        """What runs: the cloud code's functions, jobs and triggers with the webhooks over them."""
        return self._registry

    @registry.setter
    def registry(self, code: CloudRegistry) -> None:
        self.code_registry = code  # the cloud code alone (swapped whole by a --dev reload)
        self._registry = self.webhooks.merged(code)

    # --- lookups (hot path) ---------------------------------------------------------------------

    def has(self, kind: str, class_name: str) -> bool:
        return (kind, class_name) in self._registry.triggers

    # --- invoking -------------------------------------------------------------------------------

    def request_for(self, kind: type[_R], auth: Auth, info: CallInfo | None, **fields: Any) -> _R:
        """The request of a handler of ``kind`` (FunctionRequest, ObjectTriggerRequest, ...)."""
        info = info or CallInfo()
        user = _user_from_json(auth.user) if auth.user else None
        return kind(user=user, master=auth.is_master, installation_id=auth.installation_id,
                       session_token=auth.session_token, headers=info.headers, ip=info.ip,
                       context=info.context, **fields)

    async def invoke(self, entry: Registered, request: Request, auth: Auth) -> Any:
        """Validator, rate limit, then the handler; errors as the client should see them. A trigger's
        run or failure is logged as Parse Server logs it (``run_log.py``)."""
        kind = request.trigger_name
        if kind not in run_log.LOGGED_TRIGGERS:
            return await self._invoke(entry, request, auth)
        assert kind is not None
        class_name = entry.name.rsplit(" ", 1)[-1]  # "<trigger> <class>", or "webhook <trigger> <class>"
        # The input as given, when runs are logged; a failure alone is logged with the input as left.
        runs_logged = run_log.runs_logged()
        given = run_log.trigger_input(request) if runs_logged else None
        try:
            result = await self._invoke(entry, request, auth)
        except ParseError as exc:
            run_log.trigger_failed(kind, class_name, request,
                                   given if runs_logged else run_log.trigger_input(request), exc)
            raise
        if runs_logged:
            run_log.trigger_ran(kind, class_name, request, given, result)
        return result

    async def _invoke(self, entry: Registered, request: Request, auth: Auth) -> Any:
        # The handler's data API calls go to the server the caller runs in (``context.running``).
        return await self._validate_and_run(entry, request, auth)

    async def _validate_and_run(self, entry: Registered, request: Request, auth: Auth) -> Any:
        await self._complete_user(request, auth)
        validator = entry.validator
        if validator is not None:
            if validator.skip_with_master_key and auth.is_master:
                return None
            if validator.rate_limit is not None:
                validator.rate_limit.check(ip=request.ip, user_id=auth.user_id,
                                           session_token=auth.session_token, master=auth.is_master)
            try:
                await validator.check(request, self._roles(auth))
            except ParseError:
                raise
            except Exception as exc:  # noqa: BLE001 - a custom validator's own failure
                # As Parse Server: 142 with the exception's message ("Validation failed." without one).
                log.exception("validator of %s failed", entry.name)
                raise ScriptFailure(exception_message(exc), VALIDATION_FAILED, Code.VALIDATION_ERROR) from None
        try:
            if entry.is_async:
                return await entry.fn(request)
            result = entry.fn(request)
            if inspect.isawaitable(result):
                result = await result
            return result
        except ParseError:
            raise
        except Exception as exc:  # noqa: BLE001 - the client gets a Parse error, the log the traceback
            # As Parse Server's resolveError: 141 with the exception's message; without one, a
            # function says "Script failed." and a trigger "Script failed. Unknown error.".
            log.exception("cloud code %s failed", entry.name)
            fallback = TRIGGER_FAILED if request.trigger_name else SCRIPT_FAILED
            raise ScriptFailure(exception_message(exc), fallback) from None

    async def _complete_user(self, request: Request, auth: Auth) -> None:
        """A session names only its user's id: cloud code gets the whole user (as the master key
        reads it, so with its email and fields, never a password) and its session token."""
        user = request.user
        if user is None or "username" in user._server or not user.id:
            return
        stored = await current_server().reader.load(USER, user.id, MASTER_AUTH)
        if stored is not None:
            user._server.update(stored)
        if auth.session_token:
            user._server["sessionToken"] = auth.session_token

    @staticmethod
    def _roles(auth: Auth) -> Any:
        async def names() -> list[str]:
            return list(auth.roles)
        return names

    # --- functions ------------------------------------------------------------------------------

    async def run_function(self, name: str, params: Any, auth: Auth, info: CallInfo | None) -> dict[str, Any]:
        """The function's answer: ``{"result": …}``, or ``{}`` when the function returns nothing
        (no ``return <value>`` in its code: Parse's ``undefined``, see cloud/_runtime/returns.py)."""
        entry = self.registry.functions.get(name)
        if entry is None:
            await self.webhooks.reload_on_miss()  # another process may have just registered it
            entry = self.registry.functions.get(name)
        if entry is None:
            raise ParseError(Code.SCRIPT_FAILED, f'Invalid function: "{name}"')
        if not isinstance(params, dict):
            params = {}
        request = self.request_for(FunctionRequest, auth, info, function_name=name, params=decode(params))
        try:
            result = await self.invoke(entry, request, auth)
            if result is None and not entry.returns_value:
                answer: dict[str, Any] = {}
            else:
                try:
                    answer = {"result": encode_result(result)}
                except TypeError:
                    log.exception("cloud function %s returned a value that is not JSON", name)
                    raise ParseError(Code.SCRIPT_FAILED, SCRIPT_FAILED) from None
        except ParseError as exc:
            run_log.function_failed(name, request, params, exc)
            raise
        run_log.function_ran(name, request, params, answer.get("result"))
        return answer

    # --- object triggers ------------------------------------------------------------------------

    async def before_save(self, class_name: str, body: dict[str, Any], original: dict[str, Any] | None,
                          auth: Auth, info: CallInfo | None) -> tuple[dict[str, Any], list[str]]:
        """The body after the class's before_save trigger changed the object, and the keys it changed."""
        entry = self.registry.triggers[("beforeSave", class_name)]
        obj = Object.from_json(class_name, copy.deepcopy(original) if original else {})
        obj._existed = original is not None
        obj._changes = copy.deepcopy(body)
        request = self.request_for(ObjectTriggerRequest, auth, info, trigger_name="beforeSave", object=obj,
                                   original=Object.from_json(class_name, original) if original else None)
        await self.invoke(entry, request, auth)
        new_body = obj.changes()
        changed = [key for key, value in new_body.items() if body.get(key, _ABSENT) != value]
        return new_body, changed

    async def after_save(self, class_name: str, saved: dict[str, Any], original: dict[str, Any] | None,
                         auth: Auth, info: CallInfo | None) -> None:
        """As Parse Server: awaited before the answer, but its failure only reaches the log."""
        entry = self.registry.triggers[("afterSave", class_name)]
        obj = Object.from_json(class_name, saved)
        obj._existed = original is not None
        request = self.request_for(ObjectTriggerRequest, auth, info, trigger_name="afterSave", object=obj,
                                   original=Object.from_json(class_name, original) if original else None)
        try:
            await self.invoke(entry, request, auth)
        except ParseError as exc:
            log.warning("afterSave %s caught an error: %s %s", class_name, exc.code, exc.message)

    async def before_delete(self, class_name: str, stored: dict[str, Any], auth: Auth,
                            info: CallInfo | None) -> None:
        entry = self.registry.triggers[("beforeDelete", class_name)]
        request = self.request_for(ObjectTriggerRequest, auth, info, trigger_name="beforeDelete",
                                   object=Object.from_json(class_name, stored))
        await self.invoke(entry, request, auth)

    async def after_delete(self, class_name: str, stored: dict[str, Any], auth: Auth,
                           info: CallInfo | None) -> None:
        entry = self.registry.triggers[("afterDelete", class_name)]
        request = self.request_for(ObjectTriggerRequest, auth, info, trigger_name="afterDelete",
                                   object=Object.from_json(class_name, stored))
        await self.invoke(entry, request, auth)

    # --- login and logout triggers -------------------------------------------------------------

    async def login_trigger(self, kind: str, user: dict[str, Any], auth: Auth, info: CallInfo | None) -> None:
        """before_login / after_login with the user (a copy: changes are ignored, as in Parse
        Server). after_login's user, with its new session token, is also ``request.user``."""
        entry = self.registry.triggers[(kind, USER)]
        obj = _user_from_json(copy.deepcopy(user))
        request = self.request_for(AuthTriggerRequest, auth, info, trigger_name=kind, object=obj)
        if kind == "afterLogin":
            request.user = obj
            request.session_token = user.get("sessionToken")
        await self.invoke(entry, request, auth)

    async def after_logout(self, session: dict[str, Any], auth: Auth, info: CallInfo | None) -> None:
        """after_logout with the revoked session (its stored record)."""
        entry = self.registry.triggers[("afterLogout", SESSION)]
        stored = Session.from_json(SESSION, current_server().reader.encode_record(SESSION, session))
        request = self.request_for(AuthTriggerRequest, auth, info, trigger_name="afterLogout", object=stored)
        await self.invoke(entry, request, auth)

    # --- find triggers --------------------------------------------------------------------------

    async def before_find(self, class_name: str, find: FindRequest, auth: Auth, info: CallInfo | None,
                          is_get: bool = False) -> FindRequest:
        """The find after the class's before_find trigger changed (or replaced) its query."""
        entry = self.registry.triggers[("beforeFind", class_name)]
        query = Query.from_find_request(class_name, find)
        request = self.request_for(FindTriggerRequest, auth, info, trigger_name="beforeFind", query=query,
                                   is_get=is_get, count=find.count)
        result = await self.invoke(entry, request, auth)
        if isinstance(result, Query):
            if result.class_name != class_name:
                raise ParseError(Code.SCRIPT_FAILED, "beforeFind may not change the class of a query.")
            query = result
        if not isinstance(query.where, dict):
            raise ParseError(Code.INVALID_QUERY, "Invalid where, must be an object.")
        return query.to_find_request(count=find.count)

    async def after_find(self, class_name: str, results: list[dict[str, Any]], auth: Auth,
                         info: CallInfo | None, is_get: bool = False) -> list[dict[str, Any]]:
        entry = self.registry.triggers[("afterFind", class_name)]
        objects = [Object.from_json(class_name, obj) for obj in results]
        request = self.request_for(FindTriggerRequest, auth, info, trigger_name="afterFind", objects=objects,
                                   is_get=is_get)
        result = await self.invoke(entry, request, auth)
        if result is not None:
            if not isinstance(result, list) or not all(isinstance(o, (Object, dict)) for o in result):
                log.error("afterFind %s returned %s, not a list of objects", class_name, type(result).__name__)
                raise ParseError(Code.SCRIPT_FAILED, SCRIPT_FAILED)
            objects = result
        return [obj.to_json() if isinstance(obj, Object) else obj for obj in objects]

    # --- LiveQuery triggers ---------------------------------------------------------------------

    async def before_connect(self, auth: Auth, info: CallInfo | None, **fields: Any) -> None:
        """before_connect: raising refuses the LiveQuery connection (the client gets the error)."""
        entry = self.registry.triggers[("beforeConnect", "@Connect")]
        request = self.request_for(LiveQueryRequest, auth, info, trigger_name="beforeConnect", event="connect",
                                   use_master_key=auth.is_master, **fields)
        await self.invoke(entry, request, auth)

    async def before_subscribe(self, class_name: str, where: dict[str, Any], keys: list[str] | None,
                               watch: list[str] | None, auth: Auth, info: CallInfo | None,
                               **fields: Any) -> tuple[dict[str, Any], list[str] | None, list[str] | None]:
        """before_subscribe: may refuse (raise) or change ``request.query`` (a cloud.Query; its
        ``watch`` attribute holds the watched fields). The query's where, keys and watch after it."""
        entry = self.registry.triggers[("beforeSubscribe", class_name)]
        query = Query(class_name)
        query.where = copy.deepcopy(where)
        query.keys = list(keys) if keys else None
        query.watch = list(watch) if watch else None  # type: ignore[attr-defined]
        request = self.request_for(LiveQueryRequest, auth, info, trigger_name="beforeSubscribe", query=query,
                                   **fields)
        result = await self.invoke(entry, request, auth)
        if isinstance(result, Query):
            request.query = result
        final = request.query
        if not isinstance(final, Query) or final.class_name != class_name:
            raise ParseError(Code.SCRIPT_FAILED, "beforeSubscribe may not change the class of a query.")
        if not isinstance(final.where, dict):
            raise ParseError(Code.INVALID_QUERY, "Invalid where, must be an object.")
        new_watch = getattr(final, "watch", None)
        return final.where, list(final.keys) if final.keys else None, list(new_watch) if new_watch else None

    async def after_event(self, class_name: str, event: str, obj: dict[str, Any], original: dict[str, Any] | None,
                          auth: Auth, info: CallInfo | None,
                          **fields: Any) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """after_event for one subscriber's event: ``request.object`` (and ``original``) may be changed;
        ``request.send_event = False`` drops the event (None)."""
        entry = self.registry.triggers[("afterEvent", class_name)]
        request = self.request_for(LiveQueryRequest, auth, info, trigger_name="afterEvent", event=event,
                                   object=Object.from_json(class_name, obj),
                                   original=Object.from_json(class_name, original) if original is not None else None,
                                   send_event=True, **fields)
        await self.invoke(entry, request, auth)
        if not request.send_event:
            return None

        def out(value: Any) -> dict[str, Any] | None:
            if isinstance(value, Object):
                return {**value.to_json(), "className": value.class_name}
            return value if isinstance(value, dict) else None

        return out(request.object) or {}, out(request.original)

    # --- analytics ------------------------------------------------------------------------------

    async def track_event(self, event_name: str, body: Any, auth: Auth, info: CallInfo | None) -> None:
        """An analytics event (POST /events/<name>) for cloud code's track_event handler of that
        event, else the one for every event. As Parse Server's analytics controller, its failure
        never reaches the client: it is logged."""
        triggers = self.registry.triggers
        entry = triggers.get((TRACK_EVENT, event_name)) or triggers.get((TRACK_EVENT, EVERY_EVENT))
        if entry is None:
            return
        params = decode(body) if isinstance(body, dict) else {}
        dimensions = params.get("dimensions")
        request = self.request_for(EventRequest, auth, info, trigger_name=TRACK_EVENT, event_name=event_name,
                                   params=params,
                                   dimensions=dimensions if isinstance(dimensions, dict) else {},
                                   at=_event_time(params.get("at")))
        try:
            await self.invoke(entry, request, auth)
        except ParseError as exc:
            log.warning("track_event %s failed: %s %s", event_name, exc.code, exc.message)
