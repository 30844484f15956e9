"""Verdict logic on each side of a threshold, equivalence, trends, TOST, and bad data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement, SweepPoint
from circuitspec.spec.expectations import parse_expectation
from circuitspec.stats import (
    DEFAULT_MIN_N,
    Interval,
    evaluate_claim,
    interval_verdict,
    tost_p_value,
    trend_verdict,
)


def _ci(low: float, high: float, level: float = 0.95) -> Interval:
    return Interval(low, high, level, "BCa")


def _verdict(expectation: str, low: float, high: float) -> str:
    return interval_verdict(parse_expectation(expectation), _ci(low, high))[0]


def test_reason_reads_like_a_sentence() -> None:
    assert interval_verdict(parse_expectation("mean > 0.3"), _ci(0.41, 0.77)) == (
        "pass",
        "95% CI [0.41, 0.77] lies entirely above 0.3",
    )
    assert interval_verdict(parse_expectation("recovered >= 0.8"), _ci(0.5, 0.9))[1] == (
        "95% CI [0.5, 0.9] straddles 0.8"
    )


@pytest.mark.parametrize(
    ("expectation", "low", "high", "verdict"),
    [
        ("mean > 0.3", 0.41, 0.77, "pass"),
        ("mean > 0.3", 0.10, 0.29, "fail"),
        ("mean > 0.3", 0.20, 0.50, "inconclusive"),
        ("mean > 0.3", 0.30, 0.50, "inconclusive"),  # low == t: 0.3 itself is not > 0.3
        ("mean > 0.3", 0.10, 0.30, "fail"),  # every value ≤ 0.3
        ("mean >= 0.3", 0.30, 0.50, "pass"),
        ("mean >= 0.3", 0.10, 0.30, "inconclusive"),
        ("mean >= 0.3", 0.10, 0.29, "fail"),
        ("mean < 0", -0.5, -0.1, "pass"),
        ("mean < 0", 0.1, 0.5, "fail"),
        ("mean < 0", -0.1, 0.1, "inconclusive"),
        ("mean < 0", -0.1, 0.0, "inconclusive"),
        ("mean <= 0", -0.1, 0.0, "pass"),
        ("mean <= 0", 0.0, 0.1, "inconclusive"),
        ("mean == 1", 1.0, 1.0, "pass"),
        ("mean == 1", 0.9, 1.1, "inconclusive"),
        ("mean == 1", 1.1, 1.3, "fail"),
    ],
)
def test_compare_verdicts(expectation: str, low: float, high: float, verdict: str) -> None:
    assert _verdict(expectation, low, high) == verdict


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [
        (-0.2, 0.3, "pass"),
        (-0.5, 0.3, "inconclusive"),  # touches −m: not strictly inside
        (0.4, 0.6, "inconclusive"),
        (0.5, 0.9, "fail"),
        (-2.0, -0.6, "fail"),
        (-0.7, 0.7, "inconclusive"),
    ],
)
def test_equivalence_verdicts(low: float, high: float, verdict: str) -> None:
    assert _verdict("no effect within 0.5", low, high) == verdict
    assert _verdict("recovered within ±0.5", low, high) == verdict


@pytest.mark.parametrize(
    ("direction", "low", "high", "verdict"),
    [
        ("increases", 0.2, 0.9, "pass"),
        ("increases", -0.3, 0.6, "inconclusive"),
        ("increases", -0.9, -0.1, "fail"),
        ("increases", 0.0, 0.0, "fail"),  # flat: no increase at all
        ("decreases", -0.9, -0.2, "pass"),
        ("decreases", 0.1, 0.8, "fail"),
        ("decreases", -0.5, 0.5, "inconclusive"),
    ],
)
def test_trend_verdicts(direction: str, low: float, high: float, verdict: str) -> None:
    assert trend_verdict(direction, _ci(low, high))[0] == verdict


def test_equivalence_end_to_end_with_tost_p_value() -> None:
    rng = np.random.default_rng(0)
    inside = evaluate_claim(_measurement(rng.normal(0.0, 0.2, 200)), "no effect within 0.1")
    outside = evaluate_claim(_measurement(rng.normal(1.0, 0.2, 200)), "no effect within 0.1")
    wide = evaluate_claim(_measurement(rng.normal(0.0, 3.0, 20)), "no effect within 0.1")
    assert (inside.verdict, outside.verdict, wide.verdict) == ("pass", "fail", "inconclusive")
    assert inside.p_value is not None and inside.p_value < 0.05
    assert outside.p_value == pytest.approx(1.0, abs=1e-6) and wide.p_value > 0.3


def test_tost_p_value_matches_the_closed_form() -> None:
    values = np.random.default_rng(1).normal(0.05, 0.3, 40)
    margin = 0.2
    se = values.std(ddof=1) / np.sqrt(values.size)
    lower = stats.t.sf((values.mean() + margin) / se, values.size - 1)  # H0: mean ≤ −m
    upper = stats.t.cdf((values.mean() - margin) / se, values.size - 1)  # H0: mean ≥ +m
    assert tost_p_value(values, margin) == pytest.approx(max(lower, upper), rel=1e-10)
    assert tost_p_value(np.full(5, 0.1), margin) == 0.0
    assert tost_p_value(np.full(5, 0.3), margin) == 1.0


def _measurement(values: np.ndarray, **more: object) -> Measurement:
    return Measurement(
        "c", "attribution", len(values), arrays={"value": np.asarray(values, dtype=float)}, **more
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data_is_an_error_with_a_reason(bad: float) -> None:
    values = np.linspace(0, 1, 20)
    values[3] = bad
    outcome = evaluate_claim(_measurement(values), "mean > 0")
    assert outcome.verdict == "error"  # a measurement problem, not evidence against the hypothesis
    assert "'value' has 1 non-finite value(s) (NaN/Inf) among 20 prompts" in outcome.reason
    assert outcome.ci is None and outcome.estimate is None


def test_non_finite_success_rate_source_is_an_error_rather_than_counting_as_false() -> None:
    m = Measurement("c", "patching", 3, arrays={"intervened": np.array([1.0, np.nan, 2.0])})
    assert evaluate_claim(m, "success_rate > 0.5").verdict == "error"


def test_non_finite_sweep_point_and_random_baseline_are_errors() -> None:
    sweep = [SweepPoint(a, {"value": np.array([a, a + 1.0, np.nan if a == 2 else a])}) for a in range(3)]
    outcome = evaluate_claim(Measurement("s", "scaling", 3, sweep=sweep), "mean increases with alpha")
    assert outcome.verdict == "error" and "sweep point 2" in outcome.reason
    with_baseline = _measurement(np.ones(10), random_baseline=np.array([0.1, np.inf]))
    outcome = evaluate_claim(with_baseline, "mean > 0")
    assert outcome.verdict == "error" and "random baseline" in outcome.reason


def test_measurement_error_is_an_error_with_its_message_never_a_fail() -> None:
    m = Measurement("c", "attribution", 0, error="target L9H9 is outside the model (valid: L0-L3)")
    outcome = evaluate_claim(m, "mean > 0")
    assert outcome.verdict == "error"
    assert (
        outcome.reason == "the claim could not be measured: target L9H9 is outside the model (valid: L0-L3)"
    )
    assert outcome.details["decidable"] is False  # left out of the family-wise correction


def test_missing_array_is_an_error_with_a_reason() -> None:
    outcome = evaluate_claim(_measurement(np.ones(5)), "recovered > 0.5")
    assert outcome.verdict == "error" and "needs the array 'clean'" in outcome.reason


@pytest.mark.parametrize("n", [0, 1, 2, DEFAULT_MIN_N - 1])
def test_fewer_prompts_than_min_n_is_inconclusive(n: int) -> None:
    outcome = evaluate_claim(_measurement(np.linspace(1, 2, n)), "mean > 0")
    assert outcome.verdict == "inconclusive" and outcome.n_prompts == n
    assert f"fewer than min_n = {DEFAULT_MIN_N}" in outcome.reason and outcome.ci is None


def test_two_prompts_no_longer_pass() -> None:
    # issue 15: n = 2 passed with BCa [0.9562, 0.9577]; below min_n it is inconclusive, and even
    # with min_n lowered to 2 the interval is Student t on 1 degree of freedom (every bootstrap-t
    # resample of two points has a zero-spread twin), 8.5 times as wide as the BCa one was.
    two = _measurement(np.array([0.9562, 0.9577]))
    assert evaluate_claim(two, "mean > 0.95").verdict == "inconclusive"
    lowered = evaluate_claim(two, "mean > 0.95", min_n=2)
    student = stats.t.interval(0.95, 1, loc=0.95695, scale=0.00075)
    assert lowered.ci is not None and lowered.ci.method == "Student t"
    assert (lowered.ci.low, lowered.ci.high) == pytest.approx(student, rel=1e-9)
    assert lowered.verdict == "inconclusive"  # [0.947, 0.966] straddles 0.95


def test_min_n_can_be_set_per_claim() -> None:
    values = _measurement(np.linspace(1, 2, 8))
    assert evaluate_claim(values, "mean > 0", min_n=8).verdict == "pass"
    assert evaluate_claim(values, "mean > 0", min_n=9).verdict == "inconclusive"


def test_recovered_with_nothing_to_recover_is_inconclusive() -> None:
    same = np.array([1.0, 2.0, 3.0])
    m = Measurement("c", "patching", 3, arrays={"clean": same, "corrupt": same[::-1], "intervened": same})
    outcome = evaluate_claim(m, "recovered > 0.5", min_n=2)
    assert outcome.verdict == "inconclusive" and "nothing to recover" in outcome.reason


def test_bad_arguments_raise_one_line_errors() -> None:
    with pytest.raises(CircuitSpecError, match="cannot parse expectation"):
        evaluate_claim(_measurement(np.ones(5)), "mean is big")
    with pytest.raises(CircuitSpecError, match="confidence"):
        evaluate_claim(_measurement(np.ones(5)), "mean > 0", confidence=1.5)


def test_stats_never_imports_torch() -> None:
    import subprocess
    import sys

    code = "import sys, circuitspec.stats; print('torch' in sys.modules or 'transformer_lens' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
