"""`circuitspec regress`: one verification per checkpoint, a claims × checkpoints matrix."""

from __future__ import annotations

import json
import re

import pytest
from rich.console import Console

from circuitspec.checkpoints import parse_checkpoints, regress
from circuitspec.errors import CircuitSpecError
from circuitspec.pipeline import Verification
from circuitspec.spec.loader import load_hypothesis
from circuitspec.stats.outcome import ClaimOutcome, Interval
from tests.helpers.tiny_matrix import HYPOTHESIS

# what a (made-up) model says at each checkpoint: (estimate, low, high, verdict)
TRAJECTORY = {
    "step_0": {"dla": (0.3, 0.1, 0.5, "fail"), "control": (0.0, -0.2, 0.2, "inconclusive")},
    "step_500": {"dla": (-0.1, -0.3, 0.1, "inconclusive"), "control": (0.01, -0.05, 0.07, "pass")},
    "final": {"dla": (-0.7, -0.9, -0.5, "pass"), "control": (0.0, -0.04, 0.04, "pass")},
}
KINDS = {"dla": ("attribution", "mean < 0", "mean"), "control": ("ablation", "no effect within 0.1", "mean")}


class FakeRun:
    """Stands in for run_verification: records the checkpoints it was asked for."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def __call__(self, path, *, checkpoint=None, seed=None, progress=True) -> Verification:
        self.calls.append(checkpoint)
        outcomes = [
            ClaimOutcome(cid, KINDS[cid][0], KINDS[cid][1], KINDS[cid][2], est, Interval(lo, hi, 0.95, "BCa"),
                         verdict, f"{cid} at {checkpoint}", 16)
            for cid, (est, lo, hi, verdict) in TRAJECTORY[str(checkpoint)].items()
        ]  # fmt: skip
        return Verification(
            hypothesis=load_hypothesis(path),
            graph=None,
            model_identity={"name": "tiny"},
            measurements={},
            outcomes=outcomes,
            correction="holm",
            seed=0,
            checkpoint=checkpoint,
        )


def test_parse_checkpoints():
    assert parse_checkpoints(" 0, 500,final,") == [0, 500, "final"]
    assert parse_checkpoints(["step_1", 3]) == ["step_1", 3]
    assert parse_checkpoints(None) == []


def test_matrix_across_the_yaml_checkpoints(tiny_matrix_hypothesis, tmp_path):
    fake = FakeRun()
    console = Console(record=True, width=200)
    result = regress(tiny_matrix_hypothesis, None, console=console, run=fake, progress=False)
    assert fake.calls == ["step_0", "step_500", "final"]  # one verification each, in order
    assert result.exit_code == 1  # the worst over checkpoints: step_0 fails 'dla' (final passes all)

    out = tmp_path / "reports" / "tiny_matrix"
    for checkpoint in TRAJECTORY:
        report = json.loads((out / f"checkpoint-{checkpoint}" / "report.json").read_text())
        assert report["checkpoint"] == checkpoint
        assert {c["id"]: c["verdict"] for c in report["claims"]} == {
            cid: values[3] for cid, values in TRAJECTORY[checkpoint].items()
        }

    matrix = json.loads(result.paths["json"].read_text())
    assert [c["name"] for c in matrix["checkpoints"]] == list(TRAJECTORY)
    assert matrix["checkpoints"][0]["report_dir"] == "checkpoint-step_0"
    for claim in matrix["claims"]:
        expected = [TRAJECTORY[cp][claim["id"]] for cp in TRAJECTORY]
        got = [(c["estimate"], c["ci"]["low"], c["ci"]["high"], c["verdict"]) for c in claim["cells"]]
        assert got == expected

    markdown = result.paths["md"].read_text()
    assert (
        "| `dla` | mean | fail 0.3 [0.1, 0.5] | inconclusive -0.1 [-0.3, 0.1] | pass -0.7 [-0.9, -0.5] |"
        in markdown
    )

    html = result.paths["html"].read_text()
    plots = re.findall(r'<svg [^>]*aria-label="([^"]*) across checkpoints"', html)
    assert len(plots) == 2 and "<img" not in html  # one inline SVG plot per claim
    assert html.count("<svg ") == 2 and html.count("</svg>") == 2
    assert 'href="checkpoint-final/report.html"' in html

    table = console.export_text()
    assert "claims × checkpoints" in table and "step_500" in table and "inconclusive -0.1" in table


def test_explicit_checkpoints_and_the_worst_exit_code(tiny_matrix_hypothesis, tmp_path):
    fake = FakeRun()
    result = regress(
        tiny_matrix_hypothesis, "final,step_0", out=tmp_path / "out", console=Console(quiet=True), run=fake
    )
    assert fake.calls == ["final", "step_0"]
    assert result.exit_code == 1  # step_0 fails a claim
    assert (tmp_path / "out" / "checkpoint-step_0" / "report.json").is_file()
    assert result.paths["html"] == tmp_path / "out" / "regression.html"


def test_no_checkpoints_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "h.yaml"
    path.write_text(HYPOTHESIS.replace("checkpoints: [step_0, step_500, final]\n", ""))
    with pytest.raises(CircuitSpecError, match="no checkpoints to compare"):
        regress(path, None, run=FakeRun(), console=Console(quiet=True))


def test_bundled_model_checkpoints_are_the_default(tmp_path, monkeypatch):
    from circuitspec.zoo.catalog import BUNDLED

    monkeypatch.chdir(tmp_path)
    shipped = list(BUNDLED["toy_sentiment"].checkpoints)
    path = tmp_path / "h.yaml"
    path.write_text(
        HYPOTHESIS.replace("checkpoints: [step_0, step_500, final]\n", "").replace(
            "model: {name: tiny, shape: {n_layers: 2, n_heads: 2, d_model: 16}}",
            "model: {bundled: toy_sentiment}",
        )
    )
    calls: list[object] = []

    def run(path, *, checkpoint=None, seed=None, progress=True):
        calls.append(checkpoint)
        return FakeRun()(path, checkpoint="final", seed=seed, progress=progress)

    import circuitspec.checkpoints

    # only the choice of checkpoints is under test here: skip rendering seven per-checkpoint reports
    monkeypatch.setattr(circuitspec.checkpoints, "_write_checkpoint_report", lambda result, prepared: {})
    result = regress(path, None, run=run, console=Console(quiet=True))
    assert calls == shipped and len(shipped) >= 5
    assert [c["name"] for c in json.loads(result.paths["json"].read_text())["checkpoints"]] == shipped


def test_an_unmeasured_claim_exits_2_unless_errors_are_allowed(tiny_matrix_hypothesis, tmp_path, monkeypatch):
    """As ``verify``: an 'error' cell makes regress exit 2; ``--allow-errors`` lets the other verdicts
    decide (here every other cell passes, so 0)."""
    nan = float("nan")
    final = {"dla": (-0.7, -0.9, -0.5, "pass"), "control": (nan, nan, nan, "error")}
    monkeypatch.setitem(TRAJECTORY, "final", final)
    quiet = Console(quiet=True)
    strict = regress(tiny_matrix_hypothesis, "final", out=tmp_path / "a", console=quiet, run=FakeRun())
    allowed = regress(
        tiny_matrix_hypothesis, "final", out=tmp_path / "b", console=quiet, run=FakeRun(), allow_errors=True
    )
    assert (strict.exit_code, allowed.exit_code) == (2, 0)
