"""End to end on the planted suppression model (real pipeline): the pytest plugin and `verify --baseline`."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
from rich.console import Console

import circuitspec.regress
import circuitspec.spec.loader
import circuitspec.stats.outcome  # loaded before pytester snapshots sys.modules

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow

ZOO = Path(__file__).resolve().parents[1] / "hypotheses" / "zoo"


def _copy_suppression(into: Path) -> Path:
    (into / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(ZOO / "data" / "suppression.jsonl", into / "data" / "suppression.jsonl")
    return Path(shutil.copy(ZOO / "suppression.yaml", into / "suppression.yaml"))


def test_plugin_runs_every_claim_of_a_real_hypothesis(pytester: pytest.Pytester):
    import torch
    import transformer_lens  # noqa: F401  (imported once, outside the in-process run)

    import circuitspec.pipeline  # noqa: F401  (so the in-process run does not import it)

    torch.set_num_threads(1)
    pytester.makeini(
        "[pytest]\naddopts = -p no:cacheprovider -p no:hypothesispytest -p no:typeguard -p no:jaxtyping\n"
        "filterwarnings = ignore::DeprecationWarning\n    ignore::FutureWarning\n    ignore::UserWarning\n"
    )
    path = _copy_suppression(pytester.path / "hypotheses")
    n_claims = len(circuitspec.spec.loader.load_hypothesis(path).claims)
    assert n_claims == 11

    xml = pytester.path / "junit.xml"
    result = pytester.runpytest("hypotheses", f"--junitxml={xml}")
    result.assert_outcomes(passed=n_claims)  # the true circuit: every claim holds
    assert xml.read_text().count("<testcase ") == n_claims


def test_verify_baseline_names_the_claim_that_broke(tmp_path: Path):
    import torch

    from circuitspec.pipeline import verify

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    quiet = Console(quiet=True)
    path = _copy_suppression(tmp_path / "hyp")
    assert verify(path, out=tmp_path / "base", progress=False, console=quiet) == 0
    baseline = tmp_path / "base" / "report.json"

    same = Console(record=True, width=200)
    assert verify(path, out=tmp_path / "same", baseline=baseline, progress=False, console=same) == 0
    assert "no regressions" in same.export_text()

    # the mover writes exactly +4 (a closed form): demanding more than 5 must fail, and only that claim
    text = path.read_text()
    assert text.count('expect: "mean > 3"') == 1
    path.write_text(text.replace('expect: "mean > 3"', 'expect: "mean > 5"'))
    broke = Console(record=True, width=200)
    assert verify(path, out=tmp_path / "new", baseline=baseline, progress=False, console=broke) == 1
    log = broke.export_text()
    assert "1 regression(s): mover_positive" in log
    regressions = circuitspec.regress.diff_reports(baseline, tmp_path / "new" / "report.json", console=quiet)
    assert [(r.claim_id, r.kind, r.base_verdict, r.new_verdict) for r in regressions] == [
        ("mover_positive", "verdict", "pass", "fail")
    ]
