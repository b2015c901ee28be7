"""Validator options that the API tests do not reach, with Parse Server's messages."""

from __future__ import annotations

import pytest

from bastion.cloud import Error, Object, User
from bastion.cloud._runtime.validators import Validator
from bastion.cloud.request import Request


def user(**fields: object) -> User:
    return User.from_json("_User", {"objectId": "u1", "username": "ada", **fields})  # type: ignore[return-value]


def roles(*names: str):  # noqa: ANN201 - the loader the runtime passes
    async def load() -> list[str]:
        return list(names)
    return load


async def refused(validator: Validator, request: Request, *role_names: str) -> str:
    with pytest.raises(Error) as info:
        await validator.check(request, roles(*role_names))
    assert info.value.code == 142
    return info.value.message


async def test_unknown_options_are_refused_at_registration() -> None:
    with pytest.raises(TypeError, match="unknown option"):
        Validator.from_options({"require_usr": True})
    with pytest.raises(TypeError, match="field type"):
        Validator.from_options({"fields": {"n": {"type": set}}})


async def test_master_key_passes_unless_validate_master_key() -> None:
    validator = Validator(require_user=True)
    await validator.check(Request(master=True), roles())
    strict = Validator(require_user=True, validate_master_key=True)
    assert await refused(strict, Request(master=True)) == "Validation failed. Please login to continue."


async def test_all_roles_and_any_role() -> None:
    any_role = Validator(require_any_user_roles=["Admin", "Mod"])
    await any_role.check(Request(user=user()), roles("Mod"))
    assert await refused(any_role, Request(user=user()), "Other") == \
        "Validation failed. User does not match the required roles."
    all_roles = Validator(require_all_user_roles=["Admin", "Mod"])
    await all_roles.check(Request(user=user()), roles("Admin", "Mod"))
    assert await refused(all_roles, Request(user=user()), "Admin") == \
        "Validation failed. User does not match all the required roles."
    assert await refused(all_roles, Request()) == "Validation failed. Please login to continue."


async def test_role_lists_may_come_from_a_function() -> None:
    async def wanted() -> list[str]:
        return ["Editors"]
    validator = Validator(require_any_user_roles=wanted)
    await validator.check(Request(user=user()), roles("Editors"))
    assert await refused(validator, Request(user=user()), "Readers") == \
        "Validation failed. User does not match the required roles."


async def test_require_user_keys() -> None:
    validator = Validator(require_user_keys=["email"])
    await validator.check(Request(user=user(email="a@example.com")), roles())
    assert await refused(validator, Request(user=user())) == \
        "Validation failed. Please set data for email on your account."
    assert await refused(validator, Request()) == "Please login to make this request."
    options = Validator(require_user_keys={"plan": {"options": ["pro"]}})
    await options.check(Request(user=user(plan="pro")), roles())
    assert await refused(options, Request(user=user(plan="free"))) == \
        "Validation failed. Invalid option for plan. Expected: pro"


async def test_a_sign_up_validates_against_the_new_user() -> None:
    # As Parse Server: in a _User trigger of a sign-up, the user being created counts as the user.
    new_user = Object("_User")
    new_user.set("username", "ada")
    await Validator(require_user=True).check(Request(object=new_user), roles())


async def test_trigger_fields_default_constant_and_types() -> None:
    obj = Object.from_json("Post", {"objectId": "p1", "createdAt": "2020-01-01T00:00:00.000Z", "status": "draft"})
    obj.set("status", "published")
    obj.set("title", 5)
    original = Object.from_json("Post", {"objectId": "p1", "status": "draft"})
    validator = Validator(fields={"status": {"constant": True}, "title": {"type": str}})
    assert await refused(validator, Request(object=obj, original=original)) == \
        "Validation failed. Invalid type for title. Expected: string"
    assert obj.get("status") == "draft"  # constant: the change was reverted before the type check
    fresh = Object("Post")
    await Validator(fields={"views": {"default": 0, "type": int}}).check(Request(object=fresh), roles())
    assert fresh.get("views") == 0 and fresh.dirty("views")


async def test_option_functions_and_custom_errors() -> None:
    validator = Validator(fields={"n": {"options": lambda n: n > 0}})
    await validator.check(Request(params={"n": 1}), roles())
    assert await refused(validator, Request(params={"n": -1})) == "Validation failed. Invalid value for n."
    worded = Validator(fields={"n": {"options": [1, 2], "error": "one or two"}})
    assert await refused(worded, Request(params={"n": 3})) == "one or two"
    boolean = Validator(fields={"flag": {"options": [True]}})
    assert await refused(boolean, Request(params={"flag": 1})) == \
        "Validation failed. Invalid option for flag. Expected: true"
