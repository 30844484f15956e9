"""A screen's verdict: every cell's interval, corrected as a family, then the set rule.

Each cell is judged like a single claim (``<statistic> <op> <threshold>`` by :func:`.evaluate_claim`,
the same interval methods; a mean's bootstrap-t intervals of all cells at once by
:mod:`.batched_intervals`, equal to each cell's own), at the level :func:`.levels.family_levels`
gives it within the screen's own level (``cell_family``: Holm by default, or Bonferroni), so the
chance that *any* cell's decision is wrong stays below the screen's α. A cell **clears** when its
whole interval satisfies the comparison, **misses** when its whole interval violates it, and
**straddles** otherwise.

- ``only [S] op t``: pass when the cells that clear are exactly S; fail when a named cell misses
  or an unnamed cell clears; inconclusive otherwise (a named cell straddles).
- ``none outside [S] op t``: pass when every unnamed cell misses; fail when an unnamed cell
  clears; inconclusive otherwise. Named cells are not judged.

The estimate is the number of cells that clear; the per-cell estimates and intervals are the
outcome's ``points`` (x = the cell's name), the heatmap's data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement
from circuitspec.spec.expectations import Expectation, ExpectationSyntaxError
from circuitspec.spec.screens import ScreenExpectation, is_screen_expectation, parse_screen_expectation

from .batched_intervals import bootstrap_t_intervals
from .levels import family_levels
from .outcome import ClaimOutcome, Interval, PointOutcome, Verdict
from .verdicts import format_number, interval_verdict

__all__ = ["as_screen_expectation", "evaluate_screen"]

CellEvaluator = Callable[..., ClaimOutcome]  # (measurement, expectation, level, seed, n_resamples, min_n=)
_CELL_STATE = {"pass": "clears", "fail": "misses"}


def as_screen_expectation(expectation: Expectation | str) -> ScreenExpectation | None:
    """``expectation`` as a screen expectation, None when it is not one (a one-line error when it is
    written as one but does not parse)."""
    if isinstance(expectation, ScreenExpectation):
        return expectation
    if not is_screen_expectation(expectation):
        return None
    try:
        return parse_screen_expectation(str(expectation))
    except ExpectationSyntaxError as bad:
        raise CircuitSpecError(str(bad)) from None


def _cell_measurements(measurement: Measurement) -> list[Measurement]:
    return [
        Measurement(
            f"{measurement.claim_id}[{p.x}]", measurement.kind, measurement.n_prompts, arrays=p.arrays
        )
        for p in measurement.sweep
    ]


def _outcome(measurement: Measurement, expectation: ScreenExpectation, confidence: float) -> ClaimOutcome:
    return ClaimOutcome(
        claim_id=measurement.claim_id,
        kind=measurement.kind,
        expectation=expectation.text,
        statistic="cells",
        estimate=None,
        ci=None,
        verdict="inconclusive",
        reason="",
        n_prompts=int(measurement.n_prompts),
        details={"confidence": confidence},
    )


def _names(cells: list[str], limit: int = 8) -> str:
    return ", ".join(cells[:limit]) + (f" and {len(cells) - limit} more" if len(cells) > limit else "")


def _ci_text(outcome: ClaimOutcome) -> str:
    ci = outcome.ci
    return f"[{format_number(ci.low)}, {format_number(ci.high)}]" if ci else "(no interval)"


def _rule(
    expectation: ScreenExpectation, named: set[str], states: dict[str, str], per_cell: dict[str, ClaimOutcome]
) -> tuple[Verdict, str]:
    """The set rule of the module docstring on the cells' states (clears / misses / straddles)."""
    cell = expectation.cell_expectation().text
    clear = [c for c, s in states.items() if s == "clears"]
    wrong_in = [c for c in clear if c not in named]
    if wrong_in:
        first = wrong_in[0]
        return (
            "fail",
            f"unnamed cell(s) {_names(wrong_in)} clear {cell} ({first}: {_ci_text(per_cell[first])})",
        )
    if expectation.which == "only":
        below = [c for c in states if c in named and states[c] == "misses"]
        if below:
            first = below[0]
            return (
                "fail",
                f"named cell(s) {_names(below)} miss {cell} ({first}: {_ci_text(per_cell[first])})",
            )
        open_named = [c for c in states if c in named and states[c] == "straddles"]
        if open_named:
            return "inconclusive", f"the intervals of named cell(s) {_names(open_named)} straddle {cell}"
        straddle = [c for c, s in states.items() if s == "straddles"]
        note = f"; {len(straddle)} unnamed cell(s) straddle it ({_names(straddle, 4)})" if straddle else ""
        return "pass", f"exactly the named cells {_names(sorted(named))} clear {cell}{note}"
    open_cells = [c for c in states if c not in named and states[c] == "straddles"]
    if open_cells:
        return "inconclusive", f"the intervals of unnamed cell(s) {_names(open_cells)} straddle {cell}"
    return "pass", f"all {sum(c not in named for c in states)} unnamed cells miss {cell}"


