"""Reports from the real upstream pieces: loader → graph → (made-up measurements) → stats → report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from circuitspec.graph.compile import compile_hypothesis
from circuitspec.graph.export import to_mermaid
from circuitspec.measurement import AttentionPattern, Measurement, RunCost, SweepPoint
from circuitspec.pipeline import Verification
from circuitspec.reports import build_report_input, render_json, render_markdown
from circuitspec.spec.loader import load_hypothesis
from circuitspec.stats import adjust, evaluate_claim

BASE = Path(__file__).parent / "fixtures" / "spec" / "base.yaml"


def _measure(claim, rng: np.random.Generator, n: int = 24) -> Measurement:
    """Seeded stand-in numbers shaped like the engine's output for each claim kind."""
    cost = RunCost(forward_passes=2, tokens=n * 9, seconds=float(rng.uniform(0.1, 0.5)))
    if claim.kind == "scaling":
        sweep = [SweepPoint(a, {"intervened": rng.normal(a - 1.5, 1.0, n)}) for a in claim.alphas]
        return Measurement(claim.id, claim.kind, n, sweep=sweep, sweep_variable="alpha", cost=cost)
    plots = []
    if claim.kind == "attention":
        pattern = np.tril(np.ones((5, 5))) / np.arange(1, 6)[:, None]
        plots.append(AttentionPattern(["Pos", "itive", ":", " good", "."], pattern.tolist()))
    value = rng.normal(0.5 if claim.kind != "path_patching" else -0.4, 1.0, n)
    random_baseline = rng.normal(0, 0.3, 50) if claim.kind == "path_patching" else None
    return Measurement(
        claim.id,
        claim.kind,
        n,
        arrays={"value": value},
        random_baseline=random_baseline,
        plots=plots,
        cost=cost,
    )


def _verification(seed: int, seconds: float) -> Verification:
    loaded = load_hypothesis(BASE)
    graph = compile_hypothesis(loaded)
    rng = np.random.default_rng(seed)
    measurements = {claim.id: _measure(claim, rng) for claim in graph.claims}
    outcomes = [
        evaluate_claim(measurements[c.id], c.expect, confidence=c.confidence, seed=seed, n_resamples=200)
        for c in graph.claims
    ]
    correction = adjust(outcomes, method=loaded.spec.multiple_comparisons)
    return Verification(
        hypothesis=loaded,
        graph=graph,
        model_identity={"source": "gpt2", "checkpoint": None, "weights_sha256": "ab" * 32, "device": "cpu",
                        "dtype": "float32"},
        measurements=measurements,
        outcomes=outcomes,
        correction=correction,
        seed=seed,
        seconds=seconds,
    )  # fmt: skip


@pytest.fixture(scope="module")
def verification() -> Verification:
    return _verification(seed=5, seconds=3.0)


def test_report_from_real_loader_graph_and_stats(verification):
    report_input = build_report_input(verification)
    loaded, graph = verification.hypothesis, verification.graph
    assert report_input.hypothesis_sha256 == loaded.sha256 and len(loaded.sha256) == 64
    assert report_input.graph_format == "mermaid" and report_input.graph_text == to_mermaid(graph)
    data = json.loads(render_json(report_input))
    assert data["hypothesis"]["name"] == "base" and data["hypothesis"]["path"] == str(loaded.path)
    assert data["multiple_comparisons"] == loaded.spec.multiple_comparisons
    ids = [c.id for c in graph.claims]
    assert [c["id"] for c in data["claims"]] == ids  # 'each:' expansion: heads[L7H5], heads[L9H7], ...
    assert "heads[L7H5]" in ids
    by_id = {c["id"]: c for c in data["claims"]}
    for outcome in verification.outcomes:
        claim = by_id[outcome.claim_id]
        assert claim["verdict"] == outcome.verdict and claim["reason"] == outcome.reason
        assert claim["estimate"] == pytest.approx(outcome.estimate, rel=1e-9)
        assert claim["ci"]["low"] == pytest.approx(outcome.ci.low, rel=1e-9)
        assert claim["targets"] == list(graph.claim(outcome.claim_id).targets)
    amplify = by_id["amplify"]
    assert amplify["statistic"] == "rho" and [p["x"] for p in amplify["points"]] == [1.0, 2.0, 4.0]
    assert [p["type"] for p in amplify["plots"]] == ["sweep"]
    assert amplify["plots"][0]["ylabel"] == "success_rate"
    route = by_id["route"]
    assert route["p_value"]["raw"] is not None and route["p_value"]["adjusted"] is not None
    assert [p["type"] for p in route["plots"]] == ["distribution", "baseline_histogram"]
    assert [p["type"] for p in by_id["look"]["plots"]] == ["distribution", "attention"]
    assert data["graph"]["text"].startswith(to_mermaid(graph).splitlines()[0])


def test_same_seed_same_report_outside_timings(verification):
    again = _verification(seed=5, seconds=9.0)
    first, second = render_json(build_report_input(verification)), render_json(build_report_input(again))
    assert first.split('\n  "timings": ')[0] == second.split('\n  "timings": ')[0]
    assert json.loads(first)["timings"]["total_seconds"] == 3.0


def test_markdown_from_the_pipeline(verification):
    text = render_markdown(build_report_input(verification))
    for outcome in verification.outcomes:
        assert f"| `{outcome.claim_id}` | {outcome.kind} |" in text
    assert "```mermaid" in text
