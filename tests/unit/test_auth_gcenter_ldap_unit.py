"""Game Center and LDAP adapters without a server: options, the publicKeyUrl rule, LDAP escaping."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bastion.domain.auth_providers.adapter import AdapterContext
from bastion.domain.auth_providers.gcenter import GameCenterAdapter
from bastion.domain.auth_providers.ldap import LdapAdapter, escape_dn, escape_filter


def _setup(adapter: Any, options: dict[str, Any], insecure: bool = False) -> Any:
    adapter.setup(AdapterContext(name="p", options=options, http=httpx.AsyncClient(),
                                 enable_insecure_auth_adapters=insecure))
    return adapter


def test_escape_dn() -> None:
    assert escape_dn("alice") == "alice"
    assert escape_dn('a,b=c+d<e>f#g;h"i\\j') == 'a\\,b\\=c\\+d\\<e\\>f\\#g\\;h\\"i\\\\j'
    assert escape_dn(" a b ") == "\\ a b\\ "
    assert escape_dn(" ") == "\\ "
    assert escape_dn("a\\ ") == "a\\\\\\ "
    assert escape_dn("a\x00") == "a\\00"


def test_escape_filter() -> None:
    assert escape_filter("alice") == "alice"
    assert escape_filter("*)(uid=*") == "\\2a\\29\\28uid=\\2a"
    assert escape_filter("a\\b\x00") == "a\\5cb\\00"


def test_ldap_options() -> None:
    _setup(LdapAdapter(), {"url": "ldap://127.0.0.1", "suffix": "dc=x"})
    for options, key in (
        ({"suffix": "dc=x"}, "url"),
        ({"url": "http://x", "suffix": "dc=x"}, "url"),
        ({"url": "ldap://x"}, "suffix"),
        ({"url": "ldap://x", "suffix": "dc=x", "dn": "uid=x"}, "dn"),
        ({"url": "ldap://x", "suffix": "dc=x", "groupCn": "admins"}, "groupCn"),
        ({"url": "ldaps://x", "suffix": "dc=x", "tlsOptions": {"checkServerIdentity": 1}}, "tlsOptions"),
        ({"url": "ldap://x", "suffix": "dc=x", "timeout": -1}, "timeout"),
        ({"url": "ldap://x", "suffix": "dc=x", "bogus": 1}, "bogus"),
    ):
        with pytest.raises(ValueError, match=key):
            _setup(LdapAdapter(), options)


def test_gcenter_options() -> None:
    with pytest.raises(ValueError, match="bundleId is required"):
        _setup(GameCenterAdapter(), {})
    # The deprecated insecure mode counts only when the server allows insecure adapters (Parse 9).
    with pytest.raises(ValueError, match="bundleId is required"):
        _setup(GameCenterAdapter(), {"enableInsecureAuth": True})
    assert _setup(GameCenterAdapter(), {"enableInsecureAuth": True}, insecure=True).insecure
    with pytest.raises(ValueError, match="rootCertificateUrl"):
        _setup(GameCenterAdapter(), {"bundleId": "a", "rootCertificateUrl": "http://example.com/x.pem"})
    with pytest.raises(ValueError, match="caCertificates"):
        _setup(GameCenterAdapter(), {"bundleId": "a", "caCertificates": "not pem"})
    with pytest.raises(ValueError, match="publicKeyUrlHosts"):
        _setup(GameCenterAdapter(), {"bundleId": "a", "publicKeyUrlHosts": "127.0.0.1"})
    with pytest.raises(ValueError, match="bundleid"):
        _setup(GameCenterAdapter(), {"bundleId": "a", "bundleid": "b"})


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://static.gc.apple.com/public-key/gc-prod-10.cer", True),
    ("https://apple.com/a.cer", True),
    ("http://static.gc.apple.com/public-key/gc-prod-10.cer", False),
    ("https://static.gc.apple.com/public-key/gc-prod-10.cer\n", False),
    ("https://apple.com.evil.example/a.cer", False),
    ("https://evilapple.com/a.cer", False),
    ("https://x.apple.com@evil.example/a.cer", False),
    ("https://static.gc.apple.com/a.pem", False),
    ("http://127.0.0.1:8080/a.cer", True),
    ("https://localhost/a.cer", False),
    ("http://10.0.0.1/a.cer", False),
])
def test_public_key_url_rule(url: str, allowed: bool) -> None:
    adapter = _setup(GameCenterAdapter(), {"bundleId": "a", "publicKeyUrlHosts": ["127.0.0.1", "10.0.0.1"]})
    assert adapter._allowed_url(url) is allowed
