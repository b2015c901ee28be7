"""The complete example of docs/cloud-code.md runs as documented (so the docs cannot rot)."""

from __future__ import annotations

import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import assert_error
from tests.conftest import ROOT, Server, start_server, stop_server

DOC = ROOT / "docs" / "cloud-code.md"


def example_code() -> str:
    text = DOC.read_text()
    section = text.split("## A complete example", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "docs/cloud-code.md lost its complete example"
    return match.group(1)


@pytest.fixture(scope="module")
def example_server(own_server: None) -> Iterator[Server]:
    directory = Path(tempfile.mkdtemp(prefix="bastion-docs-cloud-"))
    (directory / "main.py").write_text(example_code())
    srv = start_server("sqlite", None, ["--cloud", str(directory / "main.py")])
    try:
        with srv.client(master=True) as master:
            assert master.post("/schemas/GameScore", json={"className": "GameScore"}).status_code == 200
        yield srv
    finally:
        stop_server(srv)


def sign_up(srv: Server) -> tuple[str, str, httpx.Client]:
    name = "player_" + secrets.token_hex(4)
    with srv.client() as client:
        answer = client.post("/users", json={"username": name, "password": "pw"}).json()
    client = srv.client()
    client.headers["X-Parse-Session-Token"] = answer["sessionToken"]
    return name, answer["objectId"], client


def test_scores_are_checked_stamped_and_counted(example_server: Server) -> None:
    name, user_id, player = sign_up(example_server)
    with player:
        assert_error(player.post("/classes/GameScore", json={"score": -1}), 400, 142, "score must be >= 0")
        created = player.post("/classes/GameScore", json={"score": 42})
        assert created.status_code == 201, created.text
        stored = player.get(f"/classes/GameScore/{created.json()['objectId']}").json()
        assert stored["player"] == {"__type": "Pointer", "className": "_User", "objectId": user_id}
        assert stored["ACL"] == {user_id: {"read": True, "write": True}, "*": {"read": True}}
        me = player.get("/users/me").json()
        assert me["scores"] == 1  # after_save counted it, through the data API with the master key
        board = player.post("/functions/leaderboard", json={"limit": 5}).json()["result"]
        assert {"player": name, "score": 42} in board


def test_banned_players_cannot_log_in(example_server: Server) -> None:
    name, user_id, player = sign_up(example_server)
    player.close()
    with example_server.client(master=True) as master:
        assert master.put(f"/users/{user_id}", json={"banned": True}).status_code == 200
    with example_server.client() as client:
        assert_error(client.post("/login", json={"username": name, "password": "pw"}), 400, 119,
                     "this account is banned")


def test_the_cleanup_job_removes_old_scores(example_server: Server) -> None:
    _name, _user_id, player = sign_up(example_server)
    with player:
        assert player.post("/classes/GameScore", json={"score": 1}).status_code == 201
    with example_server.client(master=True) as master:
        started = master.post("/jobs/cleanup", json={"days": 0})
        job_id = started.headers["X-Parse-Job-Status-Id"]
        deadline = time.monotonic() + 15
        status = {}
        while time.monotonic() < deadline:
            status = master.get(f"/classes/_JobStatus/{job_id}").json()
            if status.get("status") != "running":
                break
            time.sleep(0.1)
        assert status["status"] == "succeeded", status
        assert re.fullmatch(r"removed \d+ scores", status["message"])
        assert master.get("/classes/GameScore", params={"count": 1, "limit": 0}).json()["count"] == 0
