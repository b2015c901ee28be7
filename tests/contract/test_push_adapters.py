"""The push adapters against local stand-ins of their services (tests/push_services), with real
cryptography on both sides: VAPID JWTs and aes128gcm payloads, FCM's JWT-bearer token exchange,
APNs provider tokens over HTTP/2."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from bastion.adapters.push import Device, open_push_adapters
from bastion.adapters.push._common import b64url, b64url_decode
from bastion.adapters.push.apns import ApnsAdapter, load_p8
from bastion.adapters.push.fcm import FcmAdapter, ServiceAccount
from bastion.adapters.push.webpush import (
    MAX_PLAINTEXT,
    VapidKeys,
    WebPushAdapter,
    encrypt,
    load_or_create_vapid_keys,
)
from bastion.cli import main as cli
from bastion.config import Settings
from tests.push_services.apns import ApnsService
from tests.push_services.fcm import FcmService
from tests.push_services.webpush import WebPushService, decrypt

# --- Web Push --------------------------------------------------------------------------------------


def test_rfc8291_worked_example() -> None:
    """RFC 8291 appendix A: the same keys, salt and plaintext give the RFC's message byte for byte."""
    sender = VapidKeys.from_text("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw").private
    ua_public = b64url_decode(
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4")
    body = encrypt(b"When I grow up, I want to be a watermelon", ua_public, b64url_decode("BTBZMqHH6r4Tts7J_aSIgg"),
                   salt=b64url_decode("DGv6ra1nlYgDCS1FRnbzlw"), sender=sender)
    assert b64url(body) == (
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6P"
        "Bru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")
    ua_private = VapidKeys.from_text("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94").private
    assert decrypt(body, ua_private, b64url_decode("BTBZMqHH6r4Tts7J_aSIgg")) == (
        b"When I grow up, I want to be a watermelon")


@pytest.fixture
async def webpush() -> AsyncIterator[WebPushService]:
    service = WebPushService()
    await service.start()
    yield service
    await service.stop()


def web_device(n: int, token: str, badge: int | None = None) -> Device:
    return Device(f"inst{n}", "web", token, badge=badge)


async def test_webpush_delivers_encrypted_payload(webpush: WebPushService, tmp_path: Path) -> None:
    keys = load_or_create_vapid_keys(tmp_path)
    adapter = WebPushAdapter(keys, "mailto:ops@example.com")
    subs = [webpush.subscribe() for _ in range(3)]
    data = {"alert": "Hello", "title": "Greeting", "uri": "https://example.com/x", "custom": {"n": 1},
            "collapse_id": "news"}
    expiration = datetime.now(UTC) + timedelta(hours=2)
    try:
        results = await adapter.send(data, [web_device(i, s.token, badge=i) for i, s in enumerate(subs)],
                                     push_id="p1", expiration=expiration, priority="high")
    finally:
        await adapter.close()
    assert [r.ok for r in results] == [True] * 3, results
    assert [r.installation_id for r in results] == ["inst0", "inst1", "inst2"]
    assert webpush.rejected == []
    by_sub = {m.subscription_id: m for m in webpush.messages}
    for i, sub in enumerate(subs):
        message = by_sub[sub.id]
        assert message.data == dict(data, badge=i)
        assert 7100 < message.ttl <= 7200
        assert message.urgency == "high"
        assert message.topic == "news"
        assert message.vapid_public_key == keys.public_key
        assert message.sub == "mailto:ops@example.com"


async def test_webpush_gone_retry_and_errors(webpush: WebPushService, tmp_path: Path) -> None:
    adapter = WebPushAdapter(load_or_create_vapid_keys(tmp_path), "mailto:ops@example.com")
    ok, unsubscribed, not_found, limited, broken = (webpush.subscribe() for _ in range(5))
    webpush.unsubscribe(unsubscribed)
    webpush.fail(not_found, 404)
    webpush.fail(limited, 429, retry_after=7)
    webpush.fail(broken, 503)
    devices = [web_device(0, ok.token), web_device(1, unsubscribed.token), web_device(2, not_found.token),
               web_device(3, limited.token), web_device(4, broken.token), web_device(5, "not json"),
               web_device(6, json.dumps({"endpoint": "https://x", "keys": {"p256dh": "AA", "auth": "AA"}}))]
    try:
        results = await adapter.send({"alert": "x"}, devices, push_id="p", expiration=None)
        too_big = await adapter.send({"alert": "x" * MAX_PLAINTEXT}, [web_device(7, ok.token)], push_id="p",
                                     expiration=None)
    finally:
        await adapter.close()
    r = {d.installation_id: d for d in results}
    assert r["inst0"].ok and not r["inst0"].gone
    assert r["inst1"].gone and r["inst2"].gone and not r["inst1"].ok
    assert r["inst3"].retry_after == 7 and not r["inst3"].gone
    assert r["inst4"].retry_after is not None and not r["inst4"].gone
    for bad in ("inst5", "inst6"):
        assert not r[bad].ok and not r[bad].gone and r[bad].retry_after is None and r[bad].error
    assert not too_big[0].ok and "allows" in (too_big[0].error or "")
    assert len(webpush.messages) == 1 and webpush.messages[0].ttl == 4 * 7 * 24 * 3600


async def test_webpush_service_refuses_a_forged_vapid_key(webpush: WebPushService, tmp_path: Path) -> None:
    """The stand-in checks the JWT against k=: a JWT signed by one key sent with another is refused."""
    adapter = WebPushAdapter(VapidKeys.generate(), "mailto:ops@example.com")
    sub = webpush.subscribe()
    adapter.authorization(sub.endpoint)  # the JWT is cached, signed with the first key
    adapter.keys = VapidKeys.generate()
    try:
        [result] = await adapter.send({"alert": "x"}, [web_device(0, sub.token)], push_id="p", expiration=None)
    finally:
        await adapter.close()
    assert not result.ok and not result.gone and result.retry_after is None
    assert webpush.messages == [] and webpush.rejected and webpush.rejected[0][0] == 401


def test_vapid_keys_are_created_once_and_printed(tmp_path: Path) -> None:
    first = load_or_create_vapid_keys(tmp_path)
    again = load_or_create_vapid_keys(tmp_path)
    assert first.public_key == again.public_key and len(b64url_decode(first.public_key)) == 65
    assert stat.S_IMODE(os.stat(tmp_path / "vapid.json").st_mode) == 0o600
    result = CliRunner().invoke(cli, ["keys", "vapid", "--data-dir", str(tmp_path)], env={})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == first.public_key
    other = VapidKeys.generate()
    result = CliRunner().invoke(cli, ["keys", "vapid", "--vapid-private-key", other.private_key], env={})
    assert result.output.strip() == other.public_key
    result = CliRunner().invoke(cli, ["keys", "vapid", "--vapid-private-key", other.private_key,
                                      "--vapid-public-key", first.public_key], env={})
    assert result.exit_code != 0 and "does not belong" in result.output


# --- FCM -------------------------------------------------------------------------------------------


@pytest.fixture
async def fcm() -> AsyncIterator[FcmService]:
    service = FcmService()
    await service.start()
    yield service
    await service.stop()


def fcm_adapter(fcm: FcmService, tmp_path: Path) -> FcmAdapter:
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(fcm.service_account()))
    return FcmAdapter(ServiceAccount.load(path), endpoint=fcm.url)


