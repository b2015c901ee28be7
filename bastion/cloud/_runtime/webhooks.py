"""Webhooks: cloud functions and triggers served by an external URL, as Parse Server's hooks API.

The master key registers them (``/hooks/functions``, ``/hooks/triggers``); they live in the
database's ``_Hooks`` table (Parse Server's: functionName, className, triggerName, url), so every
process sharing the database serves them. Each process keeps them in memory as ``Registered``
entries merged over its cloud code (``merged``: a webhook wins over a Python handler of the same
name, and removing the webhook brings the handler back). The set is re-read at start, after each
change made here, at most every ``REFRESH_SECONDS`` in the background while requests arrive, when
a function is not found (another process may have just registered it), and at once when another
process tells of a change through the pub/sub adapter (the ``changed`` hook, bastion/invalidation.py).

Calling one is an HTTP POST of the request as JSON (``params``, ``user``, ``master``, ``object``,
``original``, ``triggerName``, …, as Parse Server's HooksController sends it) with the
``X-Parse-Webhook-Key`` header when ``--webhook-key`` is set. The answer ``{"success": value}`` is
the result (a before_save's value is the object to save); ``{"error": message}``, a failed request
and an answer that is not JSON become 141 errors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import orjson

from bastion.cloud._runtime.registry import CloudRegistry, Registered
from bastion.cloud.acl import ACL
from bastion.cloud.objects import Object, encode
from bastion.core import events
from bastion.core.events import WebhooksChanged
from bastion.core.system_classes import PUSH_STATUS, SESSION, USER
from bastion.errors import Code, DatabaseUnavailable, ParseError

if TYPE_CHECKING:
    from bastion.cloud._runtime.runtime import CloudRuntime
    from bastion.cloud.request import Request
    from bastion.ports.tables import HooksTable

log = logging.getLogger("bastion.cloud")

# Parse Server's trigger types (triggers.Types): a webhook trigger must have one of these names.
TRIGGER_NAMES = frozenset({
    "beforeLogin", "afterLogin", "afterLogout", "beforePasswordResetRequest", "beforeSave", "afterSave",
    "beforeDelete", "afterDelete", "beforeFind", "afterFind", "beforeConnect", "beforeSubscribe", "afterEvent",
})
REFRESH_SECONDS = 5.0  # other processes' changes are seen within this (and at once for a missing function)
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_NAME_LENGTH = 1024
# Request headers never forwarded to a webhook.
SECRET_HEADERS = frozenset({"x-parse-master-key", "x-parse-maintenance-key"})
# Keys of a before_save webhook's answer that are not fields to save (Parse Server drops them too).
_NOT_FIELDS = frozenset({"objectId", "createdAt", "updatedAt", "className", "__type"})
_ABSENT = object()


def invalid() -> ParseError:
    return ParseError(Code.INVALID_IMAGE_DATA, "invalid hook declaration")  # 143, Parse's webhook error


@dataclass(frozen=True, slots=True)
class Hook:
    url: str
    function_name: str | None = None
    class_name: str | None = None
    trigger_name: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Hook | None:
        url = row.get("url")
        if not isinstance(url, str) or not url:
            return None
        if row.get("functionName"):
            return cls(url, function_name=str(row["functionName"]))
        if row.get("className") and row.get("triggerName"):
            return cls(url, class_name=str(row["className"]), trigger_name=str(row["triggerName"]))
        return None

    def row(self) -> dict[str, str]:
        if self.function_name:
            return {"functionName": self.function_name, "url": self.url}
        return {"className": self.class_name or "", "triggerName": self.trigger_name or "", "url": self.url}

    def to_json(self) -> dict[str, str]:
        """As Parse Server answers a hook: ``{functionName, url}`` or ``{className, triggerName, url}``."""
        return self.row()


def check_trigger_class(trigger_name: str, class_name: str) -> None:
    """Parse Server's validateClassNameForTriggers (which Parse answers with a 500; here a 143)."""
    message = None
    if trigger_name == "beforeSave" and class_name == PUSH_STATUS:
        message = "Only afterSave is allowed on _PushStatus"
    elif trigger_name in ("beforeLogin", "afterLogin", "beforePasswordResetRequest") and class_name != USER:
        message = ("Only the _User class is allowed for the beforeLogin, afterLogin, and "
                   "beforePasswordResetRequest triggers")
    elif trigger_name == "afterLogout" and class_name != SESSION:
        message = "Only the _Session class is allowed for the afterLogout trigger."
    elif class_name == SESSION and trigger_name != "afterLogout":
        message = "Only the afterLogout trigger is allowed for the _Session class."
    if message:
        raise ParseError(Code.INVALID_IMAGE_DATA, message)


