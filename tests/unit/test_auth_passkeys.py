"""The passkey provider's options: one start-up line naming the key at fault; and what answers
show of a stored entry."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.domain.auth_providers import AuthConfigError, AuthRequest, ProviderRegistry
from bastion.domain.auth_providers.passkeys import PasskeyAdapter

GOOD = {"rpId": "example.com", "origins": ["https://example.com", "https://app.example.com"]}


def make(options: dict[str, Any]) -> PasskeyAdapter:
    registry = ProviderRegistry.from_options({"webauthn": options})
    adapter = registry.find("webauthn")
    assert isinstance(adapter, PasskeyAdapter)
    return adapter


def test_good_options_and_defaults() -> None:
    adapter = make(GOOD)
    assert (adapter.rp_id, adapter.rp_name, adapter.timeout_ms) == ("example.com", "example.com", 300_000)
    assert adapter.user_verification.value == "preferred" and adapter.attestation.value == "none"
    assert adapter.policy == "solo"
    local = make({"rpId": "localhost", "origins": ["http://localhost:5173"], "userVerification": "required",
                  "timeout": 60_000, "attestation": "direct", "rpName": "Dev"})
    assert local.user_verification.value == "required" and local.timeout_ms == 60_000


@pytest.mark.parametrize(("options", "message"), [
    ({"origins": ["https://example.com"]}, "rpId is required"),
    ({**GOOD, "rpId": "https://example.com"}, "rpId is required"),
    ({"rpId": "example.com"}, "origins is required"),
    ({**GOOD, "origins": []}, "origins is required"),
    ({**GOOD, "origins": ["http://example.com"]}, "is not an https origin"),
    ({**GOOD, "origins": ["https://example.com/"]}, "must not end with '/'"),
    ({**GOOD, "origins": ["https://example.com/login"]}, "is not an https origin"),
    ({**GOOD, "origins": ["https://example.net"]}, "is not rpId 'example.com'"),
    ({**GOOD, "origins": ["https://badexample.com"]}, "is not rpId 'example.com'"),
    ({**GOOD, "userVerification": "always"}, "userVerification must be one of"),
    ({**GOOD, "attestation": "enterprise"}, "attestation must be one of"),
    ({**GOOD, "timeout": "300000"}, "timeout must be a whole number"),
    ({**GOOD, "timeout": 10}, "timeout must be a whole number"),
    ({**GOOD, "rpName": ""}, "rpName must be"),
    ({**GOOD, "origin": "https://example.com"}, "origin is not an option of passkeys"),
])
def test_a_bad_option_stops_start_up_with_one_line(options: dict[str, Any], message: str) -> None:
    with pytest.raises(AuthConfigError) as raised:
        make(options)
    text = str(raised.value)
    assert text.startswith("auth provider 'webauthn': ") and message in text, text
    assert "\n" not in text


def test_answers_never_show_keys_or_counters() -> None:
    adapter = make(GOOD)
    stored = {"id": "handle", "credentials": [
        {"id": "c1", "publicKey": "pk", "signCount": 7, "createdAt": "2026-01-01T00:00:00.000Z",
         "aaguid": "00000000-0000-0000-0000-000000000000", "transports": ["internal"], "backedUp": True}]}
    shown = adapter.after_find(stored, AuthRequest())
    assert shown == {"id": "handle", "credentials": [
        {"id": "c1", "createdAt": "2026-01-01T00:00:00.000Z", "transports": ["internal"], "backedUp": True}]}
