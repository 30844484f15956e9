"""Confidence intervals that stay valid at small n, one method per statistic.

Measured in ``benchmarks/calibration.py`` (docs/STATISTICS.md) against BCa, which under-covers
at small n (a claim with 2 prompts passed with BCa [0.9562, 0.9577]):

- ``mean`` / ``effect`` / ``interaction`` / ``percentile``: **bootstrap-t** (percentile-t): resample prompts,
  studentize each resample's mean by its own standard error, and invert the quantiles of that t*
  distribution. Second-order accurate for skewed data, where the Student-t interval
  under-covers (exponential data at n = 20: t 0.91, bootstrap-t 0.95). When ties make some
  resamples' standard error 0, t* is undefined and the **Student t** interval is used instead.
- ``median``: the **Hettmansperger–Sheather** interpolated order-statistic interval
  (``scipy.stats.mstats.median_cihs``), distribution-free.
- ``success_rate``: the **Wilson** score interval for a binomial proportion
  (``scipy.stats.binomtest(...).proportion_ci``), sound at 0 or n successes too.
- ``recovered``: **Fieller**'s interval for the ratio of paired means
  ``mean(intervened − corrupt) / mean(clean − corrupt)``, studentized by the bootstrap like the
  mean (classic t-based Fieller under skew covered 0.92 at n = 30; this one 0.94). It is bounded
  only when the denominator is distinguishable from 0; otherwise the ratio is noise and
  :class:`Unbounded` says so.

Every function returns an :class:`~.outcome.Interval` whose ``method`` names the method, or
raises :class:`Unbounded` with a readable reason.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from scipy.stats import mstats

from .bootstrap import StatisticInputs, resamples_for
from .outcome import Interval
from .verdicts import format_interval, format_number

__all__ = [
    "DEFAULT_MIN_N",
    "NO_TASK",
    "Unbounded",
    "bootstrap_t_interval",
    "fieller_interval",
    "median_interval",
    "statistic_interval",
    "student_t_interval",
    "wilson_interval",
]

# Fewer prompts than this make every verdict inconclusive unless the hypothesis or the claim sets
# `min_n`: the smallest n at which every interval above covers within [0.93, 0.97] in the
# calibration (docs/STATISTICS.md, "Choosing min_n").
DEFAULT_MIN_N = 20

NO_TASK = "clean and corrupted runs do not differ: the model does not do this task here"


class Unbounded(ValueError):
    """The interval is unbounded or undefined on these data; the message says why."""


def _constant(values: np.ndarray, confidence: float) -> Interval | None:
    """A zero-width 'degenerate' interval when every value is the same (no uncertainty to show)."""
    if values.size and np.ptp(values) == 0:
        return Interval(float(values[0]), float(values[0]), confidence, "degenerate")
    return None


def student_t_interval(values: np.ndarray, confidence: float) -> Interval:
    """mean ± t(n−1) · s/√n."""
    values = np.asarray(values, dtype=float)
    constant = _constant(values, confidence)
    if constant is not None:
        return constant
    low, high = stats.t.interval(confidence, values.size - 1, loc=values.mean(), scale=stats.sem(values))
    return Interval(float(low), float(high), confidence, "Student t")


def _studentized_quantiles(
    values: np.ndarray, confidence: float, seed: int, n_resamples: int
) -> tuple[float, float] | None:
    """Quantiles of t* = (mean(resample) − mean) / se(resample); None when some t* is undefined
    (ties leave a resample without spread). A resample variance under 1e-12 of the values' own counts
    as none, the rule :mod:`.batched_intervals` applies to a screen's cells: values equal but for float
    rounding (an ablation's 0 or −4 read back from float32) would otherwise give t* of 1e12 and an
    interval reaching 1e12."""
    n, mean = values.size, float(values.mean())
    negligible = np.sqrt(1e-12 * float(values.var(ddof=1)) / n)  # the standard error of that variance
    rng = np.random.default_rng(seed)
    n_resamples = resamples_for(confidence, n_resamples)
    t_star = np.empty(n_resamples)
    batch = max(1, 4_000_000 // n)
    for start in range(0, n_resamples, batch):
        stop = min(n_resamples, start + batch)
        resampled = values[rng.integers(0, n, size=(stop - start, n))]
        with np.errstate(divide="ignore", invalid="ignore"):
            se = stats.sem(resampled, axis=1)
            t_star[start:stop] = (resampled.mean(axis=1) - mean) / np.where(se > negligible, se, 0.0)
    if not np.all(np.isfinite(t_star)):
        return None
    tail = (1 - confidence) / 2
    low, high = np.quantile(t_star, [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_t_interval(values: np.ndarray, confidence: float, seed: int, n_resamples: int) -> Interval:
    """Percentile-t interval for the mean (Student t when some resample has zero spread)."""
    values = np.asarray(values, dtype=float)
    constant = _constant(values, confidence)
    if constant is not None:
        return constant
    quantiles = _studentized_quantiles(values, confidence, seed, n_resamples)
    if quantiles is None:
        return student_t_interval(values, confidence)
    mean, se = float(values.mean()), float(stats.sem(values))
    return Interval(mean - quantiles[1] * se, mean - quantiles[0] * se, confidence, "bootstrap-t")


def median_interval(values: np.ndarray, confidence: float) -> Interval:
    """Hettmansperger–Sheather interval for the median."""
    values = np.asarray(values, dtype=float)
    constant = _constant(values, confidence)
    if constant is not None:
        return constant
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            low, high = mstats.median_cihs(values, alpha=1 - confidence)
    except IndexError:  # too few values for any order statistic at this level
        low = high = np.nan
    if not (np.isfinite(low) and np.isfinite(high)):
        raise Unbounded(f"{values.size} prompts are too few for a {confidence:.4g} interval of the median")
    return Interval(float(low), float(high), confidence, "Hettmansperger-Sheather")


def wilson_interval(indicator: np.ndarray, confidence: float) -> Interval:
    """Wilson score interval for the share of ones in a 0/1 array."""
    indicator = np.asarray(indicator, dtype=float)
    result = stats.binomtest(int(indicator.sum()), int(indicator.size))
    ci = result.proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(float(ci.low), float(ci.high), confidence, "Wilson")


def fieller_interval(
    clean: np.ndarray,
    corrupt: np.ndarray,
    intervened: np.ndarray,
    confidence: float,
    seed: int | None = None,
    n_resamples: int = 2999,
) -> Interval:
    """Fieller's interval for mean(intervened − corrupt) / mean(clean − corrupt), paired by prompt.

    The set of ratios r whose pivot T(r) = mean(x − r·y) / se(x − r·y) (x = intervened − corrupt,
    y = clean − corrupt) lies between two quantiles: ±t(n−1) (classic Fieller, ``seed=None``), or,
    with a ``seed``, the bootstrap-t quantiles of T at the estimate (studentized Fieller: it keeps
    its level under skewed per-prompt values, as bootstrap-t does for a mean; classic when ties
    leave resamples without spread). Bounded iff the denominator is distinguishable from 0.
    """
    x = np.asarray(intervened, dtype=float) - np.asarray(corrupt, dtype=float)
    y = np.asarray(clean, dtype=float) - np.asarray(corrupt, dtype=float)
    t = float(stats.t.ppf((1 + confidence) / 2, x.size - 1))
    quantiles, method = (-t, t), "Fieller"
    if seed is not None and y.mean() != 0 and np.ptp(x - x.mean() / y.mean() * y) > 0:
        studentized = _studentized_quantiles(x - x.mean() / y.mean() * y, confidence, seed, n_resamples)
        if studentized is not None:
            quantiles, method = studentized, "Fieller (bootstrap-t)"
    ends = [_pivot_root(x, y, q) for q in quantiles]
    if None in ends:
        raise Unbounded(f"{NO_TASK} ({_denominator_text(y, confidence)})")
    low, high = sorted(float(end) for end in ends if end is not None)
    return Interval(low, high, confidence, method)


def _pivot_root(x: np.ndarray, y: np.ndarray, q: float) -> float | None:
    """The ratio r with mean(x − r·y) / se(x − r·y) = q; None when the pivot never reaches q
    (the denominator is not distinguishable from 0 at this quantile)."""
    n, x_mean, y_mean = x.size, float(x.mean()), float(y.mean())
    covariance = np.cov(np.stack([x, y]), ddof=1)
    scale = q * q / n
    a = y_mean**2 - scale * covariance[1, 1]
    if a <= 0:
        return None
    b = x_mean * y_mean - scale * covariance[0, 1]
    c = x_mean**2 - scale * covariance[0, 0]
    root = float(np.sqrt(max(b * b - a * c, 0.0)))
    candidates = ((b - root) / a, (b + root) / a)  # T(r) = q or −q: keep the one on q's side
    return float(next((r for r in candidates if (x_mean - r * y_mean) * q >= 0), candidates[0]))


def _denominator_text(y: np.ndarray, confidence: float) -> str:
    """'mean(clean − corrupt) = 0.0024, 95% CI [−0.33, 0.34]'."""
    denominator = student_t_interval(y, confidence)
    return f"mean(clean − corrupt) = {format_number(float(y.mean()))}, {format_interval(denominator)}"


def statistic_interval(inputs: StatisticInputs, confidence: float, seed: int, n_resamples: int) -> Interval:
    """The interval of a claim's statistic by the method the module docstring gives for it."""
    statistic = inputs.statistic
    if statistic in ("mean", "effect", "interaction", "percentile"):
        return bootstrap_t_interval(inputs.data[0], confidence, seed, n_resamples)
    if statistic == "median":
        return median_interval(inputs.data[0], confidence)
    if statistic == "success_rate":
        return wilson_interval(inputs.data[0], confidence)
    if statistic == "recovered":
        clean, corrupt, intervened = inputs.data
        return fieller_interval(clean, corrupt, intervened, confidence, seed, n_resamples)
    raise Unbounded(f"no interval method for the statistic '{statistic}'")
