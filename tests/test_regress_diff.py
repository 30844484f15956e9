"""`circuitspec diff` / `verify --baseline`: which claim changes count as regressions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from circuitspec.cli.regress_commands import register
from circuitspec.errors import CircuitSpecError
from circuitspec.regress import diff_reports
from circuitspec.reports import ReportInput, render_json
from circuitspec.stats.outcome import ClaimOutcome, Interval

HYPOTHESIS = """\
name: tiny_regress
model: {name: tiny, shape: {n_layers: 2, n_heads: 2, d_model: 16}}
data:
  rows: [{a: good, b: bad}]
  templates:
    - id: t
      text: "The movie was {a}"
      desired: " {a}"
      undesired: " {b}"
claims:
  - id: dla
    kind: attribution
    targets: [L1H0]
    expect: "mean < 0"
    tolerance: 0.3
  - id: heads
    kind: ablation
    targets: [L0H0, L0H1]
    each: true
    expect: "no effect within 0.1"
    tolerance_ci_widths: 1.0
  - id: plain
    kind: attribution
    targets: [L1H1]
    expect: "mean > 0"
"""

# (estimate, ci low, ci high, verdict) per claim id; the baseline every test starts from
BASE = {
    "dla": (-0.7, -0.9, -0.5, "pass"),
    "heads[L0H0]": (0.0, -0.05, 0.05, "pass"),
    "heads[L0H1]": (0.02, -0.03, 0.07, "pass"),
    "plain": (0.4, 0.1, 0.7, "inconclusive"),
}
KINDS = {"dla": "attribution", "plain": "attribution"}
EXPECT = {"dla": "mean < 0", "plain": "mean > 0"}


def _outcome(claim_id: str, estimate: float, low: float, high: float, verdict: str, statistic: str = "mean"):
    return ClaimOutcome(
        claim_id=claim_id,
        kind=KINDS.get(claim_id, "ablation"),
        expectation=EXPECT.get(claim_id, "no effect within 0.1"),
        statistic=statistic,
        estimate=estimate,
        ci=Interval(low, high, 0.95, "BCa"),
        verdict=verdict,  # type: ignore[arg-type]
        reason="test",
        n_prompts=32,
    )


@pytest.fixture
def hypothesis(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_regress.yaml"
    path.write_text(HYPOTHESIS)
    return path


def write_report(
    path: Path, hypothesis: Path | str, claims: dict[str, tuple], statistic: str = "mean"
) -> Path:
    """A report.json written by the real report writer from made-up outcomes."""
    outcomes = [_outcome(cid, *values, statistic=statistic) for cid, values in claims.items()]
    report = ReportInput(
        hypothesis_name="tiny_regress",
        hypothesis_path=str(hypothesis),
        hypothesis_sha256="0" * 64,
        model={"name": "tiny"},
        seed=0,
        multiple_comparisons="holm",
        outcomes=outcomes,
        packages={},
    )
    path.write_text(render_json(report))
    return path


def changed(claim_id: str, estimate: float | None = None, verdict: str | None = None, ci=None) -> dict:
    claims = dict(BASE)
    old = claims[claim_id]
    low, high = ci if ci else (old[1], old[2])
    claims[claim_id] = (old[0] if estimate is None else estimate, low, high, verdict or old[3])
    return claims


def diff(tmp_path: Path, hypothesis: Path, new_claims: dict, **kwargs) -> tuple[list, str]:
    base = write_report(tmp_path / "base.json", hypothesis, BASE)
    new = write_report(tmp_path / "new.json", hypothesis, new_claims, **kwargs)
    console = Console(record=True, width=200, force_terminal=False)
    regressions = diff_reports(base, new, console=console)
    return regressions, console.export_text()


def test_identical_reports_have_no_regression(tmp_path, hypothesis):
    regressions, text = diff(tmp_path, hypothesis, dict(BASE))
    assert regressions == []
    assert "no regressions" in text


@pytest.mark.parametrize(
    ("claim_id", "before", "after"),
    [("dla", "pass", "fail"), ("dla", "pass", "inconclusive"), ("plain", "inconclusive", "fail")],
)
def test_worse_verdict_is_a_regression_naming_the_claim(tmp_path, hypothesis, claim_id, before, after):
    regressions, text = diff(tmp_path, hypothesis, changed(claim_id, verdict=after))
    assert [(r.claim_id, r.kind, r.base_verdict, r.new_verdict) for r in regressions] == [
        (claim_id, "verdict", before, after)
    ]
    assert claim_id in text and "REGRESSED" in text and f"{before} → {after}" in text


def test_better_verdict_is_not_a_regression(tmp_path, hypothesis):
    regressions, _ = diff(tmp_path, hypothesis, changed("plain", verdict="pass"))
    assert regressions == []


@pytest.mark.parametrize(
    ("new_estimate", "regressed"),
    [
        (-0.4, False),  # exactly +0.3 (in floats -0.4 - -0.7 = 0.30000000000000004: rounding is not a move)
        (-1.0, False),  # exactly -0.3
        (-0.4 + 1e-6, True),  # just beyond
        (-1.0 - 1e-6, True),
        (-0.55, False),
    ],
)
def test_absolute_tolerance_edge(tmp_path, hypothesis, new_estimate, regressed):
    regressions, text = diff(tmp_path, hypothesis, changed("dla", estimate=new_estimate))
    assert [(r.claim_id, r.kind) for r in regressions] == ([("dla", "moved")] if regressed else [])
    if regressed:
        assert "beyond ±0.3" in text


@pytest.mark.parametrize(("new_estimate", "regressed"), [(0.1, False), (-0.1, False), (0.1001, True)])
def test_ci_width_tolerance_uses_the_baseline_interval(tmp_path, hypothesis, new_estimate, regressed):
    # heads[L0H0] baseline CI [-0.05, 0.05]: one CI width = 0.1; the new CI is much wider and
    # must not widen the band (the baseline's interval is the yardstick)
    new = changed("heads[L0H0]", estimate=new_estimate, ci=(-1.0, 1.0))
    regressions, _ = diff(tmp_path, hypothesis, new)
    assert [(r.claim_id, r.kind) for r in regressions] == ([("heads[L0H0]", "moved")] if regressed else [])


def test_claim_without_tolerance_may_move(tmp_path, hypothesis):
    regressions, _ = diff(tmp_path, hypothesis, changed("plain", estimate=40.0))
    assert regressions == []


def test_disappeared_claim_is_a_regression_and_a_new_one_is_not(tmp_path, hypothesis):
    new = dict(BASE)
    del new["dla"]
    new["extra"] = (1.0, 0.5, 1.5, "fail")
    regressions, text = diff(tmp_path, hypothesis, new)
    assert [(r.claim_id, r.kind) for r in regressions] == [("dla", "missing")]
    assert "extra" in text and "new" in text


def test_changed_statistic_is_a_regression(tmp_path, hypothesis):
    regressions, _ = diff(tmp_path, hypothesis, dict(BASE), statistic="median")
    assert sorted({r.kind for r in regressions}) == ["statistic"]
    assert len(regressions) == len(BASE)


def test_tolerances_need_the_hypothesis_file(tmp_path, hypothesis):
    base = write_report(tmp_path / "base.json", tmp_path / "gone.yaml", BASE)
    new = write_report(tmp_path / "new.json", tmp_path / "gone.yaml", changed("dla", estimate=-5.0))
    console = Console(record=True, width=200)
    assert diff_reports(base, new, console=console) == []  # no file: verdicts only
    assert "no hypothesis file found" in console.export_text()
    assert [r.claim_id for r in diff_reports(base, new, console=console, hypothesis=hypothesis)] == ["dla"]


def test_bad_report_is_a_one_line_error(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"no": "claims"}))
    with pytest.raises(CircuitSpecError, match="not a circuitspec report") as error:
        diff_reports(tmp_path / "x.json", tmp_path / "x.json")
    assert "\n" not in str(error.value)
    with pytest.raises(CircuitSpecError, match="no such report"):
        diff_reports(tmp_path / "missing.json", tmp_path / "x.json")


def test_cli_diff_exit_codes(tmp_path, hypothesis):
    app = typer.Typer()
    register(app)
    base = write_report(tmp_path / "base.json", hypothesis, BASE)
    same = write_report(tmp_path / "same.json", hypothesis, BASE)
    worse = write_report(tmp_path / "worse.json", hypothesis, changed("heads[L0H1]", verdict="fail"))
    runner = CliRunner()
    assert runner.invoke(app, ["diff", str(base), str(same)]).exit_code == 0
    result = runner.invoke(app, ["diff", str(base), str(worse)])
    assert result.exit_code == 1
    assert "heads[L0H1]" in result.output and "\x1b[" not in result.output  # no colours in a log
    missing = runner.invoke(app, ["diff", str(base), str(tmp_path / "nope.json")])
    assert missing.exit_code == 2
