"""Seeded bootstrap confidence intervals over prompts (``scipy.stats.bootstrap``).

Every statistic is written *vectorized*: it takes per-prompt arrays whose last axis is the
prompt axis (leading axes are resamples) and reduces that axis. Several arrays of one claim
(``clean``/``corrupt``/``intervened`` for ``recovered``, or every sweep point for a trend) are
resampled jointly (``paired=True``: the same prompt indices for all of them), because they were
measured on the same prompts.

Interval method: BCa where it is defined; when BCa fails or gives NaN, the percentile interval
of the *same* bootstrap distribution; when every resample gives the same value, a 'degenerate'
interval [estimate, estimate]. :attr:`Interval.method` records which.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .outcome import Interval

__all__ = [
    "DEFAULT_N_RESAMPLES",
    "MissingArray",
    "StatisticInputs",
    "SweepStatistics",
    "bootstrap_interval",
    "bootstrap_intervals",
    "resamples_for",
    "spearman_rho",
    "statistic_inputs",
    "sweep_statistics",
]

# 2999 resamples: BCa/percentile tails at 95% rest on ~75 resamples each, and one claim with
# n = 1000 prompts takes ~0.05 s (fully vectorized), so a 10-point sweep stays well under 1 s.
DEFAULT_N_RESAMPLES = 2999
# Cap on elements materialised per batch (resamples × prompts × arrays) to bound memory.
_MAX_BATCH_ELEMENTS = 4_000_000

Statistic = Callable[..., np.ndarray]
# Resamples per tail an interval's end rests on: family-adjusted levels (e.g. 99.85%) get more
# resamples, so their ends do not rest on a handful of draws.
_RESAMPLES_PER_TAIL = 50
_MAX_RESAMPLES = 200_000


def resamples_for(confidence: float, n_resamples: int) -> int:
    """``n_resamples``, raised so that each tail of a ``confidence`` interval holds ~50 resamples."""
    tail = (1 - confidence) / 2
    return int(min(_MAX_RESAMPLES, max(n_resamples, np.ceil(_RESAMPLES_PER_TAIL / tail))))


class MissingArray(ValueError):
    """The measurement lacks an array the statistic needs (reported as a failed claim)."""


def _mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(values, axis=axis)


def _median(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(values, axis=axis)


def _recovered(clean: np.ndarray, corrupt: np.ndarray, intervened: np.ndarray, axis: int = -1) -> np.ndarray:
    """(mean(intervened) − mean(corrupt)) / (mean(clean) − mean(corrupt)); NaN where 0/0."""
    baseline = np.mean(corrupt, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.mean(intervened, axis=axis) - baseline) / (np.mean(clean, axis=axis) - baseline)


@dataclass(frozen=True)
class StatisticInputs:
    """The arrays a statistic resamples (``names`` say which raw arrays they came from) and its function."""

    statistic: str
    names: tuple[str, ...]
    raw: tuple[np.ndarray, ...]  # the measured arrays, checked for NaN/Inf
    data: tuple[np.ndarray, ...]  # what is resampled (e.g. the indicator intervened > 0)
    function: Statistic

    def estimate(self) -> float:
        """The statistic on the full data."""
        return float(self.function(*self.data, axis=-1))


def _need(arrays: Mapping[str, np.ndarray], name: str, statistic: str) -> np.ndarray:
    if name not in arrays:
        have = ", ".join(sorted(arrays)) or "none"
        raise MissingArray(
            f"statistic '{statistic}' needs the array '{name}', which was not measured (have: {have})"
        )
    return np.asarray(arrays[name], dtype=float).reshape(-1)


def statistic_inputs(statistic: str, arrays: Mapping[str, np.ndarray]) -> StatisticInputs:
    """Pick the arrays and vectorized function for ``statistic`` (see ARCHITECTURE.md, statistics).

    mean / median / effect: of ``value``; success_rate: mean of ``intervened > 0`` (or
    ``value > 0`` without ``intervened``); recovered: from clean, corrupt, intervened jointly;
    interaction: mean of ``interaction``; percentile: mean of ``percentile`` (steering).
    """
    if statistic in ("mean", "effect"):
        value = _need(arrays, "value", statistic)
        return StatisticInputs(statistic, ("value",), (value,), (value,), _mean)
    if statistic == "median":
        value = _need(arrays, "value", statistic)
        return StatisticInputs(statistic, ("value",), (value,), (value,), _median)
    if statistic == "success_rate":
        name = "intervened" if "intervened" in arrays else "value"
        source = _need(arrays, name, statistic)
        return StatisticInputs(statistic, (name,), (source,), ((source > 0).astype(float),), _mean)
    if statistic == "recovered":
        names = ("clean", "corrupt", "intervened")
        triple = tuple(_need(arrays, name, statistic) for name in names)
        return StatisticInputs(statistic, names, triple, triple, _recovered)
    if statistic == "interaction":
        interaction = _need(arrays, "interaction", statistic)
        return StatisticInputs(statistic, ("interaction",), (interaction,), (interaction,), _mean)
    if statistic == "percentile":  # steering: per prompt, the share of random directions beaten
        share = _need(arrays, "percentile", statistic)
        return StatisticInputs(statistic, ("percentile",), (share,), (share,), _mean)
    raise MissingArray(f"unknown statistic '{statistic}'")


def _batch_size(data: Sequence[np.ndarray], n_resamples: int) -> int:
    n = max(1, data[0].shape[-1])
    return max(1, min(n_resamples, _MAX_BATCH_ELEMENTS // (n * len(data))))


def bootstrap_intervals(
    data: Sequence[np.ndarray],
    function: Statistic,
    *,
    confidence: float,
    seed: int,
    n_resamples: int = DEFAULT_N_RESAMPLES,
) -> list[Interval | None]:
    """``confidence`` intervals for each output of ``function(*data)``, resampling prompts.

    ``function`` may return one value or several stacked on a leading axis (one bootstrap then
    serves e.g. every sweep point, ρ and the rank slope, with the same resamples). Several
    arrays are resampled with shared indices. An output gets ``None`` when its bootstrap
    distribution itself is undefined (NaN resamples, e.g. a 0/0 ``recovered``).
    """
    data = tuple(np.asarray(d, dtype=float) for d in data)
    n_outputs = int(np.size(function(*data, axis=-1)))
    common = {
        "n_resamples": n_resamples,
        "batch": _batch_size(data, n_resamples),
        "vectorized": True,
        "paired": len(data) > 1,
        "axis": -1,
        "confidence_level": confidence,
    }
    bca_low = bca_high = np.full(n_outputs, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa's DegenerateDataWarning / 0-division: handled below
        try:
            result = stats.bootstrap(data, function, method="BCa", rng=np.random.default_rng(seed), **common)
            bca_low = np.atleast_1d(np.asarray(result.confidence_interval.low, dtype=float))
            bca_high = np.atleast_1d(np.asarray(result.confidence_interval.high, dtype=float))
        except (ValueError, FloatingPointError, ZeroDivisionError):  # BCa undefined: percentile
            try:
                result = stats.bootstrap(
                    data, function, method="percentile", rng=np.random.default_rng(seed), **common
                )
            except (ValueError, FloatingPointError, ZeroDivisionError):
                return [None] * n_outputs
    distributions = np.asarray(result.bootstrap_distribution, dtype=float).reshape(n_outputs, -1)
    return [
        _interval(low, high, distribution, confidence)
        for low, high, distribution in zip(bca_low, bca_high, distributions, strict=True)
    ]


def _interval(
    bca_low: float, bca_high: float, distribution: np.ndarray, confidence: float
) -> Interval | None:
    """BCa when finite, else degenerate or percentile from the same bootstrap distribution."""
    if np.isfinite(bca_low) and np.isfinite(bca_high):
        return Interval(float(bca_low), float(bca_high), confidence, "BCa")
    if not np.all(np.isfinite(distribution)):
        return None
    if np.ptp(distribution) == 0:
        value = float(distribution[0])
        return Interval(value, value, confidence, "degenerate")
    tail = (1 - confidence) / 2
    low, high = np.quantile(distribution, [tail, 1 - tail])
    return Interval(float(low), float(high), confidence, "percentile")


def bootstrap_interval(
    data: Sequence[np.ndarray],
    function: Statistic,
    *,
    confidence: float,
    seed: int,
    n_resamples: int = DEFAULT_N_RESAMPLES,
) -> Interval | None:
    """A ``confidence`` interval for a one-valued ``function(*data)`` (see :func:`bootstrap_intervals`)."""
    (interval,) = bootstrap_intervals(
        data, function, confidence=confidence, seed=seed, n_resamples=n_resamples
    )
    return interval


def spearman_rho(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman ρ between fixed ``x`` and ``y`` along ``axis`` (vectorized over the other axes).

    Ties get average ranks (as ``scipy.stats.spearmanr``). A constant ``y`` has no monotone
    relation with ``x``: its ρ, undefined as a correlation, is reported as 0.
    """
    y = np.moveaxis(np.asarray(y, dtype=float), axis, -1)
    rank_x = stats.rankdata(np.asarray(x, dtype=float))
    rank_y = stats.rankdata(y, axis=-1)
    centred_x = rank_x - rank_x.mean()
    centred_y = rank_y - rank_y.mean(axis=-1, keepdims=True)
    numerator = np.sum(centred_x * centred_y, axis=-1)
    denominator = np.sqrt(np.sum(centred_x**2) * np.sum(centred_y**2, axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = numerator / denominator
    return np.where(denominator > 0, rho, 0.0)


@dataclass(frozen=True)
class SweepStatistics:
    """Per-point statistics over a sweep, and the trend statistics ρ and rank slope built on them.

    ``data`` is every point's arrays flattened into one tuple, so ``scipy.stats.bootstrap``
    (paired) draws the same prompt indices for all points in each resample.
    """

    x: np.ndarray
    data: tuple[np.ndarray, ...]
    sizes: tuple[int, ...]
    functions: tuple[Statistic, ...]

    def per_point(self, *arrays: np.ndarray, axis: int = -1) -> np.ndarray:
        """The statistic at every point, stacked on the last axis."""
        values, start = [], 0
        for size, function in zip(self.sizes, self.functions, strict=True):
            values.append(function(*arrays[start : start + size], axis=axis))
            start += size
        return np.stack(values, axis=-1)

    def rho(self, *arrays: np.ndarray, axis: int = -1) -> np.ndarray:
        """Spearman ρ between x and the per-point statistic (vectorized)."""
        return spearman_rho(self.x, self.per_point(*arrays, axis=axis), axis=-1)

    def rank_slope(self, *arrays: np.ndarray, axis: int = -1) -> np.ndarray:
        """Least-squares slope of the per-point statistic on rank(x): a linear contrast of the points.

        Unlike ρ (a step function of the per-point values) it is smooth in the data, so its
        bootstrap interval keeps its level even when the sweep is flat.
        """
        return self._slope(self.per_point(*arrays, axis=axis))

    def _slope(self, values: np.ndarray) -> np.ndarray:
        rank = stats.rankdata(self.x)
        centred = rank - rank.mean()
        # The weights sum to 0, so subtracting the first point changes nothing but makes a flat
        # sweep's slope exactly 0 (no rounding residue to straddle 0 with).
        return (values - values[..., :1]) @ (centred / np.sum(centred**2))

    def points(self, *arrays: np.ndarray, axis: int = -1) -> np.ndarray:
        """Every point's statistic, stacked on a leading axis (for :func:`bootstrap_intervals`)."""
        return np.moveaxis(self.per_point(*arrays, axis=axis), -1, 0)

    def points_and_trend(self, *arrays: np.ndarray, axis: int = -1) -> np.ndarray:
        """Every point's statistic, then ρ, then the rank slope, stacked on a leading axis."""
        values = self.per_point(*arrays, axis=axis)
        rho = spearman_rho(self.x, values, axis=-1)
        return np.concatenate([np.moveaxis(values, -1, 0), rho[None], self._slope(values)[None]], axis=0)


def sweep_statistics(x: np.ndarray, per_point: Sequence[StatisticInputs]) -> SweepStatistics:
    """Bundle a sweep's per-point inputs (x: numeric positions of the points)."""
    return SweepStatistics(
        x=np.asarray(x, dtype=float),
        data=tuple(array for p in per_point for array in p.data),
        sizes=tuple(len(p.data) for p in per_point),
        functions=tuple(p.function for p in per_point),
    )
