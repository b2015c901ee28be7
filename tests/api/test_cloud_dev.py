"""``--dev`` reloads cloud code on change without dropping connections; broken cloud code stops the
start with the file and line. Servers of their own, on SQLite (reloading does not touch storage).
"""

from __future__ import annotations

import http.client
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT, Server, free_port, start_server, stop_server

VERSION = '''from bastion import cloud


@cloud.define("devVersion")
def version(request):
    return "{version}"
'''


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class KeptConnection:
    """One HTTP/1.1 connection, kept open across requests (http.client never reconnects silently)."""

    def __init__(self, server: Server) -> None:
        url = urlsplit(server.url)
        self.server = server
        self.path = url.path
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
        self.socket: object = None

    def call(self, name: str) -> tuple[int, dict[str, object]]:
        self.conn.request("POST", f"{self.path}/functions/{name}", body=b"{}", headers={
            "X-Parse-Application-Id": self.server.app_id, "X-Parse-Javascript-Key": self.server.javascript_key,
            "Content-Type": "application/json"})
        response = self.conn.getresponse()
        body = json.loads(response.read())
        if self.socket is None:
            self.socket = self.conn.sock
        assert self.conn.sock is self.socket, "the connection was dropped"
        return response.status, body

    def version(self) -> object:
        status, body = self.call("devVersion")
        return body.get("result") if status == 200 else body

    def close(self) -> None:
        self.conn.close()


def server_log(server: Server) -> str:
    return (server.data_dir / "server.log").read_text(errors="replace")


def test_dev_reloads_cloud_code_and_keeps_the_old_code_on_a_broken_edit(own_server: None, tmp_path: Path) -> None:
    code = tmp_path / "devcloud"
    code.mkdir()
    main = code / "main.py"
    main.write_text(VERSION.format(version="v1"))
    server = start_server("sqlite", None, ["--cloud", str(main), "--dev"])
    kept = KeptConnection(server)
    try:
        assert kept.version() == "v1"
        main.write_text(VERSION.format(version="v2"))
        wait_for(lambda: kept.version() == "v2", "the edit to be picked up")

        # A broken edit is logged with its file and line; the previous code keeps running.
        main.write_text("from bastion import cloud\n\n\ndef broken(:\n    pass\n")
        wait_for(lambda: "cloud code not reloaded" in server_log(server), "the broken edit to be reported")
        assert f"{main.resolve()}:4" in server_log(server)
        assert kept.version() == "v2"

        # Fixed again, with a sibling module the cloud code imports (read anew as well).
        (code / "greeting.py").write_text('TEXT = "v3"\n')
        main.write_text('from bastion import cloud\n\nimport greeting\n\n\n@cloud.define("devVersion")\n'
                        'def version(request):\n    return greeting.TEXT\n')
        wait_for(lambda: kept.version() == "v3", "the fixed code to be picked up")
        (code / "greeting.py").write_text('TEXT = "v4"\n')
        wait_for(lambda: kept.version() == "v4", "an edit of the sibling module to be picked up")

        # A function that went away is gone.
        main.write_text("from bastion import cloud\n")
        wait_for(lambda: kept.version() == {"code": 141, "error": 'Invalid function: "devVersion"'},
                 "the function to be dropped")
        assert server.process.poll() is None  # one process all along, on one connection
    finally:
        kept.close()
        stop_server(server)


def test_without_dev_cloud_code_does_not_reload(own_server: None, tmp_path: Path) -> None:
    main = tmp_path / "main.py"
    main.write_text(VERSION.format(version="v1"))
    server = start_server("sqlite", None, ["--cloud", str(main)])
    kept = KeptConnection(server)
    try:
        assert kept.version() == "v1"
        main.write_text(VERSION.format(version="v2"))
        time.sleep(1.5)
        assert kept.version() == "v1"
    finally:
        kept.close()
        stop_server(server)


def serve_broken(tmp_path: Path, source: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    broken = tmp_path / "broken.py"
    broken.write_text(source)
    args = [sys.executable, "-m", "bastion", "serve", "--cloud", str(broken), "--port", str(free_port()),
            "--host", "127.0.0.1", "--data-dir", str(tmp_path / "data"), "--app-id", "app",
            "--master-key", "mk-" + secrets.token_hex(4), "--log-level", "warning"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
    return done, broken.resolve()


@pytest.mark.parametrize(("source", "line", "reason"), [
    ("from bastion import cloud\n\n\n@cloud.define('x')\ndef x(request:\n    return 1\n", 5, "SyntaxError"),
    ("from bastion import cloud\n\nSETTINGS = {}\n\nTIMEOUT = SETTINGS['timeout']\n", 5, "KeyError: 'timeout'"),
    ("from bastion import cloud\n\n\n@cloud.before_save('_Session')\ndef f(request):\n    pass\n", 4,
     "Only the after_logout trigger is allowed for the _Session class."),
])
def test_broken_cloud_code_stops_the_start_naming_file_and_line(own_server: None, tmp_path: Path, source: str,
                                                                line: int, reason: str) -> None:
    done, broken = serve_broken(tmp_path, source)
    assert done.returncode != 0
    assert f"{broken}:{line}" in done.stderr, done.stderr
    assert reason in done.stderr, done.stderr
    assert "Traceback" not in done.stderr  # a message, not a crash


def test_reloading_never_drops_installed_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A project that keeps its virtual environment beside its cloud code (project/.venv, project/main.py):
    # loading the code again re-reads the project's modules, never the installed ones (Bastion among them).
    from bastion.cloud._runtime.loader import load_cloud

    env = tmp_path / ".venv" / "lib"
    env.mkdir(parents=True)
    (env / "installed_helper.py").write_text("VALUE = 1\n")
    (tmp_path / "own_helper.py").write_text("VALUE = 'own'\n")
    main = tmp_path / "main.py"
    main.write_text('from bastion import cloud\nimport installed_helper\nimport own_helper\n\n\n'
                    '@cloud.define("x")\ndef x(request):\n    return own_helper.VALUE\n')
    monkeypatch.setattr(sys, "prefix", str(tmp_path / ".venv"))
    monkeypatch.syspath_prepend(str(env))
    monkeypatch.delitem(sys.modules, "installed_helper", raising=False)
    monkeypatch.delitem(sys.modules, "own_helper", raising=False)
    registry_module = sys.modules["bastion.cloud._runtime.registry"]
    assert load_cloud(main).summary() == "1 functions, 0 jobs, 0 triggers"
    installed, own = sys.modules["installed_helper"], sys.modules["own_helper"]
    assert load_cloud(main).summary() == "1 functions, 0 jobs, 0 triggers"
    assert sys.modules["installed_helper"] is installed  # kept
    assert sys.modules["own_helper"] is not own  # read anew
    assert sys.modules["bastion.cloud._runtime.registry"] is registry_module
    monkeypatch.delitem(sys.modules, "installed_helper", raising=False)
    monkeypatch.delitem(sys.modules, "own_helper", raising=False)
