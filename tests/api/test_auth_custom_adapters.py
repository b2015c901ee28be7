"""Auth adapters written in Python (cloud code's ``cloud.auth_adapter``), Parse's adapter interface
over the wire: the legacy single check, the three steps, ``after_find``, ``authDataResponse``,
``POST /challenge``, the ``additional`` policy, and the auth config naming adapters by module."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.conftest import ROOT, Server, running_server

CLOUD = ROOT / "tests" / "auth_cloud"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if EXTERNAL:
        pytest.skip("starts its own Bastion with cloud code")
    config = tmp_path_factory.mktemp("auth") / "auth.json"
    config.write_text(json.dumps({"stepper": {"module": "stepper", "secret": "s3"}}))
    with running_server(request.param, ["--cloud", str(CLOUD), "--auth-config", str(config)]) as srv:
        yield srv


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def me(api: httpx.Client, token: str) -> dict[str, Any]:
    response = api.get("/users/me", headers={"X-Parse-Session-Token": token})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_legacy_adapter_signs_up_and_logs_in(api: httpx.Client) -> None:
    data = {"id": "ann", "token": "ok-ann"}
    created = api.post("/users", json={"authData": {"corp": data}})
    assert created.status_code == 201, created.text
    assert created.json()["authDataResponse"] == {"corp": {"welcome": "ann"}}
    token = created.json()["sessionToken"]
    # The adapter's `save` is what is stored: the token is not kept.
    assert me(api, token)["authData"] == {"corp": {"id": "ann"}}
    again = api.post("/users", json={"authData": {"corp": data}})
    assert again.status_code == 200 and again.json()["objectId"] == created.json()["objectId"]
    refused = api.post("/users", json={"authData": {"corp": {"id": "ann", "token": "ok-bob"}}})
    assert refused.status_code == 404
    assert refused.json() == {"code": 101, "error": "Corp auth is invalid for this user."}
    # An id alone is not enough to become the user.
    alone = api.post("/users", json={"authData": {"corp": {"id": "ann"}}})
    assert alone.status_code == 404 and alone.json()["code"] == 101


def test_the_three_steps_and_after_find(api: httpx.Client) -> None:
    created = api.post("/users", json={"authData": {"stepper": {"id": "s1", "password": "s3"}}})
    assert created.status_code == 201, created.text
    assert created.json()["authDataResponse"] == {"stepper": {"step": "setUp"}}
    token = created.json()["sessionToken"]
    assert me(api, token)["authData"] == {"stepper": {"id": "s1", "shown": True}}
    logged = api.post("/users", json={"authData": {"stepper": {"id": "s1", "password": "s3"}}})
    assert logged.status_code == 200, logged.text
    assert logged.json()["authDataResponse"] == {"stepper": {"step": "login"}}
    assert logged.json()["authData"] == {"stepper": {"id": "s1", "shown": True}}
    user_id = created.json()["objectId"]
    updated = api.put(f"/users/{user_id}", json={"authData": {"stepper": {"id": "s1", "password": "s3", "n": 2}}},
                      headers={"X-Parse-Session-Token": token})
    assert updated.status_code == 200, updated.text
    assert updated.json()["authDataResponse"] == {"stepper": {"step": "update"}}
    wrong = api.post("/users", json={"authData": {"stepper": {"id": "s1", "password": "nope"}}})
    assert wrong.status_code == 400
    assert wrong.json() == {"code": 141, "error": "wrong stepper password"}


def test_an_additional_provider_is_required_at_log_in(api: httpx.Client) -> None:
    signed = api.post("/users", json={"username": "addi", "password": "pw-addi"})
    assert signed.status_code == 201
    token, user_id = signed.json()["sessionToken"], signed.json()["objectId"]
    linked = api.put(f"/users/{user_id}", json={"authData": {"second": {"code": "4242"}}},
                     headers={"X-Parse-Session-Token": token})
    assert linked.status_code == 200, linked.text
    missing = api.post("/login", json={"username": "addi", "password": "pw-addi"})
    assert missing.status_code == 400
    assert missing.json() == {"code": -1, "error": "Missing additional authData second"}
    bad = api.post("/login", json={"username": "addi", "password": "pw-addi", "authData": {"second": {"code": "1"}}})
    assert bad.status_code == 400 and bad.json() == {"code": 141, "error": "Invalid second factor"}
    good = api.post("/login", json={"username": "addi", "password": "pw-addi",
                                    "authData": {"second": {"code": "4242"}}})
    assert good.status_code == 200, good.text
    assert good.json()["sessionToken"].startswith("r:")
    assert good.json()["authDataResponse"] == {}


def test_challenge(api: httpx.Client) -> None:
    api.post("/users", json={"authData": {"corp": {"id": "chal", "token": "ok-chal"}}})
    answer = api.post("/challenge", json={"authData": {"corp": {"id": "chal", "token": "ok-chal"}},
                                          "challengeData": {"corp": {"x": 1}, "unknown": {}}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["challengeData"]["corp"]["nonce"] == "n-1"
    assert answer.json()["challengeData"]["corp"]["user"]
    # The data naming the user must prove it: an id alone, or a wrong token, finds nobody.
    for auth_data in ({"corp": {"id": "chal"}}, {"corp": {"id": "chal", "token": "ok-x"}},
                      {"corp": {"id": "nobody", "token": "ok-nobody"}}):
        refused = api.post("/challenge", json={"authData": auth_data, "challengeData": {"corp": {}}})
        assert refused.status_code == 404 and refused.json() == {"code": 101, "error": "User not found."}
    for body, message in (({}, "Nothing to challenge."),
                          ({"challengeData": "x"}, "challengeData should be an object."),
                          ({"username": "u", "challengeData": {}},
                           "You provided username or email, you need to also provide password.")):
        wrong = api.post("/challenge", json=body)
        assert wrong.status_code == 400 and wrong.json() == {"code": -1, "error": message}, wrong.text


def _serve_exit(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bastion", "serve", "--data-dir", str(tmp_path), "--port", "0",
                           *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize(("auth", "expected"), [
    ({"stepper": {"module": "stepper"}}, "auth provider 'stepper': secret is required"),
    ({"nope": {"clientId": "x"}}, "auth provider 'nope': not a provider Parse Server ships"),
    ({"corp": {"module": "no.such.module:Thing"}}, "auth provider 'corp': module 'no.such.module:Thing' cannot be"),
    ({"myoidc": {"oidc": True, "issuer": "ftp://x", "clientId": "a"}}, "auth provider 'myoidc': issuer must be"),
])
def test_a_bad_auth_config_stops_the_start_with_one_line(auth: dict[str, Any], expected: str,
                                                         tmp_path: Path) -> None:
    config = tmp_path / "auth.json"
    config.write_text(json.dumps(auth))
    done = _serve_exit(["--cloud", str(CLOUD), "--auth-config", str(config)], tmp_path)
    assert done.returncode != 0
    assert expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreadable_or_invalid_auth_config_file(tmp_path: Path) -> None:
    missing = _serve_exit(["--auth-config", str(tmp_path / "none.json")], tmp_path)
    assert missing.returncode != 0 and "--auth-config" in missing.stderr and "Traceback" not in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    invalid = _serve_exit(["--auth-config", str(broken)], tmp_path)
    assert invalid.returncode != 0 and "not valid JSON" in invalid.stderr and "Traceback" not in invalid.stderr
