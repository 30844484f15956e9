"""One claim's :class:`Measurement` + expectation → :class:`ClaimOutcome` (the stats entry point).

Semantics (see also docs/ARCHITECTURE.md, "Statistics semantics", and docs/STATISTICS.md):

- The statistic (mean / median / effect / success_rate / recovered / interaction) gets an
  interval valid at small n (:mod:`.intervals`: bootstrap-t, Hettmansperger–Sheather, Wilson,
  Fieller) at ``confidence``, the level after any family-wise adjustment (:mod:`.family`), and
  the verdict follows from where the interval lies (:mod:`.verdicts`).
- **Small samples**: fewer than ``min_n`` prompts (default :data:`.intervals.DEFAULT_MIN_N`,
  chosen from the calibration) is **inconclusive** with the reason.
- **Ratios**: ``recovered`` whose denominator mean(clean − corrupt) is not distinguishable from 0
  is **inconclusive**: "clean and corrupted runs do not differ: the model does not do this task here".
- **Sweeps** (``Measurement.sweep``): every point gets its statistic and interval
  (``ClaimOutcome.points``). A *trend* expectation is judged on Spearman ρ between x and the
  per-point statistic, whose bootstrap CI resamples prompts with the same indices at every point;
  because ρ's bootstrap CI alone is over-confident near a flat sweep, the rank slope must clear 0
  the same way (:func:`.verdicts.trend_verdict`). A *compare* or *equivalence* expectation on a
  sweep is judged at the **last** point unless ``sweep_index`` says otherwise
  (``details["sweep_x"]``).
- Equivalence on ``mean``/``effect`` also reports a TOST p-value (``p_value`` when the claim has
  no random baseline, else ``details["tost_p"]``); the verdict itself comes from the interval.
- A random baseline adds an empirical p-value and percentile; such a claim passes only if its
  interval verdict passes and its p ≤ 1 − confidence (:mod:`.baselines`).
- Never raises on bad data: a measurement error, NaN/Inf, or a missing array is an **error**
  (never a fail); a statistic undefined on the data is **inconclusive** with the reason.
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
    bootstrap_intervals,
    resamples_for,
    statistic_inputs,
    sweep_statistics,
)
from .intervals import DEFAULT_MIN_N, Unbounded, statistic_interval
from .outcome import ClaimOutcome, Interval, PointOutcome, Verdict
from .screens import as_screen_expectation, evaluate_screen
from .verdicts import interval_verdict, tost_p_value, undefined_reason

__all__ = ["evaluate_claim"]


class _Verdict(Exception):
    """A verdict reached before any interval (bad data, too few prompts): carries it out.

    ``decidable`` is False when no confidence level could change it (an error, too few
    prompts), so the family-wise procedure leaves the claim out of its family.
    """

    def __init__(self, verdict: Verdict, reason: str, decidable: bool = True):
        super().__init__(reason)
        self.verdict, self.reason, self.decidable = verdict, reason, decidable


def _check_finite(inputs: StatisticInputs, where: str) -> int:
    """The number of prompts; raises a fail verdict on NaN/Inf or arrays of unequal length."""
    lengths = {name: array.size for name, array in zip(inputs.names, inputs.raw, strict=True)}
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{name}: {size}" for name, size in lengths.items())
        raise _Verdict(
            "error", f"the measured arrays{where} have different numbers of prompts ({sizes})", False
        )
    for name, array in zip(inputs.names, inputs.raw, strict=True):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise _Verdict(
                "error",
                f"'{name}'{where} has {bad} non-finite value(s) (NaN/Inf) among {array.size} prompts",
                False,
            )
    return next(iter(lengths.values()))


def _inputs(statistic: str, arrays: Mapping[str, np.ndarray], where: str = "") -> tuple[StatisticInputs, int]:
    try:
        inputs = statistic_inputs(statistic, arrays)
    except MissingArray as missing:
        raise _Verdict("error", f"{missing}{where}", False) from None
    return inputs, _check_finite(inputs, where)


def _sweep_inputs(
    statistic: str, sweep: Sequence[SweepPoint], judged: int | None = None
) -> tuple[list[StatisticInputs | None], int]:
    """Each sweep point's inputs. With ``judged`` (a compare expectation reads that point only), a
    point without the statistic's array is None (drawn without a value): e.g. a steering claim's text
    score measures random directions, so ``percentile``, at the last alpha only."""
    inputs: list[StatisticInputs | None] = []
    sizes = set()
    for index, point in enumerate(sweep):
        try:
            point_inputs, n = _inputs(statistic, point.arrays, f" at sweep point {point.x}")
        except _Verdict:
            if judged is None or index == judged % len(sweep):
                raise
            inputs.append(None)
            continue
        inputs.append(point_inputs)
        sizes.add(n)
    if len(sizes) > 1:
        raise _Verdict("error", f"sweep points have different numbers of prompts ({sorted(sizes)})", False)
    return inputs, sizes.pop()


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
    min_n: int | None = None,
) -> ClaimOutcome:
    """Statistic, interval, p-values and verdict (with its reason) for one claim.

    ``confidence`` is the interval's level (already adjusted when the claim is one of a family);
    ``sweep_index`` picks the sweep point a compare / equivalence expectation is judged at
    (default: the last); below ``min_n`` prompts (default :data:`DEFAULT_MIN_N`) the verdict is
    inconclusive. Deterministic for a given ``seed``. Raises only on bad arguments
    (:class:`CircuitSpecError`), never on bad data.
    """
    screen = as_screen_expectation(expectation)
    if screen is not None:  # a screen: every cell's interval, then the set rule (stats/screens.py)
        return evaluate_screen(measurement, screen, confidence, seed, n_resamples, min_n, evaluate_claim)
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
        details={
            "n_resamples": n_resamples,
            "seed": seed,
            "confidence": confidence,
            "min_n": DEFAULT_MIN_N if min_n is None else min_n,
        },
    )
    if is_trend:
        outcome.details["per_point_statistic"] = expectation.statistic
    try:
        _evaluate(outcome, measurement, expectation, confidence, seed, n_resamples, sweep_index)
    except _Verdict as early:
        outcome.verdict, outcome.reason = early.verdict, early.reason
        if not early.decidable:
            outcome.details["decidable"] = False
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
        raise _Verdict("error", f"the claim could not be measured: {measurement.error}", False)
    statistic = expectation.statistic
    sweep = list(measurement.sweep)
    if expectation.form == "trend" and len(sweep) < 2:
        raise _Verdict(
            "error" if not sweep else "inconclusive",
            f"'{expectation.text}' needs a sweep of at least 2 points, got {len(sweep)}",
            False,
        )
    random = _random_baseline(measurement)
    per_point: Sequence[StatisticInputs | None] = []
    inputs: StatisticInputs | None = None
    if sweep:
        per_point, n = _sweep_inputs(statistic, sweep, None if expectation.form == "trend" else sweep_index)
    else:
        inputs, n = _inputs(statistic, measurement.arrays)
    outcome.n_prompts = n
    min_n = max(2, outcome.details["min_n"])
    if n < min_n:
        raise _Verdict(
            "inconclusive",
            f"only {n} prompt(s), fewer than min_n = {min_n}: intervals are not calibrated "
            "on so few (see docs/STATISTICS.md)",
            False,
        )

    slope_ci: Interval | None = None
    where = ""
    if expectation.form == "trend":
        every = [inputs for inputs in per_point if inputs is not None]  # a trend reads every point
        slope_ci = _trend(outcome, measurement, every, confidence, seed, n_resamples)
    else:
        where = _estimate(
            outcome, measurement, expectation, inputs, per_point, sweep_index, confidence, seed, n_resamples
        )

    if outcome.ci is None:
        raise _Verdict(
            "inconclusive",
            outcome.details.pop("unbounded", None)
            or f"the bootstrap distribution of {outcome.statistic}{where} is undefined "
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
    per_point: Sequence[StatisticInputs | None],
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
        inputs = per_point[sweep_index]  # never None: _sweep_inputs raises for the judged point
        outcome.details["sweep_x"] = sweep[sweep_index].x
        where = f" at {measurement.sweep_variable or 'x'} = {sweep[sweep_index].x}"
    assert inputs is not None
    estimate = inputs.estimate()
    if not np.isfinite(estimate):
        raise _Verdict("inconclusive", undefined_reason(statistic, inputs, where))
    outcome.estimate = estimate
    try:
        outcome.ci = statistic_interval(inputs, confidence, seed, n_resamples)
    except Unbounded as unbounded:
        outcome.details["unbounded"] = f"{unbounded}{where}"
    if expectation.form == "equivalence" and statistic in ("mean", "effect"):
        assert expectation.threshold is not None
        outcome.details["tost_p"] = tost_p_value(inputs.raw[0], expectation.threshold)
        outcome.p_value = outcome.details["tost_p"]
    return where


def _points(
    outcome: ClaimOutcome,
    measurement: Measurement,
    per_point: Sequence[StatisticInputs | None],
    confidence: float,
    seed: int,
    n_resamples: int,
) -> None:
    """Every sweep point's statistic and interval (each by its statistic's method)."""
    estimates: list[float] = []
    intervals: list[Interval | None] = []
    for inputs in per_point:
        if inputs is None:  # this point lacks the statistic's array (see _sweep_inputs)
            estimates.append(float("nan"))
            intervals.append(None)
            continue
        estimates.append(inputs.estimate())
        try:
            intervals.append(statistic_interval(inputs, confidence, seed, n_resamples))
        except Unbounded:
            intervals.append(None)
    outcome.points = _point_outcomes(measurement.sweep, np.array(estimates), intervals)


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
                "inconclusive", undefined_reason(outcome.details["per_point_statistic"], inputs, where)
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
        n_resamples=resamples_for(confidence, n_resamples),
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
        raise _Verdict("error", "the random baseline is empty (0 random circuits were measured)", False)
    bad = int(np.count_nonzero(~np.isfinite(random)))
    if bad:
        raise _Verdict(
            "error",
            f"the random baseline has {bad} non-finite value(s) (NaN/Inf) among {random.size} circuits",
            False,
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
        outcome.verdict, outcome.reason, comparison.p_value, alpha, comparison.n, kind=outcome.kind
    )
