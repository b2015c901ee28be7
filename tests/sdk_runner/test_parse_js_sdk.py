"""Runs the Parse JS SDK suite (tests/sdk, Node's test runner) against Bastion on each backend."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Server, backend_database

SDK_DIR = Path(__file__).resolve().parent.parent / "sdk"


def test_parse_js_sdk_suite(server: Server) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the Parse JS SDK suite needs Node 20")
    if not (SDK_DIR / "node_modules" / "parse").exists():
        pytest.skip("the Parse JS SDK is not installed: run `npm ci` in tests/sdk (./scripts/test does)")
    env = dict(os.environ)
    env.update(
        PARSE_SERVER_URL=server.url,
        PARSE_APP_ID=server.app_id,
        PARSE_MASTER_KEY=server.master_key,
        PARSE_JS_KEY=server.javascript_key,
        BASTION_CLOUD_APP="1",  # the server runs tests/cloud_app: tests may check what its handlers did
    )
    result = subprocess.run(["npm", "test", "--silent"], cwd=SDK_DIR, env=env, capture_output=True, text=True,
                            timeout=600)
    counts = dict(re.findall(r"^ℹ (\w+) (\d+)$", result.stdout, re.MULTILINE))
    assert result.returncode == 0, (
        f"Parse JS SDK suite failed on {server.backend}:\n" + result.stdout[-8000:] + result.stderr[-2000:]
    )
    # The suite must really have run: every test passed, none cancelled.
    assert int(counts.get("fail", -1)) == 0 and int(counts.get("cancelled", -1)) == 0, counts
    assert int(counts.get("pass", 0)) >= 60, counts


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_parse_js_sdk_auth_providers(backend: str) -> None:
    """auth_providers.test.mjs needs a server configured with its own key set: the harness starts
    that Bastion itself (no PARSE_SERVER_URL), on ``backend``."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the Parse JS SDK suite needs Node 20")
    if not (SDK_DIR / "node_modules" / "parse").exists():
        pytest.skip("the Parse JS SDK is not installed: run `npm ci` in tests/sdk (./scripts/test does)")
    with backend_database(backend) as database:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARSE_")}
        env["BASTION_PYTHON"] = sys.executable
        env.pop("BASTION_TEST_DATABASE", None)
        if database:
            env["BASTION_TEST_DATABASE"] = database
        result = subprocess.run(["node", "--test", "--test-reporter=spec", "auth_providers.test.mjs"], cwd=SDK_DIR,
                                env=env, capture_output=True, text=True, timeout=300)
    counts = dict(re.findall(r"^ℹ (\w+) (\d+)$", result.stdout, re.MULTILINE))
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert int(counts.get("pass", 0)) >= 4 and int(counts.get("skipped", -1)) == 0, counts
