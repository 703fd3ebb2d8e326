"""The committed reduced-benchmark report is what the script makes of the committed per-run
results: every mean, standard deviation and bootstrap interval in
``benchmarks/results/learned_reduced.{json,md}`` is recomputed here from
``benchmarks/results/runs/*.json`` (so a stale report, or a changed aggregation or interval,
fails)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
SCRIPT = RESULTS.parent / "learned_reduced.py"


def _script():
    spec = importlib.util.spec_from_file_location("learned_reduced", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.mark.skipif(not (RESULTS / "runs").is_dir(), reason="no committed runs")
def test_committed_report_is_recomputed_from_the_committed_runs(tmp_path):
    shutil.copytree(RESULTS / "runs", tmp_path / "runs")
    script = _script()
    report = script.stage_report(script.Sizes(results=tmp_path))
    committed = json.loads((RESULTS / "learned_reduced.json").read_text())
    assert [r["model"] for r in report["rows"]] == [r["model"] for r in committed["rows"]]
    for mine, theirs in zip(report["rows"], committed["rows"], strict=True):
        for key, value in mine.items():
            assert value == theirs[key], f"{mine['model']}: {key} differs from the committed report"
    assert (tmp_path / "learned_reduced.md").read_text() == (
        RESULTS / "learned_reduced.md"
    ).read_text()
