"""report.json: versioned schema, determinism outside ``timings``, rounding, NaN handling."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from circuitspec.measurement import HeadGrid, Measurement, RunCost, TargetValues
from circuitspec.reports import REPORT_SCHEMA_VERSION, build_report_input, render_json, write_reports
from circuitspec.reports.json_report import jsonable
from circuitspec.reports.model import PACKAGES, file_sha256, package_versions
from circuitspec.stats.outcome import ClaimOutcome, Interval
from tests.helpers.report_sample import sample_report_input


def _before_timings(text: str) -> str:
    """Everything before the ``timings`` key; sorted keys put it last but for nothing."""
    head, _, tail = text.partition('\n  "timings": ')
    assert tail, "no timings section"
    return head


def test_same_seed_gives_byte_identical_json_outside_timings():
    first = render_json(sample_report_input(seed=3, seconds=1.0))
    second = render_json(sample_report_input(seed=3, seconds=7.25))  # only the clock differs
    assert first != second  # the timings do differ ...
    assert _before_timings(first) == _before_timings(second)  # ... and nothing else does
    data_1, data_2 = json.loads(first), json.loads(second)
    assert list(data_1)[-1] == "timings"
    assert {k: v for k, v in data_1.items() if k != "timings"} == {
        k: v for k, v in data_2.items() if k != "timings"
    }
    # a different seed gives different per-prompt data
    assert _before_timings(render_json(sample_report_input(seed=4))) != _before_timings(first)


def test_written_json_matches_a_fresh_render(tmp_path):
    first, second = sample_report_input(seconds=1.0), sample_report_input(seconds=2.0)
    first.outcomes = first.outcomes[:2]  # two claims: quick to render the HTML's plots
    second.outcomes = second.outcomes[:2]
    written = write_reports(first, tmp_path)["json"].read_text(encoding="utf-8")
    assert _before_timings(written) == _before_timings(render_json(second))


def test_schema_keys_and_claim_fields():
    report_input = sample_report_input()
    data = json.loads(render_json(report_input))
    assert data["schema_version"] == REPORT_SCHEMA_VERSION == 1
    for key in (
        "hypothesis",
        "model",
        "packages",
        "seed",
        "multiple_comparisons",
        "claims",
        "timings",
        "notes",
    ):
        assert key in data
    assert data["hypothesis"] == {
        "name": "ioi_sample",
        "path": "hypotheses/ioi_sample.yaml",
        "sha256": "0" * 64,
        "description": report_input.description,
    }
    assert data["model"]["weights_sha256"] == "f" * 64
    assert set(data["packages"]) >= {"circuitspec", "torch", "transformer-lens", "numpy", "scipy"}
    assert data["packages"]["numpy"] == np.__version__
    assert data["summary"] == {
        "n_claims": 8,
        "pass": 4,
        "fail": 2,
        "inconclusive": 2,
        "error": 0,
        "all_passed": False,
    }

    claims = {c["id"]: c for c in data["claims"]}
    assert list(claims) == [o.claim_id for o in report_input.outcomes]
    faithful = claims["faithful"]
    for key in (
        "kind",
        "targets",
        "expectation",
        "statistic",
        "estimate",
        "ci",
        "p_value",
        "percentile",
        "verdict",
        "reason",
        "n_prompts",
        "plots",
        "points",
        "arrays",
    ):
        assert key in faithful
    assert faithful["ci"] == {"low": 0.5, "high": 0.74, "level": 0.95, "method": "BCa"}
    assert faithful["p_value"] == {"raw": 0.0099, "adjusted": 0.0396, "adjustment": "holm"}
    assert faithful["targets"] == ["L7H5", "L8H4", "MLP9"]
    assert faithful["n_prompts"] == 40
    # the per-prompt arrays behind the statistic, summarised and in full
    clean = report_input.measurements["faithful"].arrays["clean"]
    assert faithful["arrays"]["clean"]["n"] == 40
    assert faithful["arrays"]["clean"]["mean"] == pytest.approx(clean.mean(), rel=1e-9)
    assert faithful["arrays"]["clean"]["values"] == pytest.approx(clean.tolist(), rel=1e-9)
    # timings: per claim and totals, matching the RunCosts
    timings = data["timings"]
    costs = [m.cost for m in report_input.measurements.values()]
    assert timings["forward_passes"] == sum(c.forward_passes for c in costs)
    assert timings["tokens"] == sum(c.tokens for c in costs)
    assert timings["claims"]["faithful"] == {"forward_passes": 102, "tokens": 102 * 480, "seconds": 3.0}
    assert timings["total_seconds"] == 7.5


def test_plot_data_is_in_the_json():
    report_input = sample_report_input()
    claims = {c["id"]: c for c in json.loads(render_json(report_input))["claims"]}
    types = {cid: [p["type"] for p in c["plots"]] for cid, c in claims.items()}
    assert types == {
        "dla_negative": ["bars", "bars"],
        "lens_rises": ["bars", "heatmap"],
        "name_mover_attends": ["distribution", "attention"],
        "scaling_monotone": ["sweep"],
        "faithful": ["runs", "baseline_histogram"],
        "control_nan": [],
        "broken": [],
        "ablate_hurts": ["distribution"],
    }
    sweep = claims["scaling_monotone"]["plots"][0]
    outcome = next(o for o in report_input.outcomes if o.claim_id == "scaling_monotone")
    assert sweep["x"] == [p.x for p in outcome.points]
    assert sweep["estimates"] == pytest.approx([p.estimate for p in outcome.points], rel=1e-9)
    assert sweep["low"] == pytest.approx([p.ci.low for p in outcome.points], rel=1e-9)
    first = 1 / (1 + math.exp(4))
    assert claims["scaling_monotone"]["points"][0] == {
        "x": -4.0,
        "estimate": pytest.approx(first, rel=1e-9),
        "ci": {"low": pytest.approx(first - 0.08), "high": pytest.approx(first + 0.08), "level": 0.95},
    }
    # histogram of the random baseline: counts add up to N, observed value and guide are kept
    baseline = claims["faithful"]["plots"][1]
    assert sum(baseline["counts"]) == 100 and len(baseline["edges"]) == 31
    assert baseline["observed"] == 0.62 and baseline["guide"] == {"threshold": 0.8, "op": ">="}
    # per-target bars: mean and a normal-approximation CI of each target's per-prompt values
    bars = claims["dla_negative"]["plots"][1]
    payload = report_input.measurements["dla_negative"].plots[0]
    assert isinstance(payload, TargetValues)
    values = payload.values["L7H5"]
    half = 1.959963985 * values.std(ddof=1) / math.sqrt(values.size)
    assert bars["labels"] == ["L7H5", "L8H4"] and bars["ci_method"] == "normal"
    assert bars["estimates"][0] == pytest.approx(values.mean(), rel=1e-9)
    assert bars["low"][0] == pytest.approx(values.mean() - half, rel=1e-8)
    # the grid and attention pattern come through as given
    grid = report_input.measurements["lens_rises"].plots[0]
    assert isinstance(grid, HeadGrid) and claims["lens_rises"]["plots"][1]["rows"][:2] == ["L0", "L1"]
    np.testing.assert_allclose(claims["lens_rises"]["plots"][1]["values"], grid.values, rtol=1e-9)
    attention = claims["name_mover_attends"]["plots"][1]
    assert attention["tokens"][:3] == ["<bos>", "When", " Mary"]


def test_nan_and_inf_become_null_with_a_note():
    text = render_json(sample_report_input())

    def reject(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    data = json.loads(text, parse_constant=reject)  # strict JSON: no NaN / Infinity literals
    control = next(c for c in data["claims"] if c["id"] == "control_nan")
    assert control["estimate"] is None
    assert control["details"]["undefined"] is None
    assert control["arrays"]["value"]["values"] == [None] * 40 and control["arrays"]["value"]["mean"] is None
    assert "$.claims[5].estimate: nan written as null" in data["notes"]
    assert "$.claims[5].details.undefined: inf written as null" in data["notes"]


def test_floats_are_rounded_to_ten_significant_digits():
    notes: list[str] = []
    assert jsonable(0.1 + 0.2, notes) == 0.3
    assert jsonable(np.float32(1 / 3), notes) == 0.3333333433
    assert jsonable(-0.0, notes) == 0.0 and json.dumps(jsonable(-0.0, notes)) == "0.0"
    assert jsonable({"a": np.array([1.23456789012345e-20, np.int64(3)])}, notes) == {
        "a": [1.23456789e-20, 3.0]
    }
    assert jsonable(np.arange(3), notes) == [0, 1, 2]
    assert notes == []


def test_package_versions_are_read_without_importing():
    versions = package_versions()
    assert tuple(versions) == PACKAGES
    assert versions["numpy"] == np.__version__
    assert package_versions(("surely-not-installed-package",)) == {"surely-not-installed-package": None}
    script = (
        "import sys\n"
        "from circuitspec.reports import render_json, render_markdown\n"
        "from tests.helpers.report_sample import sample_report_input\n"
        "r = sample_report_input(); render_json(r); render_markdown(r)\n"
        "print('torch' in sys.modules, 'transformer_lens' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_build_report_input_from_a_verification(tmp_path):
    yaml_path = tmp_path / "h.yaml"
    yaml_path.write_text("name: h\n")
    claim = SimpleNamespace(
        id="c1", kind="attribution", targets=["L0H1"], expect="mean > 0", confidence=0.9, description=""
    )
    outcome = ClaimOutcome(
        "c1", "attribution", "mean > 0", "mean", 1.0, Interval(0.5, 1.5, 0.9, "BCa"), "pass", "CI above 0", 10
    )
    measurement = Measurement(
        "c1", "attribution", 10, arrays={"value": np.ones(10)}, cost=RunCost(1, 50, 0.2)
    )
    spec = SimpleNamespace(name="h", description="d", claims=[claim])
    verification = SimpleNamespace(
        hypothesis=SimpleNamespace(spec=spec, path=yaml_path),
        graph=None, model_identity={"source": "tiny", "device": "cpu"}, measurements={"c1": measurement},
        outcomes=[outcome], correction="bh", seed=7, checkpoint=3, seconds=1.25,
    )  # fmt: skip
    report_input = build_report_input(verification)
    assert report_input.hypothesis_sha256 == file_sha256(yaml_path) != ""
    assert report_input.claims == {"c1": claim} and report_input.model["checkpoint"] == 3
    data = json.loads(render_json(report_input))
    assert data["seed"] == 7 and data["multiple_comparisons"] == "bh" and data["hypothesis"]["name"] == "h"
    assert data["claims"][0]["targets"] == ["L0H1"] and data["claims"][0]["confidence"] == 0.9
    assert data["timings"]["total_seconds"] == 1.25 and data["graph"] is None


def test_claims_without_measurements_still_report():
    report_input = replace(sample_report_input(), measurements={}, claims={})
    data = json.loads(render_json(report_input))
    assert [c["verdict"] for c in data["claims"]] == [o.verdict for o in report_input.outcomes]
    assert data["timings"]["forward_passes"] == 0


def test_output_ends_with_newline_and_sorted_keys(tmp_path: Path):
    text = render_json(sample_report_input())
    assert text.endswith("}\n")
    data = json.loads(text)
    assert list(data) == sorted(data)