def android(n: int, token: str) -> Device:
    return Device(f"and{n}", "android", token, badge=3)


async def test_fcm_delivers_v1_messages_with_one_token(fcm: FcmService, tmp_path: Path) -> None:
    adapter = fcm_adapter(fcm, tmp_path)
    data = {"alert": "Hi", "title": "T", "badge": 4, "content-available": 1, "uri": "app://x", "n": 5}
    expiration = datetime.now(UTC) + timedelta(minutes=10)
    try:
        first = await adapter.send(data, [android(0, "tok-a"), android(1, "tok-b")], push_id="push1",
                                   expiration=expiration, priority=None)
        second = await adapter.send(data, [android(2, "tok-c")], push_id="push2", expiration=None,
                                    priority="normal")
    finally:
        await adapter.close()
    assert all(r.ok for r in first + second), first + second
    assert fcm.exchanges == 1 and adapter.token_exchanges == 1 and fcm.rejected == []
    by_token = {m["token"]: m for m in fcm.messages}
    message = by_token["tok-a"]
    assert message["data"]["push_id"] == "push1"
    assert json.loads(message["data"]["data"]) == {"alert": "Hi", "title": "T", "uri": "app://x", "n": 5}
    assert message["data"]["time"].endswith("Z")
    assert message["android"]["priority"] == "high"
    assert 590 <= int(message["android"]["ttl"][:-1]) <= 600
    assert by_token["tok-c"]["android"] == {"priority": "normal"}


