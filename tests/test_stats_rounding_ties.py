"""Bootstrap-t on values that are equal but for float rounding: a resample drawing only the near-equal
values has a spread of ~1e-7, not 0, and once gave t* ≈ 1e12 and an interval up to 1.9e12 (a resample
ablation of a planted head, values 0 or −4 read back from float32). Such spread now counts as none, so
the interval falls back to Student t, as it does for exact ties."""

from __future__ import annotations

import numpy as np

from circuitspec.stats.intervals import bootstrap_t_interval, student_t_interval


def _rounded_two_values() -> np.ndarray:
    rng = np.random.default_rng(0)
    exact = np.array([0.0] * 14 + [-4.0] * 6)
    return exact + 1e-7 * rng.standard_normal(exact.size) * (exact != 0)


def test_rounding_noise_is_not_spread() -> None:
    values = _rounded_two_values()
    interval = bootstrap_t_interval(values, 0.983, seed=0, n_resamples=2999)
    reference = student_t_interval(values, 0.983)
    assert interval.method == reference.method
    np.testing.assert_allclose([interval.low, interval.high], [reference.low, reference.high])
    assert -4 < interval.low < values.mean() < interval.high < 1


def test_exact_ties_still_fall_back_the_same_way() -> None:
    exact = np.round(_rounded_two_values())
    a = bootstrap_t_interval(exact, 0.983, seed=0, n_resamples=2999)
    b = bootstrap_t_interval(_rounded_two_values(), 0.983, seed=0, n_resamples=2999)
    np.testing.assert_allclose([a.low, a.high], [b.low, b.high], atol=1e-6)


def test_real_spread_keeps_the_bootstrap() -> None:
    values = np.random.default_rng(1).exponential(size=30)
    assert bootstrap_t_interval(values, 0.95, seed=0, n_resamples=2999).method == "bootstrap-t"
