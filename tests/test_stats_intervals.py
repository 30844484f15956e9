"""Small-sample intervals: Fieller (ratios), Wilson (rates), bootstrap-t (means), against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from circuitspec.measurement import Measurement
from circuitspec.stats import evaluate_claim
from circuitspec.stats.intervals import (
    NO_TASK,
    Unbounded,
    bootstrap_t_interval,
    fieller_interval,
    student_t_interval,
    wilson_interval,
)


def _ratio_data(n: int, denominator: float, ratio: float, seed: int) -> dict[str, np.ndarray]:
    """Paired clean / corrupt / intervened whose true recovered is ``ratio``."""
    rng = np.random.default_rng(seed)
    corrupt = rng.normal(0.0, 1.0, n)
    clean = corrupt + rng.normal(denominator, 1.35, n)
    intervened = corrupt + ratio * (clean - corrupt) + rng.normal(0.0, 0.5, n)
    return {"clean": clean, "corrupt": corrupt, "intervened": intervened}


def test_fieller_endpoints_invert_the_paired_t_test() -> None:
    # Fieller's interval is {r : |mean(x − r·y)| ≤ t·sem(x − r·y)}: at each end the t statistic of
    # x − r·y sits exactly at the critical value (checked with scipy's own one-sample t-test).
    data = _ratio_data(40, 2.0, 0.8, seed=0)
    ci = fieller_interval(data["clean"], data["corrupt"], data["intervened"], 0.95)
    x, y = data["intervened"] - data["corrupt"], data["clean"] - data["corrupt"]
    critical = stats.t.ppf(0.975, x.size - 1)
    for end in (ci.low, ci.high):
        assert abs(stats.ttest_1samp(x - end * y, 0.0).statistic) == pytest.approx(critical, rel=1e-9)
    assert ci.low < x.mean() / y.mean() < ci.high and ci.method == "Fieller"


def test_fieller_is_unbounded_when_the_denominator_is_noise() -> None:
    data = _ratio_data(64, 0.0024, 2.39, seed=1)
    with pytest.raises(Unbounded, match="clean and corrupted runs do not differ"):
        fieller_interval(data["clean"], data["corrupt"], data["intervened"], 0.95)


def test_untrained_checkpoint_ratio_is_inconclusive_not_a_pass() -> None:
    # issue 15: at step 0, clean − corrupted was 0.0024 (std 1.35), recovered 2.39 with a bootstrap
    # CI [0.861, 614] that passed `recovered >= 0.7`. The denominator's interval holds 0.
    data = _ratio_data(64, 0.0024, 2.39, seed=2)
    outcome = evaluate_claim(Measurement("scrub", "causal_scrubbing", 64, arrays=data), "recovered >= 0.7")
    assert outcome.verdict == "inconclusive" and outcome.ci is None
    assert outcome.reason.startswith(NO_TASK) and "mean(clean − corrupt) = " in outcome.reason


def test_a_real_task_ratio_gets_a_bounded_interval_that_decides() -> None:
    data = _ratio_data(64, 2.0, 0.9, seed=3)
    outcome = evaluate_claim(Measurement("f", "faithfulness", 64, arrays=data), "recovered >= 0.7")
    assert outcome.verdict == "pass" and outcome.ci is not None
    assert outcome.ci.method == "Fieller (bootstrap-t)"  # studentized by the bootstrap
    classic = fieller_interval(data["clean"], data["corrupt"], data["intervened"], 0.95)
    width = classic.high - classic.low  # on near-normal data the two agree closely
    assert outcome.ci.low == pytest.approx(classic.low, abs=0.1 * width)
    assert outcome.ci.high == pytest.approx(classic.high, abs=0.1 * width)


def test_zero_spread_ratio_falls_back_to_classic_fieller() -> None:
    corrupt = np.zeros(30)
    outcome = evaluate_claim(
        Measurement(
            "f",
            "faithfulness",
            30,
            arrays={"clean": corrupt + 4, "corrupt": corrupt, "intervened": corrupt + 4},
        ),
        "recovered >= 0.95",
    )
    assert outcome.ci is not None and (outcome.ci.low, outcome.ci.high, outcome.ci.method) == (
        1.0,
        1.0,
        "Fieller",
    )
    assert outcome.verdict == "pass"


def test_wilson_matches_its_closed_form() -> None:
    for successes, n in ((0, 20), (7, 20), (20, 20), (31, 64)):
        indicator = np.r_[np.ones(successes), np.zeros(n - successes)]
        z = stats.norm.ppf(0.975)
        share = successes / n
        centre = (share + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
        ci = wilson_interval(indicator, 0.95)
        assert (ci.low, ci.high) == pytest.approx((centre - half, centre + half), abs=1e-12)


def test_all_successes_are_not_a_zero_width_interval() -> None:
    outcome = evaluate_claim(
        Measurement("s", "patching", 20, arrays={"intervened": np.ones(20)}), "success_rate > 0.9"
    )
    assert outcome.ci is not None and outcome.ci.method == "Wilson" and outcome.ci.low < 0.9
    assert outcome.verdict == "inconclusive"  # 20 of 20 does not show a rate above 0.9


def test_bootstrap_t_agrees_with_student_t_on_normal_data() -> None:
    values = np.random.default_rng(4).normal(1.0, 2.0, 400)
    boot = bootstrap_t_interval(values, 0.95, seed=0, n_resamples=4999)
    student = student_t_interval(values, 0.95)
    width = student.high - student.low
    assert boot.method == "bootstrap-t"
    assert boot.low == pytest.approx(student.low, abs=0.05 * width)
    assert boot.high == pytest.approx(student.high, abs=0.05 * width)


def test_bootstrap_t_covers_a_skewed_mean_where_student_t_does_not() -> None:
    # exponential data, n = 20: Student t covers ~0.91 (the skew), bootstrap-t ~0.95.
    n, n_seeds = 20, 400
    boot = student = 0
    for seed in range(n_seeds):
        values = np.random.default_rng(100 + seed).exponential(1.0, n)
        b = bootstrap_t_interval(values, 0.95, seed=seed, n_resamples=999)
        s = student_t_interval(values, 0.95)
        boot += b.low <= 1.0 <= b.high
        student += s.low <= 1.0 <= s.high
    low, high = stats.binom.ppf([0.0005, 0.9995], n_seeds, 0.95) / n_seeds
    assert low <= boot / n_seeds <= high, boot / n_seeds
    assert student < boot


def test_ties_fall_back_to_student_t() -> None:
    values = np.r_[np.full(29, 1.0), 1.0 + 1e-6]  # most resamples have zero spread
    ci = bootstrap_t_interval(values, 0.95, seed=0, n_resamples=999)
    assert ci.method == "Student t" and ci.low < values.mean() < ci.high


def test_adjusted_levels_draw_enough_resamples() -> None:
    from circuitspec.stats.bootstrap import resamples_for

    assert resamples_for(0.95, 2999) == 2999
    # 50 resamples beyond each end of a 1 − 0.05/33 interval (66000, up to the rounding of 1 − level)
    assert resamples_for(1 - 0.05 / 33, 2999) == pytest.approx(66_000, abs=1)
