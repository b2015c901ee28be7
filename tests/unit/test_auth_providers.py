"""authData providers: the registry's Parse errors, ``anonymous``, and OpenID Connect ID tokens checked
against a small local issuer (discovery + JWKS over HTTP) with real RSA and EC keys."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jwt
import pytest
from jwt.algorithms import RSAAlgorithm

from bastion.core.auth import PUBLIC_AUTH
from bastion.domain.auth_providers import (
    UNSUPPORTED_SERVICE,
    AnonymousProvider,
    OidcConfig,
    OidcProvider,
    ProviderRegistry,
)
from bastion.domain.auth_steps import AuthSteps
from bastion.errors import Code, ParseError
from tests.oidc_issuer import CLIENT, Issuer, SigningKey, claims, ec_key, rsa_key, serve, sign


@pytest.fixture(scope="module")
def base_keys() -> tuple[SigningKey, SigningKey]:
    return rsa_key("rsa-1"), ec_key("ec-1")


@pytest.fixture(scope="module")
def issuer_server() -> Iterator[tuple[str, list[Issuer]]]:
    box: list[Issuer] = []
    server = serve(box)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", box
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def issuer(issuer_server: tuple[str, list[Issuer]], base_keys: tuple[SigningKey, SigningKey]) -> Issuer:
    url, box = issuer_server
    box[:] = [Issuer(url, list(base_keys))]
    return box[0]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def provider(issuer: Issuer, clock: Clock) -> AsyncIterator[OidcProvider]:
    config = OidcConfig(issuer=issuer.url, client_ids=(CLIENT, "client-b"), min_refetch_interval=30)
    oidc = OidcProvider("corp", config, clock=clock)
    yield oidc
    await oidc.aclose()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    return signing_input + "." + (b64(signature) if signature else "")


async def refused(provider: OidcProvider, auth_data: dict[str, Any]) -> ParseError:
    with pytest.raises(ParseError) as caught:
        await provider.validate(auth_data)
    assert caught.value.code == Code.OBJECT_NOT_FOUND
    assert caught.value.status == 404
    return caught.value


# --- valid tokens ---------------------------------------------------------------------------------


async def test_rs256_and_es256_tokens_pass(provider: OidcProvider, issuer: Issuer) -> None:
    rsa_signer, ec_signer = issuer.keys
    await provider.validate({"id": "user-1", "id_token": sign(rsa_signer, claims(issuer))})
    await provider.validate({"id": "user-1", "id_token": sign(ec_signer, claims(issuer))})
    assert provider.id_of({"id": "user-1"}) == "user-1"


async def test_token_field_is_accepted_as_apple_names_it(provider: OidcProvider, issuer: Issuer) -> None:
    await provider.validate({"id": "user-1", "token": sign(issuer.keys[0], claims(issuer))})


async def test_audience_list_and_second_client_id_pass(provider: OidcProvider, issuer: Issuer) -> None:
    key = issuer.keys[0]
    await provider.validate({"id": "user-1", "id_token": sign(key, claims(issuer, aud=["other", CLIENT]))})
    await provider.validate({"id": "user-1", "id_token": sign(key, claims(issuer, aud="client-b"))})


async def test_expiry_within_the_clock_tolerance_passes(provider: OidcProvider, issuer: Issuer) -> None:
    token = sign(issuer.keys[0], claims(issuer, exp=int(time.time()) - 10))
    await provider.validate({"id": "user-1", "id_token": token})


async def test_discovery_finds_the_jwks_and_a_configured_jwks_uri_skips_it(issuer: Issuer) -> None:
    discovered = OidcProvider("corp", OidcConfig(issuer=issuer.url, client_ids=(CLIENT,)))
    await discovered.validate({"id": "user-1", "id_token": sign(issuer.keys[0], claims(issuer))})
    await discovered.aclose()
    assert issuer.requests == ["/.well-known/openid-configuration", "/jwks"]
    issuer.requests.clear()
    configured = OidcProvider(
        "corp", OidcConfig(issuer=issuer.url, client_ids=(CLIENT,), jwks_uri=issuer.url + "/jwks")
    )
    await configured.validate({"id": "user-1", "id_token": sign(issuer.keys[0], claims(issuer))})
    await configured.aclose()
    assert issuer.requests == ["/jwks"]


async def test_a_token_without_kid_passes_only_when_the_set_has_one_key(issuer: Issuer) -> None:
    only = issuer.keys[0]
    issuer.keys = [only]
    single = OidcProvider("corp", OidcConfig(issuer=issuer.url, client_ids=(CLIENT,)))
    token = jwt.encode(claims(issuer), only.private, algorithm="RS256")  # no kid header
    await single.validate({"id": "user-1", "id_token": token})
    await single.aclose()
    issuer.keys.append(ec_key("ec-2"))
    several = OidcProvider("corp", OidcConfig(issuer=issuer.url, client_ids=(CLIENT,)))
    error = await refused(several, {"id": "user-1", "id_token": token})
    assert error.message == "Unable to find matching key for Key ID: undefined"
    await several.aclose()


# --- refusals, with Parse Server 9's messages -----------------------------------------------------


async def test_missing_or_garbage_tokens(provider: OidcProvider) -> None:
    for auth_data in ({"id": "user-1"}, {"id": "user-1", "id_token": ""}, {"id": "user-1", "id_token": 5}):
        assert (await refused(provider, auth_data)).message == "id token is invalid for this user."
    for token in ("abc", "a.b.c", "x" * 20_000):
        error = await refused(provider, {"id": "user-1", "id_token": token})
        assert error.message == "provided token does not decode as JWT"


async def test_alg_none_is_refused(provider: OidcProvider, issuer: Issuer) -> None:
    unsigned = forge({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, claims(issuer))
    error = await refused(provider, {"id": "user-1", "id_token": unsigned})
    assert error.message == "jwt signature is required"
    no_kid = forge({"alg": "none", "typ": "JWT"}, claims(issuer))
    error = await refused(provider, {"id": "user-1", "id_token": no_kid})
    assert error.message == "Unable to find matching key for Key ID: undefined"


async def test_hs256_signed_with_the_public_key_is_refused(provider: OidcProvider, issuer: Issuer) -> None:
    key = issuer.keys[0]
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    unsigned = forge(header, claims(issuer))
    signing_input = unsigned.rstrip(".").encode()
    for secret in (key.public_pem(), json.dumps(key.jwk()).encode()):
        token = forge(header, claims(issuer), hmac.new(secret, signing_input, hashlib.sha256).digest())
        error = await refused(provider, {"id": "user-1", "id_token": token})
        assert error.message == "invalid algorithm"


async def test_algorithm_must_match_the_key(provider: OidcProvider, issuer: Issuer) -> None:
    rsa_signer, ec_signer = issuer.keys
    # An EC signature presented under the RSA key's id, and an RSA one claiming ES256.
    swapped = jwt.encode(
        claims(issuer), ec_signer.private, algorithm="ES256", headers={"kid": rsa_signer.kid}
    )
    assert (await refused(provider, {"id": "user-1", "id_token": swapped})).message == "invalid algorithm"
    lying = forge({"alg": "ES256", "kid": rsa_signer.kid}, claims(issuer), b"\x00" * 64)
    assert (await refused(provider, {"id": "user-1", "id_token": lying})).message == "invalid algorithm"
    rs384 = jwt.encode(claims(issuer), rsa_signer.private, algorithm="RS384", headers={"kid": rsa_signer.kid})
    assert (await refused(provider, {"id": "user-1", "id_token": rs384})).message == "invalid algorithm"


async def test_signature_by_another_key_is_refused(provider: OidcProvider, issuer: Issuer) -> None:
    impostor = rsa_key("rsa-1")  # same kid, different key
    token = sign(impostor, claims(issuer))
    assert (await refused(provider, {"id": "user-1", "id_token": token})).message == "invalid signature"
    genuine = sign(issuer.keys[0], claims(issuer))
    head, payload, signature = genuine.split(".")
    tampered_payload = b64(json.dumps(claims(issuer, sub="admin")).encode())
    tampered = f"{head}.{tampered_payload}.{signature}"
    assert (await refused(provider, {"id": "admin", "id_token": tampered})).message == "invalid signature"


async def test_expired_and_not_yet_valid_tokens(provider: OidcProvider, issuer: Issuer) -> None:
    key, now = issuer.keys[0], int(time.time())
    expired = sign(key, claims(issuer, exp=now - 120))
    assert (await refused(provider, {"id": "user-1", "id_token": expired})).message == "jwt expired"
    no_exp = sign(key, claims(issuer, exp=None))
    assert (await refused(provider, {"id": "user-1", "id_token": no_exp})).message == "invalid exp value"
    text_exp = sign(key, claims(issuer, exp="tomorrow"))
    assert (await refused(provider, {"id": "user-1", "id_token": text_exp})).message == "invalid exp value"
    early = sign(key, claims(issuer, nbf=now + 600))
    assert (await refused(provider, {"id": "user-1", "id_token": early})).message == "jwt not active"


async def test_wrong_audience_is_refused(provider: OidcProvider, issuer: Issuer) -> None:
    key = issuer.keys[1]
    for audience in ("someone-else", ["x", "y"], None):
        token = sign(key, claims(issuer, aud=audience))
        error = await refused(provider, {"id": "user-1", "id_token": token})
        assert error.message == "jwt audience invalid. expected: client-a or client-b"


async def test_wrong_issuer_is_refused(provider: OidcProvider, issuer: Issuer) -> None:
    token = sign(issuer.keys[0], claims(issuer, iss="https://evil.example.com"))
    error = await refused(provider, {"id": "user-1", "id_token": token})
    assert error.message == (
        f"id token not issued by correct OpenID provider - expected: {issuer.url} | from: https://evil.example.com"
    )
    missing = sign(issuer.keys[0], claims(issuer, iss=None))
    error = await refused(provider, {"id": "user-1", "id_token": missing})
    assert error.message.endswith("| from: undefined")


async def test_subject_must_be_the_auth_data_id(provider: OidcProvider, issuer: Issuer) -> None:
    token = sign(issuer.keys[0], claims(issuer, sub="user-1"))
    for auth_id in ("user-2", None, 1, ["user-1"]):
        error = await refused(provider, {"id": auth_id, "id_token": token})
        assert error.message == "auth data is invalid for this user."


async def test_discovery_naming_another_issuer_is_refused(issuer: Issuer) -> None:
    issuer.discovery_issuer = "https://evil.example.com"
    oidc = OidcProvider("corp", OidcConfig(issuer=issuer.url, client_ids=(CLIENT,)))
    error = await refused(oidc, {"id": "user-1", "id_token": sign(issuer.keys[0], claims(issuer))})
    assert error.message == "Unable to find matching key for Key ID: rsa-1"
    assert "/jwks" not in issuer.requests
    await oidc.aclose()


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the weak key is the point
async def test_unusable_keys_in_the_set_are_ignored(issuer: Issuer, clock: Clock) -> None:
    weak = rsa_key("weak", bits=1024)
    issuer.keys = [weak]
    private_jwk = RSAAlgorithm.to_jwk(rsa_key("leaked").private, as_dict=True) | {"kid": "leaked"}
    issuer.extra_jwks = [
        {"kty": "oct", "kid": "symmetric", "k": b64(b"secret")},
        {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
        private_jwk,
        {
            "kty": "RSA",
            "kid": "encryption",
            "use": "enc",
            **RSAAlgorithm.to_jwk(rsa_key("e").private.public_key(), as_dict=True),
        },
    ]
    oidc = OidcProvider("corp", OidcConfig(issuer=issuer.url, client_ids=(CLIENT,)), clock=clock)
    error = await refused(oidc, {"id": "user-1", "id_token": sign(weak, claims(issuer))})
    assert error.message == "Unable to find matching key for Key ID: weak"
    for kid in ("symmetric", "p384", "leaked", "encryption"):
        assert await oidc.keys.key(kid) is None
    await oidc.aclose()


# --- the key set: caching, unknown key ids, rotation, outages -------------------------------------


async def test_key_set_is_cached_until_max_age(provider: OidcProvider, issuer: Issuer, clock: Clock) -> None:
    for _ in range(3):
        await provider.validate({"id": "user-1", "id_token": sign(issuer.keys[0], claims(issuer))})
    assert issuer.jwks_fetches() == 1
    assert issuer.requests.count("/.well-known/openid-configuration") == 1
    clock.now += 3600
    await provider.validate({"id": "user-1", "id_token": sign(issuer.keys[1], claims(issuer))})
    assert issuer.jwks_fetches() == 2
    assert issuer.requests.count("/.well-known/openid-configuration") == 1  # discovery is kept


async def test_concurrent_first_requests_fetch_once(provider: OidcProvider, issuer: Issuer) -> None:
    tokens = [sign(issuer.keys[n % 2], claims(issuer)) for n in range(10)]
    await asyncio.gather(*(provider.validate({"id": "user-1", "id_token": t}) for t in tokens))
    assert issuer.jwks_fetches() == 1
    assert issuer.requests.count("/.well-known/openid-configuration") == 1


async def test_unknown_kid_is_refetched_once_then_refused(
    provider: OidcProvider, issuer: Issuer, clock: Clock
) -> None:
    await provider.validate({"id": "user-1", "id_token": sign(issuer.keys[0], claims(issuer))})
    clock.now += 31
    stranger = rsa_key("nope")
    error = await refused(provider, {"id": "user-1", "id_token": sign(stranger, claims(issuer))})
    assert error.message == "Unable to find matching key for Key ID: nope"
    assert issuer.jwks_fetches() == 2  # one fetch more, not a loop
    # A burst of unknown key ids right after does not make the server fetch again.
    for _ in range(5):
        await refused(provider, {"id": "user-1", "id_token": sign(stranger, claims(issuer))})
    assert issuer.jwks_fetches() == 2


async def test_key_rotation_is_picked_up_on_a_new_kid(
    provider: OidcProvider, issuer: Issuer, clock: Clock
) -> None:
    await provider.validate({"id": "user-1", "id_token": sign(issuer.keys[0], claims(issuer))})
    rotated = ec_key("ec-rotated")
    issuer.keys = [rotated]  # the issuer rotates: old keys gone, a new kid
    token = sign(rotated, claims(issuer))
    # Within the refetch interval the new kid is not fetched for yet…
    await refused(provider, {"id": "user-1", "id_token": token})
    assert issuer.jwks_fetches() == 1
    clock.now += 30
    # …after it, one fetch finds the new key.
    await provider.validate({"id": "user-1", "id_token": token})
    assert issuer.jwks_fetches() == 2
    # The retired key is gone from the cache.
    error = await refused(provider, {"id": "user-1", "id_token": sign(rsa_key("rsa-1"), claims(issuer))})
    assert error.code == Code.OBJECT_NOT_FOUND


async def test_issuer_down_at_first_is_refused(issuer: Issuer) -> None:
    issuer.jwks_status = 503
    oidc = OidcProvider("corp", OidcConfig(issuer=issuer.url, client_ids=(CLIENT,)))
    error = await refused(oidc, {"id": "user-1", "id_token": sign(issuer.keys[0], claims(issuer))})
    assert error.message == "Unable to find matching key for Key ID: rsa-1"
    await oidc.aclose()
    nowhere = OidcProvider("corp", OidcConfig(issuer="http://127.0.0.1:9", client_ids=(CLIENT,)))
    await refused(nowhere, {"id": "user-1", "id_token": sign(issuer.keys[0], claims(issuer))})
    await nowhere.aclose()


async def test_cached_keys_serve_while_the_issuer_is_down(
    provider: OidcProvider, issuer: Issuer, clock: Clock
) -> None:
    await provider.validate({"id": "user-1", "id_token": sign(issuer.keys[0], claims(issuer))})
    issuer.jwks_status = 500
    clock.now += 4000
    await provider.validate({"id": "user-1", "id_token": sign(issuer.keys[0], claims(issuer))})
    assert issuer.jwks_fetches() == 2  # tried, failed, kept the keys


# --- configuration --------------------------------------------------------------------------------


def test_config_from_parse_style_options() -> None:
    config = OidcConfig.from_options(
        {
            "oidc": True,
            "issuer": "https://id.example.com",
            "clientId": ["web", "ios"],
            "jwksUri": "https://id.example.com/keys",
            "clockTolerance": 5,
            "cacheMaxAge": 600_000,
        }
    )
    assert config.client_ids == ("web", "ios")
    assert (config.clock_tolerance, config.cache_max_age) == (5, 600)
    assert OidcConfig.from_options({"issuer": "https://id.example.com", "clientId": "web"}).client_ids == (
        "web",
    )


@pytest.mark.parametrize(
    "options",
    [
        {"clientId": "web"},
        {"issuer": "https://id.example.com"},
        {"issuer": "https://id.example.com", "clientId": ""},
        {"issuer": "https://id.example.com", "clientId": [5]},
        {"issuer": "http://id.example.com", "clientId": "web"},
        {"issuer": "https://id.example.com", "clientId": "web", "jwksUri": "http://id.example.com/k"},
        {"issuer": "https://id.example.com", "clientId": "web", "clockTolerance": "5"},
        {"issuer": "https://id.example.com", "clientId": "web", "cacheMaxAge": True},
        {"issuer": "https://id.example.com", "clientId": "web", "audience": "typo"},
    ],
)
def test_config_mistakes_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        OidcConfig.from_options(options)


# --- the registry and anonymous -------------------------------------------------------------------


async def _validate(registry: ProviderRegistry, name: str, auth_data: Any) -> None:
    """One provider's entry through the server's validation steps, as a sign-up would send it."""
    await AuthSteps(registry).validate({name: auth_data}, PUBLIC_AUTH, None)


async def test_unknown_provider_is_unsupported() -> None:
    registry = ProviderRegistry.from_options()
    for name in ("facebook", "nope", "foo bar", "__proto__", ""):
        with pytest.raises(ParseError) as caught:
            await _validate(registry, name, {"id": "x"})
        assert (caught.value.code, caught.value.message) == (
            UNSUPPORTED_SERVICE,
            "This authentication method is unsupported.",
        )
        assert caught.value.status == 400
        assert registry.lookup_id(name, {"id": "x"}) is None  # Parse skips the lookup for these


async def test_anonymous_accepts_any_string_id() -> None:
    registry = ProviderRegistry.from_options()
    assert registry.names() == ("anonymous",)
    await _validate(registry, "anonymous", {"id": "2b3c5f0e-8d1a-4c55-9d2e-1f6a7b8c9d0e"})
    await _validate(registry, "anonymous", {"foo": 1})  # Parse Server 9 accepts this too
    assert registry.lookup_id("anonymous", {"id": "abc"}) == "abc"
    assert registry.lookup_id("anonymous", {"id": ""}) is None
    assert registry.lookup_id("anonymous", {}) is None
    assert AnonymousProvider().id_of({"id": "abc"}) == "abc"


@pytest.mark.parametrize("bad_id", [5, ["x"], {"a": 1}, True])
def test_an_id_that_is_not_a_string_is_162(bad_id: Any) -> None:
    registry = ProviderRegistry.from_options()
    with pytest.raises(ParseError) as caught:
        registry.lookup_id("anonymous", {"id": bad_id})
    assert (caught.value.code, caught.value.message) == (
        Code.INVALID_VALUE,
        "Invalid authData id for provider 'anonymous'.",
    )


@pytest.mark.parametrize("auth_data", ["abc", 5, ["id"]])
async def test_auth_data_that_is_not_an_object_is_unsupported(auth_data: Any) -> None:
    with pytest.raises(ParseError) as caught:
        await _validate(ProviderRegistry.from_options(), "anonymous", auth_data)
    assert caught.value.code == UNSUPPORTED_SERVICE


@pytest.mark.parametrize(
    "registry",
    [
        ProviderRegistry.from_options(enable_anonymous_users=False),
        ProviderRegistry.from_options({"anonymous": {"enabled": False}}),
    ],
)
async def test_anonymous_can_be_turned_off(registry: ProviderRegistry) -> None:
    assert "anonymous" not in registry
    with pytest.raises(ParseError) as caught:
        await _validate(registry, "anonymous", {"id": "x"})
    assert caught.value.code == UNSUPPORTED_SERVICE


async def test_registry_from_options_validates_oidc_tokens(issuer: Issuer) -> None:
    registry = ProviderRegistry.from_options(
        {
            "corp": {"oidc": True, "issuer": issuer.url, "clientId": CLIENT},
            "off": {"oidc": True, "enabled": False},
        }
    )
    assert set(registry.names()) == {"anonymous", "corp"}
    token = sign(issuer.keys[0], claims(issuer, sub="abc"))
    await _validate(registry, "corp", {"id": "abc", "id_token": token})
    assert registry.lookup_id("corp", {"id": "abc", "id_token": token}) == "abc"
    with pytest.raises(ParseError) as caught:
        await _validate(registry, "corp", {"id": "other", "id_token": token})
    assert caught.value.code == Code.OBJECT_NOT_FOUND
    with pytest.raises(ParseError) as caught:
        await _validate(registry, "off", {"id": "abc", "id_token": token})
    assert caught.value.code == UNSUPPORTED_SERVICE
    await registry.aclose()


@pytest.mark.parametrize(
    "auth",
    [
        {"nope": {"appIds": ["1"]}},
        {"corp": {"issuer": "https://id.example.com", "clientId": "web"}},
        {"bad name": {"oidc": True, "issuer": "https://id.example.com", "clientId": "web"}},
        {"corp": {"oidc": True, "issuer": "ftp://id.example.com", "clientId": "web"}},
        {"anonymous": {"enabled": True, "extra": 1}},
        {"corp": "https://id.example.com"},
    ],
)
def test_registry_configuration_mistakes_are_refused(auth: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ProviderRegistry.from_options(auth)
