"""Runs tests/sdk/mfa.test.mjs (the Parse JS SDK with the mfa auth adapter) against Bastion on each
backend, started with ``auth: {mfa: {options: ["TOTP"]}}``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, running_server

SDK_DIR = Path(__file__).resolve().parent.parent / "sdk"
MFA = {"mfa": {"options": ["TOTP"], "digits": 6, "period": 30, "algorithm": "SHA1"}}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mfa_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the Parse JS SDK suite needs Node 20")
    if not (SDK_DIR / "node_modules" / "parse").exists():
        pytest.skip("the Parse JS SDK is not installed: run `npm ci` in tests/sdk (./scripts/test does)")
    with running_server(request.param, ["--auth", json.dumps(MFA)]) as server:
        yield server


def test_mfa_with_the_parse_js_sdk(mfa_server: Server) -> None:
    env = dict(os.environ)
    env.update(PARSE_SERVER_URL=mfa_server.url, PARSE_APP_ID=mfa_server.app_id,
               PARSE_MASTER_KEY=mfa_server.master_key, PARSE_JS_KEY=mfa_server.javascript_key, PARSE_MFA="1")
    result = subprocess.run(["node", "--test", "--test-reporter=spec", "mfa.test.mjs"], cwd=SDK_DIR, env=env,
                            capture_output=True, text=True, timeout=300)
    counts = dict(re.findall(r"^ℹ (\w+) (\d+)$", result.stdout, re.MULTILINE))
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert int(counts.get("pass", 0)) >= 3 and int(counts.get("skipped", -1)) == 0, counts