def _text(value: Any) -> str | None:
    """A name or URL of a hook declaration: a non-empty string (None when absent or empty)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH * 8:
        raise invalid()
    return value


def declared(body: dict[str, Any]) -> Hook:
    """The hook a declaration describes, checked as Parse Server's createOrUpdateHook checks it; only
    http and https URLs are taken (Parse Server takes any and fails each call)."""
    url = _text(body.get("url"))
    function_name = _text(body.get("functionName"))
    class_name = _text(body.get("className"))
    trigger_name = _text(body.get("triggerName"))
    if url is None:
        raise invalid()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid()
    if function_name:
        if len(function_name) > MAX_NAME_LENGTH:
            raise invalid()
        return Hook(url, function_name=function_name)
    if class_name and trigger_name in TRIGGER_NAMES:
        if len(class_name) > MAX_NAME_LENGTH:
            raise invalid()
        check_trigger_class(trigger_name, class_name)
        return Hook(url, class_name=class_name, trigger_name=trigger_name)
    raise invalid()


class Webhooks:
    """The webhooks of one process: their store, their merged registry and their HTTP calls."""

    def __init__(self, runtime: CloudRuntime, storage: HooksTable, webhook_key: str | None) -> None:
        self.runtime = runtime
        self.storage = storage
        self.webhook_key = webhook_key
        self.hooks: list[Hook] = []
        self.functions: dict[str, Registered] = {}
        self.triggers: dict[tuple[str, str], Registered] = {}
        self._lock = asyncio.Lock()
        self._read_started = float("-inf")
        self._loaded_at = float("-inf")
        self._refresh: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._warned_no_key = False
        # After this process changed the stored hooks (other processes re-read them).
        self.changed: events.Hook[WebhooksChanged] = events.Hook("webhooks changed")

    # --- the registry the runtime consults --------------------------------------------------------

    def merged(self, code: CloudRegistry) -> CloudRegistry:
        """The code's registry with the webhooks over it (the code's own object when there are none)."""
        if not self.functions and not self.triggers:
            return code
        return CloudRegistry(functions={**code.functions, **self.functions}, jobs=code.jobs,
                             triggers={**code.triggers, **self.triggers}, source=code.source,
                             object_classes=code.object_classes)

    def _install(self, hooks: list[Hook]) -> None:
        if hooks == self.hooks:
            return
        functions: dict[str, Registered] = {}
        triggers: dict[tuple[str, str], Registered] = {}
        for hook in hooks:
            if hook.function_name:
                functions.setdefault(hook.function_name, self._entry(hook))
            elif hook.class_name and hook.trigger_name:
                triggers.setdefault((hook.trigger_name, hook.class_name), self._entry(hook))
        self.hooks = hooks
        self.functions, self.triggers = functions, triggers
        self.runtime.registry = self.runtime.code_registry  # re-merges the code with these

    # --- reading the store --------------------------------------------------------------------------

    async def load(self) -> list[Hook]:
        """Re-read every hook from the database and serve them; the hooks."""
        async with self._lock:
            return await self._load_locked()

    async def _load_locked(self) -> list[Hook]:
        self._read_started = time.monotonic()
        try:
            rows = await self.storage.load_hooks()
        finally:
            self._loaded_at = time.monotonic()
        hooks = [hook for hook in (Hook.from_row(row) for row in rows) if hook is not None]
        self._install(hooks)
        return hooks

    def refresh_if_stale(self) -> None:
        """Called for every request: re-reads the hooks in the background when they are older than
        REFRESH_SECONDS (another process may have changed them)."""
        if self._refresh is None and time.monotonic() - self._loaded_at >= REFRESH_SECONDS:
            self._refresh = asyncio.get_running_loop().create_task(self._background_load())

    async def _background_load(self) -> None:
        try:
            await self.load()
        except DatabaseUnavailable:  # the storage logged the outage once; the hooks in memory serve
            pass
        except Exception:  # noqa: BLE001 - the hooks already in memory keep serving
            log.exception("could not re-read the webhooks")
        finally:
            self._refresh = None

    async def reload_on_miss(self) -> None:
        """A function was not found: re-read the hooks, unless a read that began after the call
        arrived has already finished (concurrent misses share one read)."""
        arrived = time.monotonic()
        async with self._lock:
            if self._read_started >= arrived:
                return
            try:
                await self._load_locked()
            except Exception:  # noqa: BLE001 - answered as a missing function
                log.exception("could not re-read the webhooks")

    # --- the hooks API ---------------------------------------------------------------------------

    async def functions_list(self) -> list[Hook]:
        return [hook for hook in await self.load() if hook.function_name]

    async def triggers_list(self) -> list[Hook]:
        return [hook for hook in await self.load() if hook.class_name]

    async def get_function(self, name: str) -> Hook | None:
        return next((hook for hook in await self.functions_list() if hook.function_name == name), None)

    async def get_trigger(self, class_name: str, trigger_name: str) -> Hook | None:
        return next((hook for hook in await self.triggers_list()
                     if hook.class_name == class_name and hook.trigger_name == trigger_name), None)

    async def create(self, body: dict[str, Any]) -> Hook:
        """Parse Server's createHook: a new function or trigger webhook (143 when it exists)."""
        function_name, class_name, trigger_name = (body.get("functionName"), body.get("className"),
                                                   body.get("triggerName"))
        if function_name:
            if isinstance(function_name, str) and await self.get_function(function_name):
                raise ParseError(Code.INVALID_IMAGE_DATA, f"function name: {function_name} already exists")
        elif class_name and trigger_name:
            if (isinstance(class_name, str) and isinstance(trigger_name, str)
                    and await self.get_trigger(class_name, trigger_name)):
                raise ParseError(Code.INVALID_IMAGE_DATA, f"class {class_name} already has trigger {trigger_name}")
        else:
            raise invalid()
        return await self._save(declared(body))

    async def update_function(self, name: str, url: Any) -> Hook:
        if not url:
            raise invalid()
        if await self.get_function(name) is None:
            raise ParseError(Code.INVALID_IMAGE_DATA, f"no function named: {name} is defined")
        return await self._save(declared({"functionName": name, "url": url}))

    async def update_trigger(self, class_name: str, trigger_name: str, url: Any) -> Hook:
        if not url:
            raise invalid()
        if await self.get_trigger(class_name, trigger_name) is None:
            raise ParseError(Code.INVALID_IMAGE_DATA, f"class {class_name} does not exist")
        return await self._save(declared({"className": class_name, "triggerName": trigger_name, "url": url}))

    async def delete_function(self, name: str) -> None:
        await self._delete({"functionName": name})

    async def delete_trigger(self, class_name: str, trigger_name: str) -> None:
        await self._delete({"className": class_name, "triggerName": trigger_name})

    async def _save(self, hook: Hook) -> Hook:
        async with self._lock:
            await self.storage.save_hook(hook.row())
            await self._load_locked()
        await self._changed()
        return hook

    async def _delete(self, key: dict[str, str]) -> None:
        async with self._lock:
            deleted = await self.storage.delete_hooks(key)
            await self._load_locked()
        if deleted:
            await self._changed()
        if not deleted:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")

    async def _changed(self) -> None:
        if self.changed:
            await self.changed.emit_async(WebhooksChanged())

    # --- calling out -----------------------------------------------------------------------------

    def _entry(self, hook: Hook) -> Registered:
        async def call(request: Request) -> Any:
            return await self.call(hook, request)
        name = f"webhook {hook.function_name}" if hook.function_name else \
            f"webhook {hook.trigger_name} {hook.class_name}"
        return Registered(name, call, True)

    async def call(self, hook: Hook, request: Request) -> Any:
        """Runs the webhook for ``request``; what the handler of its kind would return."""
        result = await self.post(hook.url, request_json(request))
        trigger = hook.trigger_name
        if trigger is None:
            return result
        if trigger == "beforeSave":
            if isinstance(result, dict) and request.object is not None:
                apply_saved_object(request.object, result)
            return None
        if trigger == "afterFind" and isinstance(result, list) and all(isinstance(o, dict) for o in result):
            return [{k: v for k, v in obj.items() if k not in ("className", "__type")} for obj in result]
        return None

    async def post(self, url: str, body: dict[str, Any]) -> Any:
        """POSTs ``body``; the answer's ``success`` value, or the 141 error it stands for."""
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise ParseError(Code.SCRIPT_FAILED, f"Unsupported protocol {scheme}:")
        headers = {"Content-Type": "application/json"}
        key = self.webhook_key
        if key:
            headers["X-Parse-Webhook-Key"] = key
        elif not self._warned_no_key:
            self._warned_no_key = True
            log.warning("making outgoing webhook requests without a webhook key (set --webhook-key)")
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        try:
            response = await self._client.post(url, content=orjson.dumps(body, default=_json_default),
                                               headers=headers)
        except httpx.HTTPError as exc:
            log.warning("webhook %s failed: %s", _for_log(url), exc.__class__.__name__)
            raise ParseError(Code.SCRIPT_FAILED, "Webhook request failed.") from None
        try:
            answer = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            log.warning("webhook %s answered HTTP %s with a body that is not JSON", _for_log(url),
                        response.status_code)
            raise ParseError(Code.SCRIPT_FAILED, "Malformed response") from None
        error = answer.get("error") if isinstance(answer, dict) else None
        if error:
            raise ParseError(Code.SCRIPT_FAILED, _message(error))
        if not 200 <= response.status_code < 400:
            log.warning("webhook %s answered HTTP %s", _for_log(url), response.status_code)
            raise ParseError(Code.SCRIPT_FAILED, "Webhook request failed.")
        return answer.get("success") if isinstance(answer, dict) else None

    async def close(self) -> None:
        refresh, self._refresh = self._refresh, None
        if refresh is not None:
            refresh.cancel()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


