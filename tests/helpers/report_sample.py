"""A synthetic :class:`ReportInput` touching every plot type, for report tests and the report benchmark.

The numbers are made up (seeded), not the output of a model. Test data, so it lives under tests/;
``tests/test_reports_pipeline.py`` renders the real pipeline's output on a bundled hypothesis.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from circuitspec.measurement import AttentionPattern, HeadGrid, Measurement, RunCost, SweepPoint, TargetValues
from circuitspec.reports.model import ReportInput
from circuitspec.stats.outcome import ClaimOutcome, Interval, PointOutcome

__all__ = ["sample_report_input"]


def _claim(
    claim_id: str, kind: str, targets: list[str], expect: str, description: str = ""
) -> SimpleNamespace:
    return SimpleNamespace(
        id=claim_id, kind=kind, targets=targets, expect=expect, confidence=0.95, description=description
    )


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def sample_report_input(seed: int = 0, seconds: float = 1.5) -> ReportInput:
    """Seven claims: bars, layer sweep, heatmap, attention, α sweep, random baseline, NaN and error."""
    rng = np.random.default_rng(seed)
    n = 40
    outcomes: list[ClaimOutcome] = []
    measurements: dict[str, Measurement] = {}
    claims: dict[str, SimpleNamespace] = {}

    def add(outcome: ClaimOutcome, measurement: Measurement, spec: SimpleNamespace) -> None:
        outcomes.append(outcome)
        measurements[outcome.claim_id] = measurement
        claims[outcome.claim_id] = spec

    ci95 = Interval(-2.9, -1.7, 0.95, "BCa")
    add(
        ClaimOutcome("dla_negative", "attribution", "mean < 0", "mean", -2.3, ci95, "pass",
                     "the whole 95% CI [-2.9, -1.7] lies below 0", n),
        Measurement("dla_negative", "attribution", n, arrays={"value": rng.normal(-2.3, 1.5, n)},
                    plots=[TargetValues({"L7H5": rng.normal(-1.4, 1, n), "L8H4": rng.normal(-0.9, 1, n)})],
                    cost=RunCost(2, 40 * 12, 0.8 * seconds)),
        _claim("dla_negative", "attribution", ["L7H5", "L8H4"], "mean < 0", "Mover heads write the answer."),
    )  # fmt: skip

    layers = list(range(6))
    lens_points = [
        PointOutcome(layer, 0.4 * layer - 0.2, Interval(0.4 * layer - 0.5, 0.4 * layer + 0.1, 0.95, "BCa"))
        for layer in layers
    ]
    add(
        ClaimOutcome("lens_rises", "logit_lens", "mean increases with layer", "rho", 0.94,
                     Interval(0.81, 1.0, 0.95, "percentile"), "pass", "rho's CI lies above 0", n,
                     points=lens_points),
        Measurement("lens_rises", "logit_lens", n, sweep_variable="layer",
                    sweep=[SweepPoint(layer, {"value": rng.normal(0.4 * layer, 1, n)}) for layer in layers],
                    plots=[HeadGrid(rng.normal(0, 1, (6, 4)).tolist())],
                    cost=RunCost(1, 480, 0.3 * seconds)),
        _claim("lens_rises", "logit_lens", [], "mean increases with layer"),
    )  # fmt: skip

    tokens = ["<bos>", "When", " Mary", " and", " John", " went", ",", " John", " gave", " to"]
    pattern = np.tril(rng.random((len(tokens), len(tokens))))
    pattern /= pattern.sum(axis=1, keepdims=True)
    add(
        ClaimOutcome("name_mover_attends", "attention", "mean > 0.3", "mean", 0.31,
                     Interval(0.26, 0.36, 0.95, "BCa"), "inconclusive",
                     "the 95% CI [0.26, 0.36] straddles 0.3", n),
        Measurement("name_mover_attends", "attention", n, arrays={"value": rng.beta(3, 7, n)},
                    plots=[AttentionPattern(tokens, pattern.tolist())],
                    cost=RunCost(1, 480, 0.2 * seconds)),
        _claim("name_mover_attends", "attention", ["L9H9"], "mean > 0.3"),
    )  # fmt: skip

    alphas = [-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0]
    add(
        ClaimOutcome("scaling_monotone", "scaling", "success_rate increases with alpha", "rho", 0.96,
                     Interval(0.9, 1.0, 0.95, "percentile"), "pass", "rho's CI lies above 0", n,
                     points=[PointOutcome(a, _sigmoid(a), Interval(_sigmoid(a) - 0.08, _sigmoid(a) + 0.08,
                                                                   0.95, "percentile")) for a in alphas]),
        Measurement("scaling_monotone", "scaling", n, sweep_variable="alpha",
                    sweep=[SweepPoint(a, {"intervened": rng.normal(a, 1, n)}) for a in alphas],
                    cost=RunCost(7, 7 * 480, 1.1 * seconds)),
        _claim("scaling_monotone", "scaling", ["L7H5.v@s_con"], "success_rate increases with alpha"),
    )  # fmt: skip

    clean, corrupt = rng.normal(3, 1, n), rng.normal(0, 1, n)
    add(
        ClaimOutcome("faithful", "faithfulness", "recovered >= 0.8", "recovered", 0.62,
                     Interval(0.5, 0.74, 0.95, "BCa"), "fail",
                     "the whole 95% CI [0.5, 0.74] lies below 0.8", n,
                     p_value=0.0099, p_adjusted=0.0396, percentile=99.0,
                     details={"observed": 0.62, "baseline_mean": 0.1}),
        Measurement("faithful", "faithfulness", n,
                    arrays={"clean": clean, "corrupt": corrupt, "intervened": 0.62 * clean + 0.38 * corrupt},
                    random_baseline=rng.normal(0.1, 0.12, 100), cost=RunCost(102, 102 * 480, 2.0 * seconds)),
        _claim("faithful", "faithfulness", ["L7H5", "L8H4", "MLP9"], "recovered >= 0.8"),
    )  # fmt: skip

    add(
        ClaimOutcome("control_nan", "ablation", "no effect within 0.5", "mean", math.nan, None,
                     "inconclusive", "the statistic is undefined (every prompt gave NaN)", n,
                     details={"margin": 0.5, "undefined": math.inf}),
        Measurement("control_nan", "ablation", n, arrays={"value": np.full(n, np.nan)},
                    cost=RunCost(2, 960, 0.1 * seconds)),
        _claim("control_nan", "ablation", ["L3H0"], "no effect within 0.5"),
    )  # fmt: skip

    add(
        ClaimOutcome("broken", "path_patching", "effect < 0", "effect", None, None, "fail",
                     "could not be measured: receiver L2H1.q comes before sender L5H5", 0),
        Measurement("broken", "path_patching", 0, error="receiver L2H1.q comes before sender L5H5"),
        _claim("broken", "path_patching", ["L5H5 -> L2H1.q"], "effect < 0"),
    )  # fmt: skip

    # a second kind of distribution plot: a claim with only per-prompt values
    add(
        ClaimOutcome("ablate_hurts", "ablation", "mean < -0.5", "mean", -1.1,
                     Interval(-1.4, -0.8, 0.95, "BCa"), "pass",
                     "the whole 95% CI [-1.4, -0.8] lies below -0.5", n),
        Measurement("ablate_hurts", "ablation", n, arrays={"value": rng.normal(-1.1, 0.9, n)},
                    cost=RunCost(2, 960, 0.2 * seconds)),
        _claim("ablate_hurts", "ablation", ["L7H5"], "mean < -0.5"),
    )  # fmt: skip

    graph = (
        'flowchart LR\n  L7H5["L7H5 (mover)"] --> logits\n  L8H4 --> logits\n'
        "  L3H0 -. v .-> L7H5\n  MLP9 --> logits"
    )
    return ReportInput(
        hypothesis_name="ioi_sample",
        hypothesis_path="hypotheses/ioi_sample.yaml",
        hypothesis_sha256="0" * 64,
        model={"source": "bundled:planted_ioi", "checkpoint": None, "weights_sha256": "f" * 64,
               "device": "cpu", "dtype": "float32"},
        seed=seed,
        multiple_comparisons="holm",
        outcomes=outcomes,
        measurements=measurements,
        claims=claims,
        description="A synthetic hypothesis exercising every report section.",
        graph_text=graph,
        graph_format="mermaid",
        total_seconds=seconds * 5,
    )  # fmt: skip
