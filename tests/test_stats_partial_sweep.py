"""A compare expectation reads one sweep point; the others may lack its statistic's array (a steering
claim's text score measures random directions, hence ``percentile``, at the last alpha only). A trend
reads every point, so there a missing array stays an error."""

from __future__ import annotations

import numpy as np

from circuitspec.measurement import Measurement, SweepPoint
from circuitspec.stats.evaluate import evaluate_claim


def _measurement() -> Measurement:
    rng = np.random.default_rng(0)
    value = rng.normal(1.0, 0.5, 30)
    first = SweepPoint(0.5, {"value": value / 2})
    last = SweepPoint(1.0, {"value": value, "percentile": np.clip(rng.normal(0.9, 0.05, 30), 0, 1)})
    measurement = Measurement("c", "steering", 30, arrays=dict(last.arrays), seed=0)
    measurement.sweep, measurement.sweep_variable = [first, last], "alpha"
    return measurement


def test_compare_reads_the_last_point_and_skips_points_without_the_array() -> None:
    outcome = evaluate_claim(_measurement(), "percentile >= 0.8", seed=0)
    assert outcome.verdict == "pass", outcome.reason
    assert outcome.details["sweep_x"] == 1.0
    assert outcome.points[0].ci is None and np.isnan(outcome.points[0].estimate)
    assert outcome.points[1].ci is not None and 0.85 < outcome.points[1].estimate < 0.95


def test_a_trend_still_needs_the_array_at_every_point() -> None:
    outcome = evaluate_claim(_measurement(), "percentile increases with alpha", seed=0)
    assert outcome.verdict == "error"
    assert "'percentile'" in outcome.reason and "at sweep point 0.5" in outcome.reason


def test_the_judged_point_without_the_array_is_an_error() -> None:
    outcome = evaluate_claim(_measurement(), "percentile >= 0.8", seed=0, sweep_index=0)
    assert outcome.verdict == "error"