def _batched(
    cells: list[Measurement], expectation: Expectation, nominal: list[ClaimOutcome], seed: int, resamples: int
) -> Callable[[int, float], ClaimOutcome]:
    """``at(i, level)`` for mean cells: every cell's bootstrap-t interval at a level computed at once
    (:func:`.batched_intervals.bootstrap_t_intervals`, equal to each cell's own), judged like a claim."""
    rows = np.vstack([np.asarray(c.arrays["value"], dtype=float) for c in cells])
    by_level: dict[float, list[Interval]] = {}

    def at(i: int, level: float) -> ClaimOutcome:
        key = round(level, 12)
        if key not in by_level:
            by_level[key] = bootstrap_t_intervals(rows, level, seed, resamples)
        ci = by_level[key][i]
        verdict, reason = interval_verdict(expectation, ci)
        details = {**nominal[i].details, "confidence": level}
        return replace(nominal[i], ci=ci, verdict=verdict, reason=reason, details=details)

    return at


def _cell_judge(
    cells: list[Measurement],
    expectation: Expectation,
    confidence: float,
    seed: int,
    n_resamples: int,
    min_n: int | None,
    evaluate_cell: CellEvaluator,
) -> tuple[Callable[[int, float], ClaimOutcome], list[ClaimOutcome]]:
    """``at(i, level)``: cell i judged at ``level`` (cached), and every cell judged at ``confidence``."""
    cache: dict[tuple[int, float], ClaimOutcome] = {}

    def at(i: int, level: float) -> ClaimOutcome:
        key = (i, round(level, 12))
        if key not in cache:
            cache[key] = evaluate_cell(cells[i], expectation, level, seed, n_resamples, min_n=min_n)
        return cache[key]

    nominal = [at(i, confidence) for i in range(len(cells))]
    if expectation.statistic == "mean" and all(o.ci is not None for o in nominal):
        return _batched(cells, expectation, nominal, seed, n_resamples), nominal  # shared draws
    return at, nominal


def evaluate_screen(
    measurement: Measurement,
    expectation: ScreenExpectation,
    confidence: float,
    seed: int,
    n_resamples: int,
    min_n: int | None,
    evaluate_cell: CellEvaluator,
) -> ClaimOutcome:
    """The screen's outcome at ``confidence`` (its level in the file's family); never raises on bad data.

    ``evaluate_cell`` is :func:`.evaluate.evaluate_claim` (passed in: that module dispatches here)."""
    outcome = _outcome(measurement, expectation, confidence)
    info: dict[str, Any] = measurement.extra.get("screen") or {}
    if measurement.error or not measurement.sweep or not info:
        why = measurement.error or "the screen measured no cells"
        outcome.verdict, outcome.reason = "error", f"the claim could not be measured: {why}"
        outcome.details["decidable"] = False
        return outcome
    cells = _cell_measurements(measurement)
    cell_expectation = expectation.cell_expectation()
    at, nominal = _cell_judge(cells, cell_expectation, confidence, seed, n_resamples, min_n, evaluate_cell)
    stuck = next((o for o in nominal if not o.details.get("decidable", True)), None)
    if stuck is not None:
        outcome.verdict, outcome.reason = stuck.verdict, f"cell {stuck.claim_id}: {stuck.reason}"
        outcome.details["decidable"] = False
        return outcome
    method = info.get("cell_family", "holm")
    levels = family_levels(method, list(range(len(cells))), [1 - confidence] * len(cells), at)
    labels = [str(p.x) for p in measurement.sweep]
    per_cell = {labels[i]: at(i, levels[i]) for i in range(len(cells))}
    states = {c: _CELL_STATE.get(o.verdict, "straddles") for c, o in per_cell.items()}
    named = set(info.get("named", []))
    outcome.verdict, outcome.reason = _rule(expectation, named, states, per_cell)
    outcome.estimate = float(sum(s == "clears" for s in states.values()))
    outcome.points = [
        PointOutcome(c, o.estimate if o.estimate is not None else float("nan"), o.ci)
        for c, o in per_cell.items()
    ]
    outcome.details["screen"] = {
        **info,
        "which": expectation.which,
        "cell_expectation": cell_expectation.text,
        "cell_statistic": cell_expectation.statistic,
        "states": states,
        "levels": {labels[i]: levels[i] for i in range(len(cells))},
        "cell_family": method,
    }
    return outcome
