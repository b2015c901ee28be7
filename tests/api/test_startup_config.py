"""Settings as a started server applies them: from ./bastion.toml, BASTION_* variables and flags
(flags win over variables, variables over the file), on a port the system picks (--port 0); and
the logs of several workers: JSON lines at --log-level, each request's lines with its id.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

APP, MASTER = "cfg-app", "cfg-master"


def _start(cwd: Path, args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """A server started in ``cwd``; its URL, read from the banner once it answers."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("BASTION_")}
    log = open(cwd / "server.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen([sys.executable, "-m", "bastion", "serve", *args], cwd=cwd, stdout=log,
                               stderr=subprocess.STDOUT, env={**environ, "PYTHONPATH": str(ROOT), **env})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        output = (cwd / "server.log").read_text()
        if process.poll() is not None:
            raise RuntimeError(f"bastion exited: {output[-3000:]}")
        found = re.search(r"API:\s+(\S+)", output)
        if found:
            try:
                if httpx.get(found.group(1) + "/health", timeout=1).status_code == 200:
                    return process, found.group(1)
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"bastion did not start: {(cwd / 'server.log').read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cwd = tmp_path_factory.mktemp("configured")
    # The file sets three limits; a variable overrides one, a flag another.
    (cwd / "bastion.toml").write_text(
        f'app_id = "{APP}"\nmaster_key = "{MASTER}"\ndata_dir = "data"\nport = 0\n'
        "max_body_bytes = 100000\nmax_regex_length = 4\nmax_include_depth = 1\n")
    env = {"BASTION_MAX_BODY_BYTES": "300", "BASTION_MAX_INCLUDE_DEPTH": "2"}
    process, url = _start(cwd, ["--max-regex-length", "8"], env)
    try:
        yield url
    finally:
        _stop(process)


def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-Parse-Application-Id": APP, "X-Parse-Master-Key": MASTER},
                        timeout=30)


def test_port_zero_is_the_port_the_banner_prints(configured: str) -> None:
    port = int(configured.rsplit(":", 1)[1].split("/")[0])
    assert port not in (0, 1337)  # the system's choice, printed, and served (the fixture reached it)


def test_a_variable_wins_over_the_file(configured: str) -> None:
    with _client(configured) as client:
        assert client.post("/classes/Cfg", json={"s": "x" * 100}).status_code == 201
        too_big = client.post("/classes/Cfg", json={"s": "x" * 400})
        assert too_big.status_code == 413, too_big.text
        # BASTION_MAX_INCLUDE_DEPTH (ignored before: overwritten with the default) over the file's 1.
        assert client.get("/classes/Cfg", params={"include": "a.b"}).status_code == 200
        assert client.get("/classes/Cfg", params={"include": "a.b.c"}).json()["code"] == 102


def test_a_flag_wins_over_the_file(configured: str) -> None:
    with _client(configured) as client:
        regex = client.get("/classes/Cfg", params={"where": json.dumps({"s": {"$regex": "x" * 8}})})
        assert regex.status_code == 200, regex.text
        longer = client.get("/classes/Cfg", params={"where": json.dumps({"s": {"$regex": "x" * 9}})})
        assert longer.status_code == 400, longer.text


def test_workers_log_json_at_the_log_level_with_request_ids(tmp_path: Path) -> None:
    args = ["--port", "0", "--data-dir", "data", "--app-id", APP, "--master-key", MASTER, "--workers", "2",
            "--log-level", "verbose", "--access-log"]
    process, url = _start(tmp_path, args, {})
    try:
        with _client(url) as client:
            for _ in range(6):
                assert client.get("/classes/Logged").status_code == 200
    finally:
        _stop(process)
    output = (tmp_path / "server.log").read_text()
    banner, _, logs = output.partition("\n{")
    assert "Warning:" not in banner and "SQLite table" in banner  # two workers share the database's channel
    lines = [json.loads(line) for line in ("{" + logs).splitlines() if line.strip()]  # every line is JSON
    # INFO lines of both workers (uvicorn's, written in each worker once its logging is set up).
    started = {line["message"] for line in lines if line["message"].startswith("Started server process")}
    assert len(started) == 2, output
    requests = [line for line in lines if line["logger"] == "uvicorn.access" and "/classes/Logged" in line["message"]]
    assert len(requests) == 6 and all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+", line["request"]) for line in requests)
    assert len({line["request"] for line in requests}) == 6
    # --log-level verbose reached the workers: Parse Server's request lines, each with its request's id.
    verbose = [line for line in lines if line["level"] == "verbose" and "/classes/Logged" in line["message"]]
    assert {line["request"] for line in verbose} == {line["request"] for line in requests}, output
    assert "Traceback" not in output
