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
MAINTENANCE = "maintenance-secret"
LOCAL = "127.0.0.1"


def _settings(**fields: str) -> Settings:  # Settings' defaults: master key from loopback only
    return Settings(app_id=APP, master_key=MASTER, **fields)


def test_master_key_makes_master() -> None:
    auth = authenticate(Keys(app_id=APP, master_key=MASTER), _settings(), LOCAL)
    assert auth.is_master and not auth.is_read_only


def test_read_only_master_key_makes_read_only_master() -> None:
    auth = authenticate(Keys(app_id=APP, master_key=READ_ONLY), _settings(read_only_master_key=READ_ONLY), LOCAL)
    assert auth.is_master and auth.is_read_only


@pytest.mark.parametrize("given", [None, "", "master-secreT", "master-secret ", "master", "mäster-secret"])
def test_any_other_master_key_is_no_master(given: str | None) -> None:
    auth = authenticate(Keys(app_id=APP, master_key=given), _settings(read_only_master_key=READ_ONLY), LOCAL)
    assert not auth.is_master and not auth.is_read_only


def test_no_read_only_key_configured_lets_no_key_match_it() -> None:
    auth = authenticate(Keys(app_id=APP, master_key=""), _settings(read_only_master_key=""), LOCAL)
    assert not auth.is_master


def test_configured_client_keys_must_match_one() -> None:
    settings = _settings(javascript_key="js-secret", rest_key="rest-secret")
    assert not authenticate(Keys(app_id=APP, javascript_key="js-secret"), settings, LOCAL).is_master
    assert not authenticate(Keys(app_id=APP, rest_key="rest-secret"), settings, LOCAL).is_master
    for keys in (Keys(app_id=APP), Keys(app_id=APP, rest_key="js-secret"), Keys(app_id=APP, client_key="rest-secret")):
        with pytest.raises(Unauthorized):
            authenticate(keys, settings, LOCAL)


def test_wrong_application_id_is_refused() -> None:
    with pytest.raises(Unauthorized):
        authenticate(Keys(app_id="other", master_key=MASTER), _settings(), LOCAL)


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
    authenticate(Keys(app_id=APP, master_key="guess", client_key="client-secret"), settings, LOCAL)
    assert (b"guess", MASTER.encode()) in seen
    assert (b"guess", READ_ONLY.encode()) in seen
    assert (b"client-secret", b"client-secret") in seen


def test_maintenance_key_is_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", recording)
    authenticate(Keys(app_id=APP, maintenance_key="guess"), _settings(maintenance_key=MAINTENANCE), LOCAL)
    assert (b"guess", MAINTENANCE.encode()) in seen


def test_no_key_is_compared_with_equality_in_the_source() -> None:
    """Keys are secrets: every comparison with a configured key goes through same_key. A cheap guard
    against a later ``==`` on one (the application id is not secret)."""
    import pathlib
    import re

    root = pathlib.Path(keys_module.__file__).parent
    pattern = re.compile(r"(==|!=)\s*[\w.]*(master_key|maintenance_key|javascript_key|rest_key|client_key|webhook_key)\b"
                         r"|\b[\w.]*(master_key|maintenance_key|javascript_key|rest_key|client_key)\s*(==|!=)")
    offenders = [f"{path.relative_to(root)}:{number}" for path in root.rglob("*.py")
                 for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_maintenance_key_makes_maintenance() -> None:
    settings = _settings(maintenance_key=MAINTENANCE, read_only_master_key=READ_ONLY)
    auth = authenticate(Keys(app_id=APP, maintenance_key=MAINTENANCE), settings, LOCAL)
    assert auth.is_master and auth.is_maintenance and not auth.is_read_only
    # Sent as the master key, it is nothing.
    assert not authenticate(Keys(app_id=APP, master_key=MAINTENANCE), settings, LOCAL).is_master
    # Unset, nothing matches it.
    assert not authenticate(Keys(app_id=APP, maintenance_key=""), _settings(), LOCAL).is_master


@pytest.mark.parametrize(("allowed", "address", "ok"), [
    ("127.0.0.1,::1", "127.0.0.1", True),
    ("127.0.0.1,::1", "::1", True),
    ("127.0.0.1,::1", "::ffff:127.0.0.1", True),  # an IPv4 client on a dual-stack socket
    ("127.0.0.1,::1", "127.0.0.2", False),
    ("127.0.0.1,::1", "10.0.0.1", False),
    ("127.0.0.1,::1", None, False),
    ("127.0.0.1,::1", "not-an-address", False),
    ("10.0.0.0/8", "10.200.3.4", True),
    ("10.0.0.0/8", "11.0.0.1", False),
    ("0.0.0.0/0", "203.0.113.9", True),
    ("0.0.0.0/0", "2001:db8::1", False),  # IPv4 and IPv6 are never compared with each other
    ("::0", "2001:db8::1", True),
    ("::0", "203.0.113.9", False),
    ("0.0.0.0/0,::0", "2001:db8::1", True),
    ("2001:db8::/32", "2001:db8:1::5", True),
])
def test_master_key_ips(allowed: str, address: str | None, ok: bool) -> None:
    settings = _settings(master_key_ips=allowed)
    if ok:
        assert authenticate(Keys(app_id=APP, master_key=MASTER), settings, address).is_master
    else:
        with pytest.raises(Unauthorized):
            authenticate(Keys(app_id=APP, master_key=MASTER), settings, address)
    # Without the master key, the address does not matter.
    assert not authenticate(Keys(app_id=APP), settings, address).is_master


def test_each_key_has_its_own_addresses() -> None:
    settings = _settings(read_only_master_key=READ_ONLY, maintenance_key=MAINTENANCE)
    far = "203.0.113.9"
    # Parse Server 9's defaults: the read-only master key from anywhere, the others from loopback.
    assert authenticate(Keys(app_id=APP, master_key=READ_ONLY), settings, far).is_read_only
    for keys in (Keys(app_id=APP, master_key=MASTER), Keys(app_id=APP, maintenance_key=MAINTENANCE)):
        with pytest.raises(Unauthorized):
            authenticate(keys, settings, far)
    settings.read_only_master_key_ips = "127.0.0.1"
    with pytest.raises(Unauthorized):
        authenticate(Keys(app_id=APP, master_key=READ_ONLY), settings, far)


@pytest.mark.parametrize("text", ["", " , ", "10.0.0.0/33", "localhost", "1.2.3.4/x"])
def test_bad_address_lists_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        keys_module.parse_addresses(text)
