"""`circuitspec baseline` and the CLI wiring of `baseline` / `regress` (the pipeline replaced by a fake)."""

from __future__ import annotations

import json

import pytest
import typer
from test_regress_matrix import HYPOTHESIS, FakeRun
from typer.testing import CliRunner

import circuitspec.pipeline
from circuitspec.checkpoints import baseline
from circuitspec.cli.regress_commands import register
from circuitspec.regress import diff_reports


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def hypothesis(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny_matrix.yaml"
    path.write_text(HYPOTHESIS)
    return path


def test_baseline_is_the_report_json_and_diffs_clean_against_a_rerun(hypothesis, tmp_path):
    from rich.console import Console

    quiet = Console(quiet=True)
    target = baseline(hypothesis, checkpoint="final", console=quiet, run=FakeRun())
    assert target.resolve() == tmp_path / "reports" / "tiny_matrix" / "baseline.json"
    report = tmp_path / "reports" / "tiny_matrix" / "checkpoint-final" / "report.json"
    assert json.loads(target.read_text()) == json.loads(report.read_text())
    assert diff_reports(target, report, console=quiet) == []
    # the same hypothesis on an earlier checkpoint regresses: 'dla' pass → fail, 'control' pass → inconclusive
    baseline(hypothesis, tmp_path / "early.json", checkpoint="step_0", console=quiet, run=FakeRun())
    found = {
        (r.claim_id, r.base_verdict, r.new_verdict)
        for r in diff_reports(target, tmp_path / "early.json", quiet)
    }
    assert found == {("dla", "pass", "fail"), ("control", "pass", "inconclusive")}


def test_cli_baseline_and_regress(app, hypothesis, tmp_path, monkeypatch):
    monkeypatch.setattr(circuitspec.pipeline, "run_verification", FakeRun())
    runner = CliRunner()
    result = runner.invoke(app, ["baseline", str(hypothesis), "--checkpoint", "final"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "tiny_matrix" / "baseline.json").is_file()

    result = runner.invoke(app, ["regress", str(hypothesis), "--checkpoints", "final"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "tiny_matrix" / "regression.html").is_file()
    result = runner.invoke(app, ["regress", str(hypothesis), "--checkpoints", "step_0,final"])
    assert result.exit_code == 1  # step_0 fails a claim; final passing all does not hide it
    result = runner.invoke(app, ["regress", str(hypothesis), "--checkpoints", "final,step_500"])
    assert result.exit_code == 1  # step_500 leaves a claim inconclusive
    result = runner.invoke(app, ["regress", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "no such hypothesis file" in result.output
