"""One claim's :class:`Measurement` + expectation → :class:`ClaimOutcome` (the stats entry point).

Semantics (see also docs/ARCHITECTURE.md, "Statistics semantics"):

- The statistic (mean / median / effect / success_rate / recovered / interaction) gets a
  seeded bootstrap CI over prompts at the claim's confidence level (:mod:`.bootstrap`), and
  the verdict follows from where the CI lies (:mod:`.verdicts`).
- **Sweeps** (``Measurement.sweep``): every point gets its statistic and CI
  (``ClaimOutcome.points``). A *trend* expectation is judged on Spearman ρ between x and the
  per-point statistic, whose CI resamples prompts with the same indices at every point; because
  ρ's bootstrap CI alone is over-confident near a flat sweep, the rank slope (least-squares
  slope of the statistic on rank(x), ``details["rank_slope"]``) must clear 0 the same way
  (:func:`.verdicts.trend_verdict`). A *compare* or *equivalence* expectation on a sweep is
  judged at the **last** point (the largest α, the final layer) unless ``sweep_index`` says
  otherwise; ``details["sweep_x"]`` records it. Sweep points, ρ and the slope come from one
  joint bootstrap (the same prompt resamples for all).
- Equivalence on ``mean``/``effect`` also reports a TOST p-value (``p_value`` when the claim has
  no random baseline, else ``details["tost_p"]``); the verdict itself comes from the CI.
- A random baseline adds an empirical p-value and percentile; such a claim passes only if its
  CI verdict passes and its p ≤ 1 − confidence (:mod:`.baselines`; :func:`.multiple.adjust`
  later re-derives the verdict with the adjusted p).
- Never raises on bad data: a measurement error, NaN/Inf, or a missing array is a **fail** with
  the reason; fewer than 2 prompts, or a statistic undefined on the data (``recovered`` with
  mean(clean) = mean(corrupt)), is **inconclusive** with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict

import numpy as np

from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement, SweepPoint
from circuitspec.spec.expectations import Expectation, ExpectationSyntaxError, parse_expectation

from .baselines import combine_verdict, compare_to_baseline
from .bootstrap import (
    DEFAULT_N_RESAMPLES,
    MissingArray,
    StatisticInputs,
    bootstrap_interval,
    bootstrap_intervals,
    statistic_inputs,
    sweep_statistics,
)
from .outcome import ClaimOutcome, Interval, PointOutcome, Verdict
from .verdicts import format_number, interval_verdict, tost_p_value

__all__ = ["evaluate_claim"]


class _Verdict(Exception):
    """A verdict reached before any interval (bad data, too few prompts): carries it out."""

    def __init__(self, verdict: Verdict, reason: str):
        super().__init__(reason)
        self.verdict, self.reason = verdict, reason


def _check_finite(inputs: StatisticInputs, where: str) -> int:
    """The number of prompts; raises a fail verdict on NaN/Inf or arrays of unequal length."""
    lengths = {name: array.size for name, array in zip(inputs.names, inputs.raw, strict=True)}
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{name}: {size}" for name, size in lengths.items())
        raise _Verdict("fail", f"the measured arrays{where} have different numbers of prompts ({sizes})")
    for name, array in zip(inputs.names, inputs.raw, strict=True):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise _Verdict(
                "fail", f"'{name}'{where} has {bad} non-finite value(s) (NaN/Inf) among {array.size} prompts"
            )
    return next(iter(lengths.values()))


def _inputs(statistic: str, arrays: Mapping[str, np.ndarray], where: str = "") -> tuple[StatisticInputs, int]:
    try:
        inputs = statistic_inputs(statistic, arrays)
    except MissingArray as missing:
        raise _Verdict("fail", f"{missing}{where}") from None
    return inputs, _check_finite(inputs, where)


def _sweep_inputs(statistic: str, sweep: Sequence[SweepPoint]) -> tuple[list[StatisticInputs], int]:
    inputs, sizes = [], set()
    for point in sweep:
        point_inputs, n = _inputs(statistic, point.arrays, f" at sweep point {point.x}")
        inputs.append(point_inputs)
        sizes.add(n)
    if len(sizes) > 1:
        raise _Verdict("fail", f"sweep points have different numbers of prompts ({sorted(sizes)})")
    return inputs, sizes.pop()


def _undefined_reason(statistic: str, inputs: StatisticInputs, where: str = "") -> str:
    if statistic == "recovered":
        clean, corrupt = float(np.mean(inputs.data[0])), float(np.mean(inputs.data[1]))
        return (
            f"recovered is undefined{where}: mean(clean) = {format_number(clean)} equals "
            f"mean(corrupt) = {format_number(corrupt)}, so there is nothing to recover"
        )
    return f"{statistic} is undefined on these data{where}"


def _sweep_x(sweep: Sequence[SweepPoint]) -> np.ndarray:
    """Numeric x of the sweep points, or their order when some x is not a number."""
    try:
        return np.array([float(point.x) for point in sweep])
    except (TypeError, ValueError):
        return np.arange(len(sweep), dtype=float)


def _parse(expectation: Expectation | str) -> Expectation:
    if isinstance(expectation, Expectation):
        return expectation
    try:
        return parse_expectation(expectation)
    except ExpectationSyntaxError as bad:
        raise CircuitSpecError(str(bad)) from None


def evaluate_claim(
    measurement: Measurement,
    expectation: Expectation | str,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    sweep_index: int = -1,
) -> ClaimOutcome:
    """Statistic, bootstrap CI, p-values and verdict (with its reason) for one claim.

    ``sweep_index`` picks the sweep point a compare / equivalence expectation is judged at
    (default: the last). Deterministic for a given ``seed``. Raises only on bad arguments
    (:class:`CircuitSpecError`), never on bad data.
    """
    expectation = _parse(expectation)
    if not 0 < confidence < 1:
        raise CircuitSpecError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if n_resamples < 100:
        raise CircuitSpecError(f"n_resamples must be at least 100, got {n_resamples}")
    is_trend = expectation.form == "trend"
    outcome = ClaimOutcome(
        claim_id=measurement.claim_id,
        kind=measurement.kind,
        expectation=expectation.text,
        statistic="rho" if is_trend else expectation.statistic,
        estimate=None,
        ci=None,
        verdict="inconclusive",
        reason="",
        n_prompts=int(measurement.n_prompts),
        details={"n_resamples": n_resamples, "seed": seed, "confidence": confidence},
    )
    if is_trend:
        outcome.details["per_point_statistic"] = expectation.statistic
    try:
        _evaluate(outcome, measurement, expectation, confidence, seed, n_resamples, sweep_index)
    except _Verdict as early:
        outcome.verdict, outcome.reason = early.verdict, early.reason
    return outcome


def _evaluate(
    outcome: ClaimOutcome,
    measurement: Measurement,
    expectation: Expectation,
    confidence: float,
    seed: int,
    n_resamples: int,
    sweep_index: int,
) -> None:
    """Fill ``outcome`` in place; raises :class:`_Verdict` for verdicts reached without an interval."""
    if measurement.error:
        raise _Verdict("fail", f"the claim could not be measured: {measurement.error}")
    statistic = expectation.statistic
    sweep = list(measurement.sweep)
    if expectation.form == "trend" and len(sweep) < 2:
        raise _Verdict(
            "fail" if not sweep else "inconclusive",
            f"'{expectation.text}' needs a sweep of at least 2 points, got {len(sweep)}",
        )
    random = _random_baseline(measurement)
    per_point: Sequence[StatisticInputs] = []
    inputs: StatisticInputs | None = None
    if sweep:
        per_point, n = _sweep_inputs(statistic, sweep)
    else:
        inputs, n = _inputs(statistic, measurement.arrays)
    outcome.n_prompts = n
    if n < 2:
        raise _Verdict("inconclusive", f"only {n} prompt(s): at least 2 are needed to estimate uncertainty")

    slope_ci: Interval | None = None
    where = ""
    if expectation.form == "trend":
        slope_ci = _trend(outcome, measurement, per_point, confidence, seed, n_resamples)
    else:
        where = _estimate(
            outcome, measurement, expectation, inputs, per_point, sweep_index, confidence, seed, n_resamples
        )

    if outcome.ci is None:
        raise _Verdict(
            "inconclusive",
            f"the bootstrap distribution of {outcome.statistic}{where} is undefined "
            "(some resamples give an undefined value)",
        )
    verdict, reason = interval_verdict(expectation, outcome.ci, slope_ci)
    outcome.verdict, outcome.reason = verdict, reason + where
    if random is not None:
        _apply_baseline(outcome, random, expectation, confidence)


def _estimate(
    outcome: ClaimOutcome,
    measurement: Measurement,
    expectation: Expectation,
    inputs: StatisticInputs | None,
    per_point: Sequence[StatisticInputs],
    sweep_index: int,
    confidence: float,
    seed: int,
    n_resamples: int,
) -> str:
    """Estimate and interval of a non-trend claim (at ``sweep_index`` of a sweep, if any) into
    ``outcome``; returns the `` at x = …`` suffix its reason carries."""
    sweep, statistic, where = list(measurement.sweep), expectation.statistic, ""
    if sweep:
        if not -len(sweep) <= sweep_index < len(sweep):
            raise CircuitSpecError(f"sweep_index {sweep_index} is outside the {len(sweep)} sweep points")
        _points(outcome, measurement, per_point, confidence, seed, n_resamples)
        inputs = per_point[sweep_index]
        outcome.details["sweep_x"] = sweep[sweep_index].x
        where = f" at {measurement.sweep_variable or 'x'} = {sweep[sweep_index].x}"
    assert inputs is not None
    estimate = inputs.estimate()
    if not np.isfinite(estimate):
        raise _Verdict("inconclusive", _undefined_reason(statistic, inputs, where))
    outcome.estimate = estimate
    if sweep:
        outcome.ci = outcome.points[sweep_index].ci
    else:
        outcome.ci = bootstrap_interval(
            inputs.data, inputs.function, confidence=confidence, seed=seed, n_resamples=n_resamples
        )
    if expectation.form == "equivalence" and statistic in ("mean", "effect"):
        assert expectation.threshold is not None
        outcome.details["tost_p"] = tost_p_value(inputs.raw[0], expectation.threshold)
        outcome.p_value = outcome.details["tost_p"]
    return where


def _points(
    outcome: ClaimOutcome,
    measurement: Measurement,
    per_point: Sequence[StatisticInputs],
    confidence: float,
    seed: int,
    n_resamples: int,
) -> None:
    """Every sweep point's statistic and CI (one joint bootstrap: the same prompt resamples)."""
    sweep = sweep_statistics(_sweep_x(measurement.sweep), per_point)
    intervals = bootstrap_intervals(
        sweep.data, sweep.points, confidence=confidence, seed=seed, n_resamples=n_resamples
    )
    outcome.points = _point_outcomes(measurement.sweep, sweep.points(*sweep.data), intervals)


