"""Random baselines: +1-corrected empirical p, percentile, uniform p under a planted null."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from circuitspec.measurement import Measurement
from circuitspec.spec.expectations import parse_expectation
from circuitspec.stats import combine_verdict, compare_to_baseline, evaluate_claim


def test_p_value_and_percentile_by_hand() -> None:
    random = np.array([0.1, 0.5, 0.7, 0.2])
    higher = compare_to_baseline(0.5, random, parse_expectation("mean > 0"))
    assert higher.p_value == pytest.approx((1 + 2) / 5)  # 0.5 and 0.7 are ≥ 0.5
    assert higher.percentile == pytest.approx(62.5)  # 2 strictly below, 1 tie counted half
    assert (higher.n, higher.direction) == (4, "higher")
    lower = compare_to_baseline(0.5, random, parse_expectation("mean < 1"))
    assert lower.p_value == pytest.approx((1 + 3) / 5)
    equivalent = compare_to_baseline(-0.15, random, parse_expectation("no effect within 1"))
    assert equivalent.p_value == pytest.approx((1 + 1) / 5)  # only |0.1| ≤ |−0.15|
    trend = compare_to_baseline(
        0.8, np.array([0.9, -0.2, 0.1]), parse_expectation("mean decreases with layer")
    )
    assert trend.p_value == pytest.approx((1 + 2) / 4)


def test_p_value_is_never_zero() -> None:
    result = compare_to_baseline(100.0, np.zeros(99), parse_expectation("mean > 0"))
    assert result.p_value == pytest.approx(0.01) and result.percentile == 100.0


@pytest.mark.parametrize("expectation", ["mean > 0", "mean < 0", "no effect within 1"])
def test_planted_null_gives_uniform_p_values(expectation: str) -> None:
    # The circuit is one more draw from the random circuits' distribution: its rank is uniform,
    # so P(p ≤ k/(N+1)) = k/(N+1). KS against U(0, 1) (discreteness 1/(N+1) = 0.01 is far below
    # the KS critical value ~0.043 for 1000 draws).
    rng = np.random.default_rng(0)
    parsed = parse_expectation(expectation)
    p_values = np.array(
        [compare_to_baseline(float(rng.normal()), rng.normal(size=99), parsed).p_value for _ in range(1000)]
    )
    assert stats.kstest(p_values, "uniform").pvalue > 0.01
    assert np.mean(p_values <= 0.05) == pytest.approx(0.05, abs=3 * np.sqrt(0.05 * 0.95 / 1000))


def test_planted_null_end_to_end_rarely_passes() -> None:
    # A strong CI pass but a circuit that is just another random circuit: empirical p uniform,
    # so the combined verdict passes only ~α of the time.
    rng = np.random.default_rng(1)
    verdicts, p_values = [], []
    for seed in range(200):
        values = rng.normal(1.0, 0.5, 40)
        random = rng.normal(1.0, 0.5 / np.sqrt(40), 99)  # the circuit mean's own sampling law
        m = Measurement("c", "attribution", 40, arrays={"value": values}, random_baseline=random)
        outcome = evaluate_claim(m, "mean > 0", seed=seed, n_resamples=499)
        verdicts.append(outcome.verdict)
        p_values.append(outcome.p_value)
    assert stats.kstest(p_values, "uniform").pvalue > 0.01
    assert set(verdicts) == {"pass", "fail"}
    assert verdicts.count("pass") / 200 == pytest.approx(0.05, abs=3 * np.sqrt(0.05 * 0.95 / 200))


def test_combined_verdict() -> None:
    ci_reason = "95% CI [0.4, 0.8] lies entirely above 0.3"
    assert combine_verdict("pass", ci_reason, 0.01, 0.05, 99)[0] == "pass"
    verdict, reason = combine_verdict("pass", ci_reason, 0.2, 0.05, 99)
    assert verdict == "fail" and "does not beat 99 random circuits (p = 0.2 > 0.05)" in reason
    verdict, reason = combine_verdict("pass", ci_reason, 1 / 11, 0.05, 10)
    assert verdict == "inconclusive" and "the smallest attainable is 0.0909" in reason
    # one of 3 baseline claims under Holm: the best adjusted p is 3/31 = 0.097 > 0.05, so 30 circuits
    # can never pass, and the reason says 59 would (1/60 · 3 = 0.05)
    verdict, reason = combine_verdict(
        "pass", ci_reason, 0.097, 0.05, 30, adjusted_by="Holm", attainable=3 / 31, needed=59
    )
    assert verdict == "inconclusive" and "cannot give Holm-adjusted p ≤ 0.05" in reason
    assert reason.endswith("use at least 59")
    assert combine_verdict("fail", "ci says no", 0.001, 0.05, 99) == ("fail", "ci says no")
    assert combine_verdict("inconclusive", "straddles", 0.001, 0.05, 99) == ("inconclusive", "straddles")


def test_evaluate_records_baseline_details() -> None:
    values = np.random.default_rng(2).normal(1.0, 0.3, 50)
    random = np.linspace(-0.5, 0.5, 19)
    outcome = evaluate_claim(
        Measurement("c", "attribution", 50, arrays={"value": values}, random_baseline=random), "mean > 0.5"
    )
    assert outcome.p_value == pytest.approx(1 / 20) and outcome.percentile == 100.0
    assert outcome.verdict == "pass"  # 0.05 ≤ α = 0.05
    assert outcome.details["ci_verdict"] == "pass" and outcome.details["random_baseline"]["n"] == 19
    assert outcome.details["random_baseline"]["mean"] == pytest.approx(0.0)