async def test_fcm_access_token_is_renewed(fcm: FcmService, tmp_path: Path) -> None:
    fcm.token_lifetime = 2  # renewed after half its life
    adapter = fcm_adapter(fcm, tmp_path)
    try:
        assert (await adapter.send({"alert": "1"}, [android(0, "t")], push_id="a", expiration=None))[0].ok
        assert (await adapter.send({"alert": "2"}, [android(0, "t")], push_id="b", expiration=None))[0].ok
        assert fcm.exchanges == 1
        await asyncio.sleep(1.1)
        assert (await adapter.send({"alert": "3"}, [android(0, "t")], push_id="c", expiration=None))[0].ok
        assert fcm.exchanges == 2
        fcm.token_lifetime = 3600
        fcm.revoke_tokens()  # the service forgets the token: 401, a new exchange, the send succeeds
        results = await adapter.send({"alert": "4"}, [android(0, "t"), android(1, "u")], push_id="d",
                                     expiration=None)
    finally:
        await adapter.close()
    assert all(r.ok for r in results)
    assert fcm.exchanges == 3 and len(fcm.messages) == 5


async def test_fcm_errors(fcm: FcmService, tmp_path: Path) -> None:
    adapter = fcm_adapter(fcm, tmp_path)
    fcm.fail("dead", 404, "UNREGISTERED")
    fcm.fail("invalid", 400, "INVALID_ARGUMENT")
    fcm.fail("busy", 429, retry_after=11)
    fcm.fail("down", 500)
    fcm.fail("other", 403, "SENDER_ID_MISMATCH")
    tokens = ["ok", "dead", "invalid", "busy", "down", "other"]
    try:
        results = await adapter.send({"alert": "x"}, [android(i, t) for i, t in enumerate(tokens)], push_id="p",
                                     expiration=None)
    finally:
        await adapter.close()
    r = dict(zip(tokens, results, strict=True))
    assert r["ok"].ok
    assert r["dead"].gone and r["invalid"].gone
    assert r["busy"].retry_after == 11 and not r["busy"].gone
    assert r["down"].retry_after is not None and not r["down"].gone
    assert not r["other"].ok and not r["other"].gone and r["other"].retry_after is None
    assert "SENDER_ID_MISMATCH" in (r["other"].error or "")


async def test_fcm_refuses_an_assertion_signed_by_another_key(fcm: FcmService, tmp_path: Path) -> None:
    account = fcm.service_account()
    account["private_key"] = fcm.service_account()["private_key"]  # the right email, the wrong key
    adapter = FcmAdapter(ServiceAccount(account), endpoint=fcm.url)
    try:
        [result] = await adapter.send({"alert": "x"}, [android(0, "t")], push_id="p", expiration=None)
    finally:
        await adapter.close()
    assert not result.ok and result.retry_after and "token exchange" in (result.error or "")
    assert fcm.exchanges == 0 and fcm.messages == []


# --- APNs ------------------------------------------------------------------------------------------

DEVICE = "a" * 64


@pytest.fixture
async def apns() -> AsyncIterator[ApnsService]:
    service = ApnsService()
    await service.start()
    yield service
    await service.stop()


def apns_adapter(apns: ApnsService, clock=time.time) -> ApnsAdapter:
    key_id, pem = apns.new_key()
    return ApnsAdapter(load_p8(pem), key_id=key_id, team_id=apns.team_id, topic=apns.topic, endpoint=apns.url,
                       clock=clock)


def ios(n: int, token: str = DEVICE, badge: int | None = None, app: str | None = None) -> Device:
    return Device(f"ios{n}", "ios", token, app_identifier=app, badge=badge)


async def test_apns_delivers_over_http2(apns: ApnsService) -> None:
    adapter = apns_adapter(apns)
    data = {"alert": "Body", "title": "Title", "sound": "default", "category": "c", "threadId": "t",
            "uri": "app://x", "custom": [1, 2], "collapseId": "grp"}
    expiration = datetime.now(UTC) + timedelta(hours=1)
    try:
        results = await adapter.send(data, [ios(0, badge=5), ios(1, "b" * 64, badge=1, app="com.example.app")],
                                     push_id="p", expiration=expiration, priority=None)
        response = await adapter._client.post(f"{apns.url}/3/device/{DEVICE}", content=b"{}")
        assert response.http_version == "HTTP/2"
    finally:
        await adapter.close()
    assert [r.ok for r in results] == [True, True], results
    first, second = apns.notifications
    assert first.device_token == DEVICE
    assert first.payload == {"aps": {"alert": {"body": "Body", "title": "Title"}, "sound": "default",
                                     "category": "c", "thread-id": "t", "badge": 5},
                             "uri": "app://x", "custom": [1, 2]}
    assert second.payload["aps"]["badge"] == 1
    headers = first.headers
    assert headers["apns-topic"] == "com.example.app" and headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10" and headers["apns-collapse-id"] == "grp"
    assert int(headers["apns-expiration"]) == int(expiration.timestamp())
    assert apns.rejected == [(403, "MissingProviderToken")]  # only the bare request above


