"""Multiple comparisons across one hypothesis file's claims (Holm, Benjamini–Hochberg, none).

The family is every claim of the file with a p-value (random-baseline empirical p's and TOST
p's for mean equivalence). :func:`adjust` fills ``ClaimOutcome.p_adjusted`` and recomputes the
verdicts that depend on a p-value (claims with a random baseline, see
:mod:`circuitspec.stats.baselines`); CI-only verdicts are untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from circuitspec.errors import CircuitSpecError

from .baselines import combine_verdict
from .outcome import ClaimOutcome

__all__ = ["METHODS", "adjust", "adjust_p_values", "benjamini_hochberg", "holm"]

METHODS = ("holm", "bh", "none")
_LABELS = {"holm": "Holm", "bh": "BH", "none": None}


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment (controls the family-wise error rate).

    Sorted ascending, the i-th smallest (0-based) p becomes ``(m − i)·p``; a running maximum
    keeps the adjusted values monotone in the raw order, and they are capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted_sorted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini–Hochberg adjustment (false discovery rate), ``scipy.stats.false_discovery_control``."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return p.copy()
    return np.asarray(stats.false_discovery_control(p, method="bh"), dtype=float)


def adjust_p_values(p_values: Sequence[float], method: str) -> np.ndarray:
    """Adjusted p-values by ``method`` ('holm', 'bh' or 'none')."""
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    if method == "none":
        return np.asarray(p_values, dtype=float).copy()
    raise CircuitSpecError(f"unknown multiple-comparisons method '{method}' (valid: {', '.join(METHODS)})")


def adjust(outcomes: Sequence[ClaimOutcome], method: str = "holm") -> str:
    """Fill ``p_adjusted`` across ``outcomes`` that have a p-value; re-derive p-dependent verdicts.

    Returns the method name ('holm', 'bh' or 'none') for the report. Outcomes are modified in place.
    """
    method = method.lower()
    if method not in METHODS:
        raise CircuitSpecError(
            f"unknown multiple-comparisons method '{method}' (valid: {', '.join(METHODS)})"
        )
    family = [o for o in outcomes if o.p_value is not None and np.isfinite(o.p_value)]
    adjusted = adjust_p_values([o.p_value for o in family], method)  # type: ignore[misc]
    for outcome, p_adjusted in zip(family, adjusted, strict=True):
        outcome.p_adjusted = float(p_adjusted)
        outcome.details["correction"] = method
        outcome.details["family_size"] = len(family)
        baseline = outcome.details.get("random_baseline")
        if baseline is not None and "ci_verdict" in outcome.details:
            outcome.verdict, outcome.reason = combine_verdict(
                outcome.details["ci_verdict"],
                outcome.details["ci_reason"],
                outcome.p_adjusted,
                outcome.details["alpha"],
                baseline["n"],
                adjusted_by=_LABELS[method] if len(family) > 1 else None,
            )
    return method
