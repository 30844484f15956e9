"""`verify --baseline` end to end on the planted suppression model (the real pipeline)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
from rich.console import Console

from circuitspec.regress import diff_reports

pytestmark = pytest.mark.slow

ZOO = Path(__file__).resolve().parents[1] / "hypotheses" / "zoo"


def _copy_suppression(into: Path) -> Path:
    (into / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(ZOO / "data" / "suppression.jsonl", into / "data" / "suppression.jsonl")
    return Path(shutil.copy(ZOO / "suppression.yaml", into / "suppression.yaml"))


def test_verify_baseline_names_the_claim_that_broke(tmp_path: Path):
    import torch

    from circuitspec.pipeline import verify

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    from circuitspec.pipeline import run_verification
    from circuitspec.reports import build_report_input, render_json

    quiet = Console(quiet=True)
    path = _copy_suppression(tmp_path / "hyp")
    baseline, rerun = tmp_path / "baseline.json", tmp_path / "rerun.json"
    for target in (baseline, rerun):
        target.write_text(render_json(build_report_input(run_verification(path, progress=False))))
    assert diff_reports(baseline, rerun, console=quiet) == []  # same model, same seed: nothing moved

    # the mover writes exactly +4 (a closed form): demanding more than 5 must fail, and only that claim
    text = path.read_text()
    assert text.count('expect: "mean > 3"') == 1
    path.write_text(text.replace('expect: "mean > 3"', 'expect: "mean > 5"'))
    console = Console(record=True, width=200)
    assert verify(path, out=tmp_path / "new", baseline=baseline, progress=False, console=console) == 1
    assert "1 regression(s): mover_positive" in console.export_text()
    regressions = diff_reports(baseline, tmp_path / "new" / "report.json", console=quiet)
    assert [(r.claim_id, r.kind, r.base_verdict, r.new_verdict) for r in regressions] == [
        ("mover_positive", "verdict", "pass", "fail")
    ]
