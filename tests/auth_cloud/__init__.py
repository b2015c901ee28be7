"""Cloud code for tests/api/test_auth_custom_adapters.py: auth adapters written in Python."""

from __future__ import annotations

from typing import Any

from bastion import cloud

STEPS: list[str] = []


@cloud.auth_adapter("corp")
class Corp(cloud.AuthAdapter):
    """The legacy single check: the token must be "ok-<id>"; the stored entry keeps the id only."""

    async def validate_auth_data(self, auth_data: dict[str, Any], request: cloud.AuthRequest) -> cloud.AuthResult:
        if auth_data.get("token") != "ok-" + str(auth_data.get("id")):
            raise cloud.Error(cloud.Error.OBJECT_NOT_FOUND, "Corp auth is invalid for this user.")
        return cloud.AuthResult(save={"id": auth_data["id"]}, response={"welcome": auth_data["id"]})

    async def challenge(self, challenge_data: Any, auth_data: dict[str, Any] | None,
                        request: cloud.AuthRequest) -> Any:
        return {"nonce": f"n-{challenge_data.get('x')}", "user": (request.original or {}).get("objectId")}


class Stepper(cloud.AuthAdapter):
    """Parse's three steps, named in the auth config by module with an option of its own."""

    def validate_options(self, options: Any) -> None:
        if not isinstance(options.get("secret"), str):
            raise ValueError("secret is required")

    async def _check(self, step: str, auth_data: dict[str, Any]) -> cloud.AuthResult:
        if auth_data.get("password") != self.options["secret"]:
            raise ValueError("wrong stepper password")  # any exception: 141 with its message, as Parse
        return cloud.AuthResult(save={"id": auth_data["id"], "last": step}, response={"step": step})

    async def validate_set_up(self, auth_data: dict[str, Any], request: cloud.AuthRequest) -> cloud.AuthResult:
        return await self._check("setUp", auth_data)

    async def validate_login(self, auth_data: dict[str, Any], request: cloud.AuthRequest) -> cloud.AuthResult:
        return await self._check("login", auth_data)

    async def validate_update(self, auth_data: dict[str, Any], request: cloud.AuthRequest) -> cloud.AuthResult:
        return await self._check("update", auth_data)

    def after_find(self, auth_data: dict[str, Any], request: cloud.AuthRequest) -> dict[str, Any] | None:
        return {"id": auth_data.get("id"), "shown": True}


cloud.auth_adapter("stepper")(Stepper)


@cloud.auth_adapter("second")
class Second(cloud.AuthAdapter):
    """An additional factor, as MFA: once linked, log-ins must give it."""

    policy = "additional"

    async def validate_auth_data(self, auth_data: dict[str, Any], request: cloud.AuthRequest) -> cloud.AuthResult:
        if auth_data.get("code") != "4242":
            raise cloud.Error(cloud.Error.SCRIPT_FAILED, "Invalid second factor")
        return cloud.AuthResult(save={"enabled": True})