# --- the request as JSON, and the answer taken in ------------------------------------------------


def object_json(obj: Object) -> dict[str, Any]:
    """An object as the Parse SDK's toJSON gives it in a trigger: its stored fields with the pending
    changes over them as they are (operations included), and its class."""
    data = {key: value for key, value in obj._server.items() if not key.startswith("_")}
    data.update(obj._changes)
    data["className"] = obj.class_name
    return data


def _query_json(query: Any) -> dict[str, Any]:
    """A Parse.Query's toJSON."""
    data: dict[str, Any] = {"where": query.where or {}}
    if query.limit is not None and query.limit >= 0:
        data["limit"] = query.limit
    if query.skip:
        data["skip"] = query.skip
    if query.order:
        data["order"] = query.order
    if query.keys is not None:
        data["keys"] = ",".join(query.keys)
    if query.include:
        data["include"] = ",".join(query.include)
    if query.exclude_keys:
        data["excludeKeys"] = ",".join(query.exclude_keys)
    return data


def plain_json(value: Any) -> Any:
    """A decoded value as JSON.stringify gives it in Parse Server: dates as ISO strings, objects as
    their REST JSON (without class), ACLs as JSON."""
    if isinstance(value, datetime):
        return encode(value)["iso"]
    if isinstance(value, Object):
        return value.to_json()
    if isinstance(value, ACL):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [plain_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain_json(item) for key, item in value.items()}
    return value