async def test_apns_background_push(apns: ApnsService) -> None:
    adapter = apns_adapter(apns)
    try:
        [result] = await adapter.send({"content-available": 1, "refresh": True}, [ios(0)], push_id="p",
                                      expiration=None, priority="high")
    finally:
        await adapter.close()
    assert result.ok, result
    [note] = apns.notifications
    assert note.payload == {"aps": {"content-available": 1}, "refresh": True}
    assert note.headers["apns-push-type"] == "background" and note.headers["apns-priority"] == "5"
    assert "apns-expiration" not in note.headers


async def test_apns_provider_token_is_reused_then_refreshed(apns: ApnsService) -> None:
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    apns.clock = clock
    adapter = apns_adapter(apns, clock)
    try:
        for minutes in (0, 10, 49):
            offset[0] = minutes * 60
            assert (await adapter.send({"alert": "x"}, [ios(0)], push_id="p", expiration=None))[0].ok
        assert len(apns.tokens_seen) == 1 and adapter.tokens_made == 1
        offset[0] = 51 * 60  # past the 50 minutes: a new token, which Apple accepts
        assert (await adapter.send({"alert": "x"}, [ios(0)], push_id="p", expiration=None))[0].ok
        assert len(apns.tokens_seen) == 2 and adapter.tokens_made == 2
        apns.expire_current_tokens()  # Apple says ExpiredProviderToken: a new token, the same request again
        results = await adapter.send({"alert": "y"}, [ios(0), ios(1)], push_id="p", expiration=None)
        assert all(r.ok for r in results), results
        assert adapter.tokens_made == 3
    finally:
        await adapter.close()
    assert len(apns.notifications) == 6


async def test_apns_errors(apns: ApnsService) -> None:
    adapter = apns_adapter(apns)
    tokens = {"gone": "1" * 64, "bad": "2" * 64, "busy": "3" * 64, "down": "4" * 64, "ok": "5" * 64}
    apns.fail(tokens["gone"], 410, "Unregistered")
    apns.fail(tokens["bad"], 400, "BadDeviceToken")
    apns.fail(tokens["busy"], 429, "TooManyRequests", retry_after=3)
    apns.fail(tokens["down"], 503, "ServiceUnavailable")
    devices = [ios(i, t) for i, t in enumerate(tokens.values())]
    devices += [ios(9, "zz-not-hex"), ios(10, "6" * 64, app="com.other.app")]
    try:
        results = await adapter.send({"alert": "x"}, devices, push_id="p", expiration=None)
    finally:
        await adapter.close()
    r = {d.installation_id: d for d in results}
    assert r["ios0"].gone and r["ios1"].gone
    assert r["ios2"].retry_after == 3 and r["ios3"].retry_after is not None
    assert r["ios4"].ok
    assert not r["ios9"].ok and not r["ios9"].gone
    assert not r["ios10"].ok and not r["ios10"].gone and "DeviceTokenNotForTopic" in (r["ios10"].error or "")


# --- configuration ---------------------------------------------------------------------------------


def test_open_push_adapters(tmp_path: Path) -> None:
    [web] = open_push_adapters(Settings(data_dir=tmp_path), tmp_path)
    assert web.name == "webpush" and (tmp_path / "vapid.json").exists()
    assert web.subject.startswith("mailto:")
    web2 = open_push_adapters(Settings(data_dir=tmp_path, server_url="https://api.example.com/parse"), tmp_path)[0]
    assert web2.keys.public_key == web.keys.public_key and web2.subject == "https://api.example.com"

    service = FcmService()
    (tmp_path / "sa.json").write_text(json.dumps(service.service_account()))
    apns = ApnsService()
    key_id, pem = apns.new_key()
    (tmp_path / "key.p8").write_text(pem)
    settings = Settings(data_dir=tmp_path, fcm_service_account=str(tmp_path / "sa.json"),
                        apns_key=str(tmp_path / "key.p8"), apns_key_id=key_id, apns_team_id="T",
                        apns_production=True, vapid_subject="mailto:me@example.com")
    adapters = open_push_adapters(settings, tmp_path)
    assert [a.name for a in adapters] == ["webpush", "fcm", "apns"]
    assert adapters[2].endpoint == "https://api.push.apple.com"
    assert adapters[1].device_types == {"android"} and "ios" in adapters[2].device_types
    with pytest.raises(ValueError, match="--apns-key-id"):
        open_push_adapters(Settings(data_dir=tmp_path, apns_key=str(tmp_path / "key.p8")), tmp_path)
    with pytest.raises(ValueError, match="cannot read"):
        open_push_adapters(Settings(data_dir=tmp_path, fcm_service_account=str(tmp_path / "none.json")), tmp_path)
