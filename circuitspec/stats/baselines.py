"""Random-circuit baselines: does the circuit beat N random circuits of the same size?

The engine measures the claim's statistic on N random circuits (``Measurement.random_baseline``).
Here the circuit's statistic is placed among them:

- **percentile**: the share of random circuits below the circuit's statistic (ties count half,
  ``scipy.stats.percentileofscore(kind="mean")``), in the statistic's own direction;
- **empirical p-value** with the +1 correction, ``(1 + #{random at least as good}) / (N + 1)``,
  where "at least as good" follows the expectation: ``≥`` for ``>``/``>=`` and "increases",
  ``≤`` for ``<``/``<=`` and "decreases", ``|random| ≤ |observed|`` for equivalence (a
  negative control should be as close to 0 as random circuits at least), and
  ``|random − t| ≤ |observed − t|`` for ``== t``. It is never 0, and uniform under the null.

**Combined verdict.** A claim with a random baseline passes only if its CI verdict passes *and*
its p-value (adjusted across the file's claims when :func:`circuitspec.stats.adjust` has run,
else raw) is ≤ α = 1 − confidence. A CI pass whose p exceeds α fails ("does not beat random
circuits"), unless even the smallest attainable p, 1/(N + 1), exceeds α: then it is
inconclusive (too few random circuits to decide; the reason says how many are needed, counting
the family's correction: under Holm with k baseline claims the smallest p must reach α/k). A CI
fail or inconclusive stands as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from circuitspec.spec.expectations import Expectation

from .outcome import Verdict
from .verdicts import format_number, format_p

__all__ = ["BaselineComparison", "combine_verdict", "compare_to_baseline"]


@dataclass(frozen=True)
class BaselineComparison:
    """Where the circuit's statistic falls among N random circuits (``asdict`` goes to details)."""

    p_value: float  # (1 + #{random at least as good}) / (N + 1)
    percentile: float  # 0..100, share of random circuits below the circuit (ties count half)
    n: int
    mean: float  # of the random circuits' statistics
    std: float
    direction: str  # what "at least as good" meant: 'higher', 'lower', 'closer to 0', ...


def _as_good_or_better(
    observed: float, random: np.ndarray, expectation: Expectation
) -> tuple[np.ndarray, str]:
    """Which random circuits are at least as good as the circuit, and the direction in words."""
    if expectation.form == "equivalence":
        return np.abs(random) <= abs(observed), "closer to 0"
    if expectation.form == "trend":
        if expectation.direction == "decreases":
            return random <= observed, "lower"
        return random >= observed, "higher"
    if expectation.op == "==":
        threshold = float(expectation.threshold or 0.0)
        return np.abs(random - threshold) <= abs(
            observed - threshold
        ), f"closer to {format_number(threshold)}"
    if expectation.op in ("<", "<="):
        return random <= observed, "lower"
    return random >= observed, "higher"


def compare_to_baseline(observed: float, random: np.ndarray, expectation: Expectation) -> BaselineComparison:
    """The circuit's percentile among random circuits and its +1-corrected empirical p-value."""
    random = np.asarray(random, dtype=float).reshape(-1)
    at_least_as_good, direction = _as_good_or_better(observed, random, expectation)
    n = int(random.size)
    return BaselineComparison(
        p_value=float((1 + np.count_nonzero(at_least_as_good)) / (n + 1)),
        percentile=float(stats.percentileofscore(random, observed, kind="mean")),
        n=n,
        mean=float(np.mean(random)),
        std=float(np.std(random, ddof=1)) if n > 1 else 0.0,
        direction=direction,
    )


def combine_verdict(
    ci_verdict: Verdict,
    ci_reason: str,
    p_value: float,
    alpha: float,
    n_random: int,
    adjusted_by: str | None = None,
    attainable: float | None = None,
    needed: int | None = None,
    kind: str = "",
) -> tuple[Verdict, str]:
    """The CI verdict combined with the random-baseline p-value (see the module docstring).

    ``attainable`` is the smallest p the claim could get (1/(N + 1), adjusted like ``p_value``
    when it is one of a family); ``needed`` the number of random circuits that would let it pass;
    ``kind``: the claim's kind (a steering claim's controls are random directions of the same norm).
    """
    controls = "random directions" if kind == "steering" else "random circuits"
    which = f"{adjusted_by}-adjusted p" if adjusted_by else "p"
    p_text = f"{which} = {format_p(p_value)}"
    if ci_verdict != "pass":
        return ci_verdict, ci_reason
    if p_value <= alpha * (1 + 1e-9):  # 1 − 0.95 is 0.05 only up to rounding
        return (
            "pass",
            f"{ci_reason}, and it beats {n_random} {controls} ({p_text} ≤ {format_number(alpha)})",
        )
    attainable = 1 / (n_random + 1) if attainable is None else attainable
    if attainable > alpha * (1 + 1e-9):
        more = f"use at least {needed}" if needed is not None else f"use more {controls}"
        return "inconclusive", (
            f"{ci_reason}, but {n_random} {controls} cannot give {which} ≤ {format_number(alpha)} "
            f"(the smallest attainable is {format_p(attainable)}); {more}"
        )
    return "fail", (
        f"{ci_reason}, but it does not beat {n_random} {controls} ({p_text} > {format_number(alpha)})"
    )
