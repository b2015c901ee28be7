"""Validators of functions and triggers, with Parse Server's options and messages.

``@cloud.define("x", require_user=True, fields={"n": {"type": int, "required": True}})``: checked
before the handler runs; a failure reaches the client as 142 "Validation failed. ...". With the
master key nothing is checked unless ``validate_master_key`` is set.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.cloud._runtime.rate_limit import RateLimit
from bastion.cloud.errors import Error
from bastion.core.js import js_string, json_type
from bastion.core.system_classes import USER
from bastion.errors import Code

if TYPE_CHECKING:
    from bastion.cloud.objects import Object
    from bastion.cloud.request import Request

# Python types (or Parse's type names) and the JavaScript name Parse Server's messages use.
_TYPE_NAMES: dict[Any, str] = {int: "number", float: "number", str: "string", bool: "boolean",
                               list: "array", dict: "object"}
_NAMED = {"number", "string", "boolean", "array", "object"}


def _fail(message: str) -> Error:
    return Error(Code.VALIDATION_ERROR, message)


@dataclass(slots=True)
class Validator:
    require_user: bool = False
    require_master: bool = False
    validate_master_key: bool = False
    skip_with_master_key: bool = False
    require_any_user_roles: list[str] | Callable[[], Any] | None = None
    require_all_user_roles: list[str] | Callable[[], Any] | None = None
    require_user_keys: list[str] | dict[str, dict[str, Any]] | None = None
    fields: list[str] | dict[str, Any] | None = None
    rate_limit: RateLimit | None = None
    custom: Callable[[Request], Any] | None = None  # validator=fn: raise to refuse

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Validator | None:
        """The validator that decorator keyword arguments describe (None when they describe none)."""
        names = set(cls.__dataclass_fields__)
        unknown = [key for key in options if key not in names and key != "validator"]
        if unknown:
            raise TypeError(f"unknown option {unknown[0]!r}; known: {', '.join(sorted(names))}")
        values = {key: value for key, value in options.items() if value is not None and key != "validator"}
        if "validator" in options and options["validator"] is not None:
            if not callable(options["validator"]):
                raise TypeError("validator= must be a function taking the request")
            values["custom"] = options["validator"]
        if "rate_limit" in values:
            values["rate_limit"] = RateLimit.from_option(values["rate_limit"])
        fields = values.get("fields")
        if fields is not None:
            if not isinstance(fields, (list, dict)):
                raise TypeError("fields= must be a list of names or a dict of field options")
            for spec in (fields.values() if isinstance(fields, dict) else ()):
                if isinstance(spec, dict):
                    kind = spec.get("type")
                    if kind is not None and kind not in _TYPE_NAMES and kind not in _NAMED:
                        raise TypeError(f"field type must be one of int, float, str, bool, list, dict; got {kind!r}")
        return cls(**values) if values else None

    async def check(self, request: Request, roles: Callable[[], Awaitable[list[str]]]) -> None:
        """Raises a 142 error when the request does not pass. ``roles`` loads the user's role names."""
        if self.custom is not None:
            result = self.custom(request)
            if inspect.isawaitable(result):
                await result
        if request.master and not self.validate_master_key:
            return
        user: Object | None = request.user
        if user is None and request.object is not None and request.object.class_name == USER \
                and not request.object.existed():
            user = request.object  # a sign-up validates against the user being created
        if (self.require_user or self.require_any_user_roles or self.require_all_user_roles) and user is None:
            raise _fail("Validation failed. Please login to continue.")
        if self.require_master and not request.master:
            raise _fail("Validation failed. Master key is required to complete this request.")
        await self._check_fields(request)
        await self._check_roles(roles)
        await self._check_user_keys(user)

    async def _check_fields(self, request: Request) -> None:
        if self.fields is None:
            return
        obj = request.object
        params: dict[str, Any] = request.params if obj is None else obj.to_json()

        def required(key: str) -> None:
            if params.get(key) is None:
                raise _fail(f"Validation failed. Please specify data for {key}.")

        if isinstance(self.fields, list):
            for key in self.fields:
                required(key)
            return
        for key, spec in self.fields.items():
            if isinstance(spec, str):
                required(spec)
                continue
            if not isinstance(spec, dict):
                continue
            value = params.get(key)
            if spec.get("default") is not None and value is None:
                value = spec["default"]
                params[key] = value
                if obj is not None:
                    obj.set(key, value)
                elif isinstance(request.params, dict):
                    request.params[key] = value
            if spec.get("constant") and obj is not None:
                if request.original is not None:
                    obj.revert(key)
                elif spec.get("default") is not None:
                    obj.set(key, spec["default"])
                value = obj.get(key)
            if spec.get("required"):
                required(key)
            if not spec.get("required") and value is None:
                continue
            kind = spec.get("type")
            if kind is not None:
                expected = kind if isinstance(kind, str) else _TYPE_NAMES[kind]
                if json_type(value) != expected:
                    raise _fail(f"Validation failed. Invalid type for {key}. Expected: {expected}")
            if "options" in spec:
                await _check_option(spec, key, value)

    async def _check_roles(self, roles: Callable[[], Awaitable[list[str]]]) -> None:
        any_roles, all_roles = self.require_any_user_roles, self.require_all_user_roles
        if not any_roles and not all_roles:
            return
        names = set(await roles())
        if callable(any_roles):
            any_roles = await _maybe_await(any_roles())
        if callable(all_roles):
            all_roles = await _maybe_await(all_roles())
        if any_roles and not any(role in names for role in any_roles):
            raise _fail("Validation failed. User does not match the required roles.")
        if all_roles and not all(role in names for role in all_roles):
            raise _fail("Validation failed. User does not match all the required roles.")

    async def _check_user_keys(self, user: Any) -> None:
        keys = self.require_user_keys
        if not keys:
            return
        if isinstance(keys, list):
            for key in keys:
                if user is None:
                    raise _fail("Please login to make this request.")
                if user.get(key) is None:
                    raise _fail(f"Validation failed. Please set data for {key} on your account.")
            return
        for key, spec in keys.items():
            if isinstance(spec, dict) and "options" in spec:
                await _check_option(spec, key, user.get(key) if user is not None else None)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _check_option(spec: dict[str, Any], key: str, value: Any) -> None:
    options = spec["options"]
    if callable(options):
        try:
            result = await _maybe_await(options(value))
        except Error:
            raise
        except Exception as exc:  # noqa: BLE001 - the option check's own refusal
            raise _fail(spec.get("error") or str(exc) or f"Validation failed. Invalid value for {key}.") from None
        if not result and result is not None:
            raise _fail(spec.get("error") or f"Validation failed. Invalid value for {key}.")
        return
    if not isinstance(options, (list, tuple, set, frozenset)):
        options = [options]
    # As JavaScript's includes(): true is not 1, and 1 is not true.
    if not any(option == value and isinstance(option, bool) == isinstance(value, bool) for option in options):
        expected = ", ".join(js_string(option) for option in options)
        raise _fail(spec.get("error") or f"Validation failed. Invalid option for {key}. Expected: {expected}")
