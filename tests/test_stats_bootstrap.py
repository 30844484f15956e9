"""Bootstrap intervals: coverage, paired resampling, fallbacks, Spearman ρ, determinism, speed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from circuitspec.measurement import Measurement
from circuitspec.stats import bootstrap_interval, evaluate_claim, spearman_rho
from circuitspec.stats.bootstrap import bootstrap_intervals


def _measurement(n: int | None = None, **arrays: np.ndarray) -> Measurement:
    n = n if n is not None else len(next(iter(arrays.values())))
    return Measurement(
        "claim", "attribution", n, arrays={k: np.asarray(v, dtype=float) for k, v in arrays.items()}
    )


def _coverage_band(n_seeds: int, expected: float, nominal: float = 0.95) -> tuple[float, float]:
    """99.9% binomial acceptance band for the number of covering intervals out of ``n_seeds``.

    The lower end uses ``expected`` (the coverage a bootstrap interval can reach at this n,
    slightly below nominal because it uses the sample SD like a z-interval would), the upper
    end the nominal level.
    """
    low = stats.binom.ppf(0.0005, n_seeds, expected) / n_seeds
    high = stats.binom.ppf(0.9995, n_seeds, nominal) / n_seeds
    return low, high


def test_mean_interval_covers_the_true_mean_at_the_nominal_rate() -> None:
    # 300 normal samples of n = 100; a 95% interval should cover μ in ~95% of them. Bootstrap
    # intervals behave like z-intervals with the sample SD: their coverage at n = 100 is
    # P(|t_99| < 1.96) ≈ 0.947 (measured 0.9467 over 1500 seeds while writing this test).
    n, n_seeds, mu = 100, 300, 1.0
    expected = stats.t.cdf(1.96, n - 1) - stats.t.cdf(-1.96, n - 1)
    covered = 0
    for seed in range(n_seeds):
        values = np.random.default_rng(seed).normal(mu, 2.0, n)
        outcome = evaluate_claim(_measurement(value=values), "mean > 0", seed=seed, n_resamples=999)
        assert outcome.ci is not None and outcome.ci.level == 0.95
        covered += outcome.ci.low < mu < outcome.ci.high
    low, high = _coverage_band(n_seeds, expected)
    assert low <= covered / n_seeds <= high, (covered / n_seeds, low, high)


def test_recovered_interval_covers_the_true_ratio() -> None:
    # clean ~ N(2, 1), corrupt ~ N(0, 1), intervened ~ N(1.6, 1): recovered = 1.6 / 2 = 0.8.
    n, n_seeds, truth = 60, 200, 0.8
    expected = stats.t.cdf(1.96, n - 1) - stats.t.cdf(-1.96, n - 1) - 0.01  # ratio: a little less
    covered = 0
    for seed in range(n_seeds):
        rng = np.random.default_rng(1000 + seed)
        m = _measurement(
            clean=rng.normal(2, 1, n), corrupt=rng.normal(0, 1, n), intervened=rng.normal(1.6, 1, n)
        )
        outcome = evaluate_claim(m, "recovered >= 0.5", seed=seed, n_resamples=999)
        assert outcome.ci is not None
        covered += outcome.ci.low < truth < outcome.ci.high
    low, high = _coverage_band(n_seeds, expected)
    assert low <= covered / n_seeds <= high, (covered / n_seeds, low, high)


def _reference_percentile_interval(
    clean: np.ndarray, corrupt: np.ndarray, intervened: np.ndarray, paired: bool, seed: int
) -> tuple[float, float]:
    """Hand-written numpy bootstrap of recovered (20000 resamples), paired or independent."""
    rng = np.random.default_rng(seed)
    n, draws = clean.size, 20_000
    picks = (
        [rng.integers(0, n, (draws, n))] * 3 if paired else [rng.integers(0, n, (draws, n)) for _ in range(3)]
    )
    c, k, i = (a[p].mean(axis=1) for a, p in zip((clean, corrupt, intervened), picks, strict=True))
    low, high = np.quantile((i - k) / (c - k), [0.025, 0.975])
    return float(low), float(high)


def test_recovered_resamples_prompts_jointly() -> None:
    # intervened = corrupt + 0.7·(clean − corrupt) + small noise: recovered ≈ 0.7, and because
    # the three arrays share prompts, the paired interval is far narrower than an unpaired one.
    rng = np.random.default_rng(3)
    n = 200
    clean = rng.normal(3.0, 1.5, n)
    corrupt = clean - rng.normal(2.0, 0.5, n)
    intervened = corrupt + 0.7 * (clean - corrupt) + rng.normal(0, 0.05, n)
    outcome = evaluate_claim(
        _measurement(clean=clean, corrupt=corrupt, intervened=intervened), "recovered > 0.6"
    )
    hand = (intervened.mean() - corrupt.mean()) / (clean.mean() - corrupt.mean())
    assert outcome.estimate == pytest.approx(hand, rel=1e-12)
    assert outcome.estimate == pytest.approx(0.7, abs=0.01)
    paired_low, paired_high = _reference_percentile_interval(clean, corrupt, intervened, paired=True, seed=9)
    unpaired_low, unpaired_high = _reference_percentile_interval(
        clean, corrupt, intervened, paired=False, seed=9
    )
    width = outcome.ci.high - outcome.ci.low
    assert outcome.ci.low == pytest.approx(paired_low, abs=0.15 * width)
    assert outcome.ci.high == pytest.approx(paired_high, abs=0.15 * width)
    assert unpaired_high - unpaired_low > 10 * width  # an unpaired bootstrap would be useless here
    assert outcome.verdict == "pass"


def test_constant_data_gives_a_degenerate_interval() -> None:
    outcome = evaluate_claim(_measurement(value=np.full(30, 0.5)), "mean > 0.3")
    assert outcome.ci is not None
    assert (outcome.ci.low, outcome.ci.high, outcome.ci.method) == (0.5, 0.5, "degenerate")
    assert outcome.verdict == "pass"


def test_percentile_fallback_when_bca_is_undefined() -> None:
    # max with a tied maximum: every jackknife value is equal, so BCa's acceleration is 0/0;
    # the bootstrap distribution still varies, so the percentile interval is used.
    values = np.array([0.1, 0.4, 0.2, 0.9, 0.9, 0.3, 0.5, 0.7, 0.05, 0.6])
    interval = bootstrap_interval((values,), lambda v, axis=-1: np.max(v, axis=axis), confidence=0.9, seed=0)
    assert interval is not None and interval.method == "percentile"
    assert 0.5 <= interval.low < interval.high == 0.9 and interval.level == 0.9


def test_median_uses_the_hettmansperger_sheather_interval() -> None:
    from scipy.stats import mstats

    values = np.random.default_rng(0).normal(0, 1, 50)
    outcome = evaluate_claim(_measurement(value=values), "median > 0")
    assert outcome.ci is not None and outcome.ci.method == "Hettmansperger-Sheather"
    low, high = mstats.median_cihs(values, alpha=0.05)
    assert (outcome.ci.low, outcome.ci.high) == pytest.approx((low, high), rel=1e-12)


def test_confidence_level_comes_from_the_claim() -> None:
    values = np.random.default_rng(1).normal(0, 1, 80)
    narrow = evaluate_claim(_measurement(value=values), "mean > -1", confidence=0.8)
    wide = evaluate_claim(_measurement(value=values), "mean > -1", confidence=0.99)
    assert narrow.ci.level == 0.8 and wide.ci.level == 0.99
    assert wide.ci.low < narrow.ci.low < narrow.ci.high < wide.ci.high
    assert narrow.reason.startswith("80% CI [")


def test_spearman_rho_matches_scipy_rowwise() -> None:
    rng = np.random.default_rng(2)
    x = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0])
    y = rng.normal(size=(50, x.size))
    y[0] = y[0].round(0)  # ties
    expected = [stats.spearmanr(x, row).statistic for row in y]
    assert np.allclose(spearman_rho(x, y), expected)
    assert spearman_rho(x, np.ones(x.size)) == 0.0  # constant: no monotone relation


def test_same_seed_same_outcome_and_seed_matters() -> None:
    rng = np.random.default_rng(4)
    m = _measurement(
        clean=rng.normal(2, 1, 90),
        corrupt=rng.normal(0, 1, 90),
        intervened=rng.normal(1, 1, 90),
        value=rng.exponential(1, 90),
    )
    first = evaluate_claim(m, "mean > 0.3", seed=11)  # bootstrap-t: resampled
    assert evaluate_claim(m, "mean > 0.3", seed=11) == first
    assert evaluate_claim(m, "mean > 0.3", seed=12).ci != first.ci
    fieller = evaluate_claim(m, "recovered > 0.3", seed=11)  # studentized Fieller: resampled too
    assert evaluate_claim(m, "recovered > 0.3", seed=11) == fieller
    assert evaluate_claim(m, "recovered > 0.3", seed=12).ci != fieller.ci


def test_joint_intervals_use_the_same_resamples_as_separate_ones() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=80), rng.normal(1, 2, 80)
    both = bootstrap_intervals(
        (a, b), lambda a, b, axis=-1: np.stack([a.mean(axis), np.median(b, axis)]), confidence=0.9, seed=3
    )
    mean_only = bootstrap_interval((a,), lambda a, axis=-1: a.mean(axis), confidence=0.9, seed=3)
    median_only = bootstrap_interval((a, b), lambda a, b, axis=-1: np.median(b, axis), confidence=0.9, seed=3)
    assert both == [mean_only, median_only]
