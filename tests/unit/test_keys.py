"""The keys a request sends: which ones make it master, read-only or a client, compared in constant time."""

from __future__ import annotations

import hmac

import pytest

from bastion import keys as keys_module
from bastion.config import Settings
from bastion.errors import Unauthorized
from bastion.keys import Keys, authenticate, same_key

APP = "app"
MASTER = "master-secret"
READ_ONLY = "read-only-secret"


def _settings(**fields: str) -> Settings:
    return Settings(app_id=APP, master_key=MASTER, **fields)


def test_master_key_makes_master() -> None:
    auth = authenticate(Keys(app_id=APP, master_key=MASTER), _settings())
    assert auth.is_master and not auth.is_read_only


def test_read_only_master_key_makes_read_only_master() -> None:
    auth = authenticate(Keys(app_id=APP, master_key=READ_ONLY), _settings(read_only_master_key=READ_ONLY))
    assert auth.is_master and auth.is_read_only


@pytest.mark.parametrize("given", [None, "", "master-secreT", "master-secret ", "master", "mäster-secret"])
def test_any_other_master_key_is_no_master(given: str | None) -> None:
    auth = authenticate(Keys(app_id=APP, master_key=given), _settings(read_only_master_key=READ_ONLY))
    assert not auth.is_master and not auth.is_read_only


def test_no_read_only_key_configured_lets_no_key_match_it() -> None:
    auth = authenticate(Keys(app_id=APP, master_key=""), _settings(read_only_master_key=""))
    assert not auth.is_master


def test_configured_client_keys_must_match_one() -> None:
    settings = _settings(javascript_key="js-secret", rest_key="rest-secret")
    assert not authenticate(Keys(app_id=APP, javascript_key="js-secret"), settings).is_master
    assert not authenticate(Keys(app_id=APP, rest_key="rest-secret"), settings).is_master
    for keys in (Keys(app_id=APP), Keys(app_id=APP, rest_key="js-secret"), Keys(app_id=APP, client_key="rest-secret")):
        with pytest.raises(Unauthorized):
            authenticate(keys, settings)


def test_wrong_application_id_is_refused() -> None:
    with pytest.raises(Unauthorized):
        authenticate(Keys(app_id="other", master_key=MASTER), _settings())


def test_same_key_handles_missing_and_non_ascii_keys() -> None:
    assert same_key("ключ", "ключ")
    assert not same_key("ключ", "ключи")
    assert not same_key(None, "x")
    assert not same_key("x", None)
    assert same_key("", "")
    assert not same_key("\ud800", "x")  # a lone surrogate neither matches nor raises


def test_keys_are_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every configured key goes through hmac.compare_digest, as bytes, never through ==."""
    seen: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        assert isinstance(a, bytes) and isinstance(b, bytes)
        seen.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", recording)
    settings = _settings(read_only_master_key=READ_ONLY, client_key="client-secret")
    authenticate(Keys(app_id=APP, master_key="guess", client_key="client-secret"), settings)
    assert (b"guess", MASTER.encode()) in seen
    assert (b"guess", READ_ONLY.encode()) in seen
    assert (b"client-secret", b"client-secret") in seen