def request_json(request: Request) -> dict[str, Any]:
    """The body of a webhook call, as Parse Server's wrapToHTTPRequest builds it from the request
    (the request's headers without the master key)."""
    body: dict[str, Any] = {"master": request.master,
                            "isReadOnly": bool(getattr(request, "is_read_only", False))}
    if request.function_name is not None:
        body["functionName"] = request.function_name
        body["params"] = plain_json(request.params)
    if request.trigger_name is not None:
        body["triggerName"] = request.trigger_name
    if request.user is not None:
        body["user"] = request.user.to_json()
    if request.installation_id:
        body["installationId"] = request.installation_id
    if request.object is not None:
        body["object"] = object_json(request.object)
    if request.original is not None:
        body["original"] = object_json(request.original)
    if request.query is not None:
        body["query"] = _query_json(request.query)
        body["count"] = request.count
        body["isGet"] = request.is_get
    if request.objects is not None:
        body["objects"] = [obj.to_json() if isinstance(obj, Object) else obj for obj in request.objects]
        body["isGet"] = request.is_get
    body["headers"] = {k: v for k, v in request.headers.items() if k.lower() not in SECRET_HEADERS}
    body["ip"] = request.ip
    body["context"] = plain_json(request.context or {})
    return body


def apply_saved_object(obj: Object, answer: dict[str, Any]) -> None:
    """A before_save webhook answered the object to save: as Parse Server, it replaces the write's
    body (fields it leaves out are not written; its server fields are ignored). Fields equal to the
    stored ones and not in the write are left out of the new body, so that they are not rewritten."""
    changes: dict[str, Any] = {}
    for key, value in answer.items():
        if key in _NOT_FIELDS or not isinstance(key, str):
            continue
        if key in obj._changes or obj._server.get(key, _ABSENT) != value:
            changes[key] = value
    obj._changes = changes


def _message(error: Any) -> str:
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        for key in ("message", "error"):
            text = error.get(key)
            if isinstance(text, str) and text:
                return text
    return orjson.dumps(error, default=str).decode()


def _json_default(value: Any) -> Any:
    from bastion.cloud._runtime.runtime import encode_result

    try:
        return encode_result(value)
    except TypeError:
        return str(value)


def _for_log(url: str) -> str:
    """A URL without its credentials, query or fragment, for the log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"
