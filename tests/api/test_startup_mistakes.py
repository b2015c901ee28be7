"""`bastion serve` with a configuration mistake: one clear line on standard error, a non-zero exit,
never a traceback, for one worker or many (issue 18, "Start-up").

Each case starts `python -m bastion serve` as an operator would and waits for it to give up.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL, ROOT, free_port, postgres_available

SECRET = "s3cret-pw"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without BASTION_* variables, importing this checkout's bastion from any directory."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("BASTION_")}
    return {**environ, "PYTHONPATH": str(ROOT), **extra}


def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bastion", "serve", "--data-dir", str(tmp_path / "data"), "--port", "0",
               "--app-id", "app", "--master-key", "master", *args]
    return subprocess.run(command, cwd=tmp_path, env=clean_env(**(env or {})), capture_output=True,
                          text=True, timeout=timeout, check=False)


def assert_one_line(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The start failed with a single ``Error: …`` line (nothing on stdout), which says ``expected``."""
    assert result.returncode != 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    for text in expected:
        assert text in lines[0], lines[0]
    assert SECRET not in lines[0]  # passwords in URLs are redacted
    return lines[0]


# Every numeric option's range is checked in tests/unit/test_settings_sources.py; a few through a start here.
@pytest.mark.parametrize(("args", "expected"), [
    (["--port", "99999"], ["'--port'", "0<=x<=65535"]),
    (["--workers", "0"], ["'--workers'"]),
    (["--max-body-bytes", "-1"], ["'--max-body-bytes'"]),
    (["--query-timeout-ms", "0"], ["'--query-timeout-ms'"]),
    (["--database", "mysql://root@localhost/app"], ["--database mysql://", "not a database URL"]),
    (["--database", "sqlite://relative.db"], ["not a database URL"]),
    (["--database", f"postgresql://bastion:{SECRET}@127.0.0.1:5432"], ["names no database", ":***@"]),
    (["--database", f"postgresql://bastion:{SECRET}@127.0.0.1:notaport/app"], ["malformed URL"]),
    (["--pubsub", "amqp://localhost"], ["--pubsub must be redis://host:port/db or memory"]),
])
def test_a_bad_flag_is_one_line(tmp_path: Path, args: list[str], expected: list[str]) -> None:
    assert_one_line(serve(tmp_path, *args), *expected)


def test_a_bad_variable_is_one_line(tmp_path: Path) -> None:
    assert_one_line(serve(tmp_path, env={"BASTION_MAX_BODY_BYTES": "-1"}), "'--max-body-bytes'")
    assert_one_line(serve(tmp_path, env={"BASTION_WORKERS": "0"}), "'--workers'")


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql://bastion:{SECRET}@127.0.0.1:{free_port()}/app"
    line = assert_one_line(serve(tmp_path, "--database", url), "cannot be opened", "bastion:***@127.0.0.1")
    assert "refused" in line.lower() or "failed" in line.lower(), line


def test_a_missing_postgres_database_is_one_line(tmp_path: Path) -> None:
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/bastion_no_such_database"
    assert_one_line(serve(tmp_path, "--database", url), "does not exist")


def test_an_unreachable_pubsub_is_one_line(tmp_path: Path) -> None:
    assert_one_line(serve(tmp_path, "--pubsub", f"redis://127.0.0.1:{free_port()}/0"), "--pubsub redis://")


def test_a_data_dir_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    # Under a file rather than a read-only directory: tests may run as root, who writes anywhere.
    result = serve(tmp_path, "--data-dir", str(tmp_path / "a-file" / "data"))
    assert_one_line(result, "--data-dir", "not a writable directory")


@pytest.mark.parametrize("content", ["{not json", '["a", "list"]', '{"appId": 3}'])
def test_a_corrupt_keys_file_is_one_line(tmp_path: Path, content: str) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)  # private, as Bastion makes it: no warning beside the error
    (data / "keys.json").write_text(content)
    command = [sys.executable, "-m", "bastion", "serve", "--data-dir", str(data), "--port", "0"]
    result = subprocess.run(command, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60,
                            check=False)
    assert_one_line(result, "keys.json")


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_line(serve(tmp_path, "--port", str(port), "--host", "127.0.0.1"), f"cannot listen on 127.0.0.1:{port}")


def test_workers_that_fail_to_start_exit_non_zero(tmp_path: Path) -> None:
    # Cloud code that loads in the first process (which checks it) but fails in each worker, which
    # has the settings in its environment: the start fails after the workers are spawned.
    cloud = tmp_path / "cloud.py"
    cloud.write_text("import os\nif os.environ.get('BASTION_WORKERS'):\n    raise RuntimeError('no workers here')\n")
    result = serve(tmp_path, "--workers", "2", "--cloud", str(cloud), timeout=90)
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr
    failed = [line for line in result.stderr.splitlines() if "start-up failed" in line]
    assert failed and all(line.startswith("{") and "no workers here" in line for line in failed), result.stderr


def test_one_worker_that_fails_to_start_exits_non_zero(tmp_path: Path) -> None:
    cloud = tmp_path / "cloud.py"
    cloud.write_text("import os\nif os.environ.get('BASTION_WORKERS'):\n    raise RuntimeError('not here')\n")
    result = serve(tmp_path, "--cloud", str(cloud))
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr and "not here" in result.stderr
