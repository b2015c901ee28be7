"""bench/run.py: ratios to Parse Server are taken within one round, and summarized over rounds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# bench/ is a directory of scripts, not a package: load run.py under a name of its own, without
# putting bench/ (whose cloud.py, files.py, ... would shadow other modules) on sys.path.
_SPEC = importlib.util.spec_from_file_location("bastion_bench_run", Path(__file__).resolve().parents[2] / "bench" / "run.py")
assert _SPEC is not None and _SPEC.loader is not None
run = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = run  # dataclasses look their module up while the file runs
_SPEC.loader.exec_module(run)


def row(server: str, rps: float, round_no: int, workload: str = "get", workers: int = 1) -> run.Row:
    return run.Row(server=server, workers=workers, workload=workload, rps=rps, round=round_no)


def test_ratios_compare_within_a_round_and_summarize_by_median() -> None:
    rows = [row("bastion-pg", 9000, 1), row("parse", 3000, 1),
            row("bastion-pg", 8000, 2), row("parse", 4000, 2),
            row("bastion-pg", 12000, 3), row("parse", 4000, 3),
            row("bastion-pg", 5000, 1, workers=2), row("parse", 2500, 1, workers=2)]
    run.fill_ratios(rows)
    assert [r.ratio_vs_parse for r in rows if r.server == "bastion-pg"] == [3.0, 2.0, 3.0, 2.0]
    assert sorted(run.ratio_summary(rows)) == [("bastion-pg", 1, "get", 3.0, 2.0, 3.0, 3),
                                               ("bastion-pg", 2, "get", 2.0, 2.0, 2.0, 1)]


def test_a_round_without_parse_gives_no_ratio() -> None:
    rows = [row("bastion-pg", 9000, 1), row("parse", 3000, 1), row("bastion-pg", 9000, 2)]
    run.fill_ratios(rows)
    assert rows[2].ratio_vs_parse is None
    assert run.ratio_summary(rows) == [("bastion-pg", 1, "get", 3.0, 3.0, 3.0, 1)]


def test_rounds_must_be_positive() -> None:
    assert run.positive_int("3") == 3
    for bad in ("0", "-1", "x"):
        with pytest.raises(run.argparse.ArgumentTypeError):
            run.positive_int(bad)
