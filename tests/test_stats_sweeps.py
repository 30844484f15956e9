"""Sweeps: per-point intervals, trends (Spearman ρ over shared prompt resamples), last-point compares."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from circuitspec.measurement import Measurement, SweepPoint
from circuitspec.stats import bootstrap_interval, evaluate_claim, trend_verdict
from circuitspec.stats.bootstrap import statistic_inputs, sweep_statistics


def _sweep(
    means: list[float], n: int = 100, noise: float = 1.0, seed: int = 0, shared: bool = True
) -> Measurement:
    """Per-prompt values at each α: a prompt effect shared across points (same prompts) + noise."""
    rng = np.random.default_rng(seed)
    prompt_effect = rng.normal(0, 1, n) if shared else np.zeros(n)
    points = [
        SweepPoint(alpha, {"value": prompt_effect + mean + rng.normal(0, noise, n)})
        for alpha, mean in zip([0.0, 0.5, 1.0, 2.0, 4.0, 8.0][: len(means)], means, strict=True)
    ]
    return Measurement("sweep", "scaling", n, sweep=points, sweep_variable="alpha")


def test_monotone_sweep_passes_increases_and_fails_decreases() -> None:
    m = _sweep([0.0, 0.3, 0.6, 0.9, 1.2, 1.5])
    up = evaluate_claim(m, "mean increases with alpha")
    assert up.statistic == "rho" and up.verdict == "pass" and up.ci.low > 0
    x = [p.x for p in m.sweep]
    per_point = [p.arrays["value"].mean() for p in m.sweep]
    assert up.estimate == pytest.approx(stats.spearmanr(x, per_point).statistic)
    down = evaluate_claim(m, "mean decreases with alpha")
    assert down.verdict == "fail" and "does not decrease" in down.reason


def test_flat_sweep_fails_increases() -> None:
    values = np.random.default_rng(1).normal(0, 1, 50)
    m = Measurement("flat", "scaling", 50, sweep=[SweepPoint(a, {"value": values.copy()}) for a in range(5)])
    outcome = evaluate_claim(m, "mean increases with alpha")
    assert outcome.estimate == 0.0 and outcome.ci.method == "degenerate"
    assert outcome.verdict == "fail"


def test_noisy_flat_sweep_is_inconclusive() -> None:
    # Here the sample means happen to rise (ρ's CI alone clears 0), but the rank slope's CI
    # straddles 0: the verdict does not over-claim a trend that is noise.
    outcome = evaluate_claim(_sweep([0.0] * 6, n=60, noise=1.0, seed=3), "mean increases with alpha")
    assert outcome.ci.low > 0
    slope_ci = outcome.details["rank_slope"]["ci"]
    assert slope_ci["low"] < 0 < slope_ci["high"]
    assert outcome.verdict == "inconclusive" and "within noise" in outcome.reason


def test_planted_flat_sweeps_rarely_pass_increases() -> None:
    # 200 flat sweeps (4 points, 40 prompts): 'increases' should pass at most ~2.5% of the time
    # (one side of a 95% interval); the 99.9% binomial bound for that rate over 200 trials is
    # used. ρ's interval alone passes far more often, which is why the rank slope must agree.
    trials, guarded, rho_alone = 200, 0, 0
    for seed in range(trials):
        m = _sweep([0.0] * 4, n=40, seed=100 + seed)
        per_point = [statistic_inputs("mean", p.arrays) for p in m.sweep]
        trend = sweep_statistics(np.array([p.x for p in m.sweep]), per_point)
        rho_ci = bootstrap_interval(trend.data, trend.rho, confidence=0.95, seed=seed, n_resamples=499)
        slope_ci = bootstrap_interval(
            trend.data, trend.rank_slope, confidence=0.95, seed=seed, n_resamples=499
        )
        guarded += trend_verdict("increases", rho_ci, slope_ci=slope_ci)[0] == "pass"
        rho_alone += trend_verdict("increases", rho_ci)[0] == "pass"
    bound = stats.binom.ppf(0.999, trials, 0.025)
    assert guarded <= bound < rho_alone, (guarded, bound, rho_alone)


def test_trend_resamples_prompts_jointly_across_points() -> None:
    # A large per-prompt effect shared by all points and a small trend: with shared resample
    # indices the prompt effect cancels between points and the trend is clear; resampling each
    # point independently (hand-written reference below) would blur it.
    m = _sweep([0.0, 0.03, 0.06, 0.09, 0.12, 0.15], n=200, noise=0.01, seed=2)
    outcome = evaluate_claim(m, "mean increases with alpha")
    assert outcome.verdict == "pass" and outcome.ci.low > 0.9
    rng = np.random.default_rng(0)
    x = [p.x for p in m.sweep]
    independent = [
        stats.spearmanr(x, [rng.choice(p.arrays["value"], 200).mean() for p in m.sweep]).statistic
        for _ in range(500)
    ]
    assert np.quantile(independent, 0.025) < 0.7


def test_each_point_gets_its_own_interval() -> None:
    m = _sweep([0.0, 1.0, 2.0], n=80)
    outcome = evaluate_claim(m, "mean increases with alpha")
    assert [p.x for p in outcome.points] == [0.0, 0.5, 1.0]
    for point, measured in zip(outcome.points, m.sweep, strict=True):
        assert point.estimate == pytest.approx(measured.arrays["value"].mean())
        assert point.ci.low < point.estimate < point.ci.high


def test_compare_on_a_sweep_uses_the_last_point_unless_told() -> None:
    m = _sweep([0.0, 0.5, 2.0], n=80)
    last = evaluate_claim(m, "mean > 1")
    assert last.estimate == pytest.approx(m.sweep[-1].arrays["value"].mean())
    assert (
        last.details["sweep_x"] == 1.0 and last.verdict == "pass" and last.reason.endswith("at alpha = 1.0")
    )
    first = evaluate_claim(m, "mean > 1", sweep_index=0)
    assert first.details["sweep_x"] == 0.0 and first.verdict == "fail"


def test_success_rate_trend_uses_intervened() -> None:
    rng = np.random.default_rng(4)
    points = [SweepPoint(a, {"intervened": rng.normal(a - 1.0, 1.0, 150)}) for a in (0.0, 0.5, 1.0, 1.5, 2.0)]
    outcome = evaluate_claim(
        Measurement("s", "scaling", 150, sweep=points), "success_rate increases with alpha"
    )
    assert [p.estimate for p in outcome.points] == pytest.approx(
        [np.mean(p.arrays["intervened"] > 0) for p in points]
    )
    assert outcome.verdict == "pass"


def test_trend_without_a_sweep_is_an_error_with_a_reason() -> None:
    m = Measurement("c", "attribution", 5, arrays={"value": np.arange(5.0)})
    outcome = evaluate_claim(m, "mean increases with alpha")
    assert outcome.verdict == "error" and "needs a sweep" in outcome.reason


def test_sweep_with_a_random_baseline_on_rho() -> None:
    m = _sweep([0.0, 0.3, 0.6, 0.9, 1.2, 1.5])
    m.random_baseline = np.linspace(-1, 0.9, 99)
    outcome = evaluate_claim(m, "mean increases with alpha")
    assert outcome.p_value == pytest.approx(1 / 100) and outcome.verdict == "pass"


def test_sweep_is_deterministic() -> None:
    m = _sweep([0.0, 0.2, 0.1, 0.4], n=50, seed=5)
    assert evaluate_claim(m, "mean increases with alpha", seed=3) == evaluate_claim(
        m, "mean increases with alpha", seed=3
    )


def test_rank_slope_is_the_least_squares_slope_on_rank() -> None:
    m = _sweep([0.0, 0.4, 0.1, 0.9], n=30, seed=7)
    x = np.array([10.0, 1.0, 5.0, 100.0])  # ranks 3, 1, 2, 4
    per_point = [statistic_inputs("median", p.arrays) for p in m.sweep]
    sweep = sweep_statistics(x, per_point)
    medians = [np.median(p.arrays["value"]) for p in m.sweep]
    expected = np.polyfit(stats.rankdata(x), medians, 1)[0]
    assert float(sweep.rank_slope(*sweep.data)) == pytest.approx(expected, rel=1e-10)
    assert float(sweep.rho(*sweep.data)) == pytest.approx(stats.spearmanr(x, medians).statistic)
