"""Prints where the Parse Dashboard run left its screenshots, at the end of the session."""

from __future__ import annotations

import pytest

from tests.dashboard_runner.test_dashboard import ARTIFACTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ARTIFACTS.exists() and any(ARTIFACTS.iterdir()):
        terminalreporter.write_line(f"Parse Dashboard screenshots: {ARTIFACTS}")
