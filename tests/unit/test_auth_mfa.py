"""The mfa adapter on its own: options refused at start-up, TOTP settings, the time window, the
time step kept against replay, and SMS codes that expire (with a clock the test moves)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pyotp
import pytest

from bastion.domain.auth_providers import AuthRequest, ProviderRegistry
from bastion.domain.auth_providers.adapter import AdapterContext
from bastion.domain.auth_providers.mfa import MfaAdapter
from bastion.domain.auth_providers.registry import AuthConfigError
from bastion.errors import ParseError

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("options", "key"), [
    ({}, "options"),
    ({"options": "TOTP"}, "options"),
    ({"options": []}, "options"),
    ({"options": ["EMAIL"]}, "options"),
    ({"options": ["TOTP"], "digits": 3}, "digits"),
    ({"options": ["TOTP"], "digits": 11}, "digits"),
    ({"options": ["TOTP"], "digits": "6"}, "digits"),
    ({"options": ["TOTP"], "period": 5}, "period"),
    ({"options": ["TOTP"], "period": True}, "period"),
    ({"options": ["TOTP"], "algorithm": "MD5"}, "algorithm"),
    ({"options": ["SMS"]}, "sendSMS"),
    ({"options": ["SMS", "TOTP"], "sendSMS": ""}, "sendSMS"),
])
def test_bad_options_stop_the_start_with_one_line_naming_the_key(options: dict[str, Any], key: str) -> None:
    with pytest.raises(AuthConfigError) as caught:
        ProviderRegistry.from_options({"mfa": options})
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"auth provider 'mfa': {key} "), message


def test_good_options_are_taken() -> None:
    registry = ProviderRegistry.from_options({"mfa": {"options": ["SMS", "TOTP"], "digits": 8, "period": 60,
                                                      "algorithm": "SHA256", "sendSMS": "sms"}})
    adapter = registry.get("mfa")
    assert isinstance(adapter, MfaAdapter)
    assert (adapter.sms, adapter.totp, adapter.digits, adapter.period, adapter.algorithm) == (
        True, True, 8, 60, "SHA256")


@pytest.fixture
async def made() -> AsyncIterator[tuple[MfaAdapter, Clock, list[dict[str, Any]]]]:
    clock, sent = Clock(), []

    async def run(name: str, params: dict[str, Any]) -> None:
        assert name == "sendSms"
        sent.append(params)
    adapter = MfaAdapter()
    async with httpx.AsyncClient() as http:
        adapter.setup(AdapterContext(name="mfa", http=http, now=clock, services={"run_cloud_function": run},
                                     options={"options": ["TOTP", "SMS"], "digits": 8, "period": 60,
                                              "algorithm": "SHA512", "sendSMS": "sendSms"}))
        yield adapter, clock, sent


def request(entry: dict[str, Any] | None = None, **fields: Any) -> AuthRequest:
    return AuthRequest(original={"objectId": "u1", "authData": {"mfa": entry} if entry else {}}, **fields)


def totp_code(at: float, offset: int = 0) -> str:
    totp = pyotp.TOTP(SECRET, digits=8, digest=hashlib.sha512, interval=60)
    return totp.generate_otp(totp.timecode(at) + offset)


async def test_totp_settings_window_and_replay(made: tuple[MfaAdapter, Clock, list[dict[str, Any]]]) -> None:
    adapter, clock, _ = made
    result = await adapter.validate_set_up({"secret": SECRET, "token": totp_code(NOW)}, request())
    assert result is not None and result.save is not None
    entry = result.save
    step = int(NOW) // 60
    assert entry["last"] == step and len(entry["recovery"]) == 2
    # The code of the next step passes once; the code of the step after it is outside the window.
    with pytest.raises(ParseError, match="Invalid MFA token"):
        await adapter.validate_login({"token": totp_code(NOW, 2)}, request(entry))
    with pytest.raises(ParseError, match="Invalid MFA token"):
        await adapter.validate_login({"token": totp_code(NOW)}, request(entry))
    logged = await adapter.validate_login({"token": totp_code(NOW, 1)}, request(entry))
    assert logged is not None and logged.save == {**entry, "last": step + 1}
    # Two minutes on, an old code is refused even though its step was never used.
    clock.now = NOW + 120
    with pytest.raises(ParseError):
        await adapter.validate_login({"token": totp_code(NOW, -1)}, request(logged.save))


async def test_sms_codes_expire_after_the_period(made: tuple[MfaAdapter, Clock, list[dict[str, Any]]]) -> None:
    adapter, clock, sent = made
    saved: list[dict[str, Any]] = []

    async def save(entries: dict[str, Any]) -> None:
        saved.append(entries["mfa"])
    entry = {"mobile": "+15550001"}
    with pytest.raises(ParseError, match="Please enter the token"):
        await adapter.validate_login({"token": "request"}, request(entry, save_auth_data=save))
    assert sent[-1]["mobile"] == "+15550001" and len(sent[-1]["token"]) == 8
    assert saved[-1]["token"] == sent[-1]["token"]
    clock.now = NOW + 61
    with pytest.raises(ParseError, match="Invalid MFA token 2"):
        await adapter.validate_login({"token": sent[-1]["token"]}, request(saved[-1]))
    clock.now = NOW + 30
    result = await adapter.validate_login({"token": sent[-1]["token"]}, request(saved[-1]))
    assert result is not None and result.save == entry


async def test_after_find_and_policy(made: tuple[MfaAdapter, Clock, list[dict[str, Any]]]) -> None:
    adapter, _, _ = made
    entry = {"secret": SECRET, "recovery": ["a"], "last": 1}
    assert adapter.after_find(dict(entry), AuthRequest()) == {"status": "enabled"}
    assert adapter.after_find(dict(entry), AuthRequest(master=True)) is None
    assert adapter.after_find({"pending": {"+1": {}}}, AuthRequest()) == {"status": "disabled"}
    assert adapter.policy_for(entry, AuthRequest()) == "additional"
    assert adapter.policy_for({"pending": {"+1": {}}}, AuthRequest()) == "default"
    with pytest.raises(ParseError):
        await adapter.validate_unlink(request(entry))
    await adapter.validate_unlink(request({"pending": {}}))


async def test_a_stuck_or_failing_sms_function_is_a_parse_error() -> None:
    import asyncio

    from bastion.domain.auth_providers import mfa

    async def stuck(name: str, params: dict[str, Any]) -> None:
        await asyncio.sleep(60)
    adapter = MfaAdapter()
    async with httpx.AsyncClient() as http:
        adapter.setup(AdapterContext(name="mfa", http=http, services={"run_cloud_function": stuck},
                                     options={"options": ["SMS"], "sendSMS": "sendSms"}))
        original, mfa.SMS_TIMEOUT = mfa.SMS_TIMEOUT, 0.05
        try:
            with pytest.raises(ParseError, match="The SMS could not be sent."):
                await adapter.validate_set_up({"mobile": "+15550002"}, request())
        finally:
            mfa.SMS_TIMEOUT = original