def _point_outcomes(
    sweep: Sequence[SweepPoint], estimates: np.ndarray, intervals: Sequence[Interval | None]
) -> list[PointOutcome]:
    return [
        PointOutcome(point.x, float(estimate), ci if np.isfinite(estimate) else None)
        for point, estimate, ci in zip(sweep, estimates, intervals, strict=True)
    ]


def _trend(
    outcome: ClaimOutcome,
    measurement: Measurement,
    per_point: Sequence[StatisticInputs],
    confidence: float,
    seed: int,
    n_resamples: int,
) -> Interval | None:
    """Points, Spearman ρ (estimate and CI into ``outcome``) and the rank slope's CI (returned).

    One bootstrap serves every point, ρ and the slope, so all use the same prompt resamples.
    """
    sweep = measurement.sweep
    for point, inputs in zip(sweep, per_point, strict=True):
        if not np.isfinite(inputs.estimate()):
            where = f" at sweep point {point.x}"
            raise _Verdict(
                "inconclusive", _undefined_reason(outcome.details["per_point_statistic"], inputs, where)
            )
    x = _sweep_x(sweep)
    if np.ptp(x) == 0:
        raise _Verdict(
            "inconclusive", f"every sweep point has the same x ({sweep[0].x}): no trend to measure"
        )
    statistics = sweep_statistics(x, per_point)
    estimates = statistics.points_and_trend(*statistics.data)
    intervals = bootstrap_intervals(
        statistics.data,
        statistics.points_and_trend,
        confidence=confidence,
        seed=seed,
        n_resamples=n_resamples,
    )
    k = len(sweep)
    outcome.points = _point_outcomes(sweep, estimates[:k], intervals[:k])
    outcome.estimate, outcome.ci = float(estimates[k]), intervals[k]
    slope_ci = intervals[k + 1]
    outcome.details.update(
        x=x.tolist(),
        sweep_variable=measurement.sweep_variable,
        rank_slope={
            "estimate": float(estimates[k + 1]),
            "ci": asdict(slope_ci) if slope_ci is not None else None,
        },
    )
    return slope_ci


def _random_baseline(measurement: Measurement) -> np.ndarray | None:
    if measurement.random_baseline is None:
        return None
    random = np.asarray(measurement.random_baseline, dtype=float).reshape(-1)
    if random.size == 0:
        raise _Verdict("fail", "the random baseline is empty (0 random circuits were measured)")
    bad = int(np.count_nonzero(~np.isfinite(random)))
    if bad:
        raise _Verdict(
            "fail",
            f"the random baseline has {bad} non-finite value(s) (NaN/Inf) among {random.size} circuits",
        )
    return random


def _apply_baseline(
    outcome: ClaimOutcome, random: np.ndarray, expectation: Expectation, confidence: float
) -> None:
    assert outcome.estimate is not None
    comparison = compare_to_baseline(outcome.estimate, random, expectation)
    alpha = 1 - confidence
    outcome.details.update(
        random_baseline=asdict(comparison), ci_verdict=outcome.verdict, ci_reason=outcome.reason, alpha=alpha
    )
    outcome.p_value = comparison.p_value
    outcome.percentile = comparison.percentile
    outcome.verdict, outcome.reason = combine_verdict(
        outcome.verdict, outcome.reason, comparison.p_value, alpha, comparison.n
    )
