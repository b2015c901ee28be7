"""The ``email`` provider's options, checked when the server starts, and its mail."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.domain.auth_providers.email_codes import EmailCodeAdapter, normalize
from bastion.domain.auth_providers.registry import AuthConfigError, ProviderRegistry


def _adapter(options: dict[str, Any]) -> EmailCodeAdapter:
    registry = ProviderRegistry.from_options({"email": options}, services={"app_name": "Demo"})
    adapter = registry.find("email")
    assert isinstance(adapter, EmailCodeAdapter)
    return adapter


def test_defaults() -> None:
    settings = _adapter({}).settings
    assert settings["codeLength"] == 6 and settings["ttl"] == 600 and settings["signUp"] is True
    assert settings["link"] is None


@pytest.mark.parametrize(("options", "key"), [
    ({"codeLength": 3}, "codeLength"),
    ({"codeLength": "6"}, "codeLength"),
    ({"ttl": 0}, "ttl"),
    ({"ttl": True}, "ttl"),
    ({"maxPerHour": 0}, "maxPerHour"),
    ({"maxPerHourPerIp": -1}, "maxPerHourPerIp"),
    ({"maxAttempts": 0}, "maxAttempts"),
    ({"signUp": "yes"}, "signUp"),
    ({"link": "https://app.example.com/signin"}, "link"),
    ({"link": "javascript:alert({token})"}, "link"),
    ({"subject": ""}, "subject"),
    ({"text": "no code here"}, "text"),
    ({"codelength": 6}, "codelength"),
])
def test_bad_options_stop_start_up(options: dict[str, Any], key: str) -> None:
    with pytest.raises(AuthConfigError) as raised:
        _adapter(options)
    assert f"auth provider 'email': {key}" in str(raised.value)


def test_message() -> None:
    adapter = _adapter({"link": "https://app.example.com/in?e={email}&t={token}", "subject": "{appName} code",
                        "text": "Code {code} ({minutes} min) {link}"})
    message = adapter._message("a+b@example.com", "123456", "tok-en_1")
    assert message.to == "a+b@example.com" and message.subject == "Demo code"
    assert message.text == "Code 123456 (10 min) https://app.example.com/in?e=a%2Bb@example.com&t=tok-en_1"
    plain = _adapter({})._message("a@example.com", "654321", None)
    assert "654321" in plain.text and "http" not in plain.text


@pytest.mark.parametrize(("given", "expected"), [
    ("  A@Example.COM ", "a@example.com"),
    ("a@b", None),
    ("a b@example.com", None),
    ("a@example.com\r\nBcc: x@example.com", None),
    (["a@example.com"], None),
    ("x" * 250 + "@example.com", None),
])
def test_normalize(given: Any, expected: str | None) -> None:
    assert normalize(given) == expected
