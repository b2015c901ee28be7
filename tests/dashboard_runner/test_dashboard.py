"""Runs Parse Dashboard against Bastion on each backend and drives it in headless Chromium
(tests/dashboard/drive.mjs): the data browser, every cell type, columns, classes, export, CLPs, Users,
Roles, relations, Config, Jobs, Push, API Console, Webhooks, Logs, Cloud Code; each step's effect is
checked through REST and every page must be free of console errors and failed requests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, Server, free_port, running_server

DASHBOARD_DIR = ROOT / "tests" / "dashboard"
ARTIFACTS = DASHBOARD_DIR / "artifacts"  # gitignored: screenshots and exports of the last run
APP_NAME = "Bastion"


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def skip_reason() -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node/npm are not installed: the Parse Dashboard suite needs Node 20"
    if not (DASHBOARD_DIR / "node_modules" / "parse-dashboard").exists():
        return "Parse Dashboard is not installed: run `npm ci` in tests/dashboard (./scripts/test does)"
    if chromium_path() is None:
        return "chromium is not installed (apt-get install chromium; .ci/run does as root)"
    return None


@contextmanager
def running_dashboard(server: Server) -> Iterator[str]:
    """Parse Dashboard on a free loopback port, managing ``server`` as the app APP_NAME."""
    port = free_port()
    config_dir = Path(tempfile.mkdtemp(prefix="bastion-dashboard-"))
    config = {"apps": [{"serverURL": server.url, "appId": server.app_id, "masterKey": server.master_key,
                        "javascriptKey": server.javascript_key, "appName": APP_NAME}]}
    (config_dir / "config.json").write_text(json.dumps(config))
    log = open(config_dir / "dashboard.log", "wb")  # noqa: SIM115 - closed with the process
    # --allowInsecureHTTP: the dashboard refuses plain HTTP otherwise; everything here is on loopback.
    process = subprocess.Popen(
        ["node", str(DASHBOARD_DIR / "node_modules" / "parse-dashboard" / "bin" / "parse-dashboard"),
         "--config", str(config_dir / "config.json"), "--host", "127.0.0.1", "--port", str(port),
         "--allowInsecureHTTP", "true"],
        cwd=config_dir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"parse-dashboard exited: {(config_dir / 'dashboard.log').read_text()[-3000:]}")
            try:
                if httpx.get(url + "/apps", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("parse-dashboard did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(config_dir, ignore_errors=True)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_parse_dashboard(backend: str) -> None:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    # A server of its own (fresh database) with the cloud code of tests/cloud_app: jobs and functions.
    with running_server(backend, ["--cloud", str(ROOT / "tests" / "cloud_app")]) as server, \
            running_dashboard(server) as dashboard_url:
        artifacts = ARTIFACTS / backend
        shutil.rmtree(artifacts, ignore_errors=True)
        env = dict(os.environ)
        env.update(DASHBOARD_URL=dashboard_url, APP_NAME=APP_NAME, PARSE_SERVER_URL=server.url,
                   PARSE_APP_ID=server.app_id, PARSE_MASTER_KEY=server.master_key,
                   PARSE_JS_KEY=server.javascript_key, CHROMIUM=str(chromium_path()), ARTIFACTS=str(artifacts),
                   PUPPETEER_SKIP_DOWNLOAD="1")
        result = subprocess.run(["node", "drive.mjs"], cwd=DASHBOARD_DIR, env=env, capture_output=True,
                                text=True, timeout=300)
        print(result.stdout)
        print(f"Parse Dashboard screenshots ({backend}): {artifacts}")
        assert result.returncode == 0, (
            f"Parse Dashboard suite failed on {backend}:\n" + result.stdout[-8000:] + result.stderr[-3000:]
        )
        assert "steps: 22, failed: 0" in result.stdout, result.stdout[-3000:]
