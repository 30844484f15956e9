"""p-value families across one hypothesis file's claims (Holm, Bonferroni, Benjamini–Hochberg, none).

Two separate, stated families (their p-values answer different questions):

- **random baselines**: the empirical p of every claim with a random baseline. :func:`adjust`
  fills ``ClaimOutcome.p_adjusted`` and re-derives those claims' verdicts
  (:func:`circuitspec.stats.baselines.combine_verdict`); when even the smallest attainable p,
  1/(N + 1), cannot pass after the correction, the claim is inconclusive and the reason says how
  many random circuits it needs.
- **equivalence (TOST)**: the TOST p of every mean equivalence claim, reported adjusted
  (``details["tost_p_adjusted"]``, and ``p_adjusted`` when the claim has no baseline); the
  equivalence verdict comes from its level-adjusted interval (:mod:`.family`).

Interval-decided verdicts are governed by :mod:`.family`, which calls :func:`adjust` last.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from circuitspec.errors import CircuitSpecError

from .baselines import combine_verdict
from .outcome import ClaimOutcome

__all__ = [
    "METHODS",
    "adjust",
    "adjust_p_values",
    "benjamini_hochberg",
    "check_method",
    "circuits_needed",
    "holm",
]

METHODS = ("holm", "bonferroni", "bh", "none")
_LABELS = {"holm": "Holm", "bonferroni": "Bonferroni", "bh": "BH", "none": None}


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
    """Adjusted p-values by ``method`` ('holm', 'bonferroni', 'bh' or 'none')."""
    if method == "holm":
        return holm(p_values)
    if method == "bonferroni":
        p = np.asarray(p_values, dtype=float)
        return np.minimum(p * p.size, 1.0)
    if method == "bh":
        return benjamini_hochberg(p_values)
    if method == "none":
        return np.asarray(p_values, dtype=float).copy()
    raise CircuitSpecError(f"unknown multiple-comparisons method '{method}' (valid: {', '.join(METHODS)})")


def check_method(method: str) -> str:
    """``method`` in lower case, or a one-line :class:`CircuitSpecError` naming the valid ones."""
    method = method.lower()
    if method not in METHODS:
        raise CircuitSpecError(
            f"unknown multiple-comparisons method '{method}' (valid: {', '.join(METHODS)})"
        )
    return method


def circuits_needed(method: str, family_size: int, alpha: float) -> int:
    """The fewest random circuits whose smallest p, 1/(N + 1), passes ``method`` in every claim."""
    divisor = family_size if method in ("holm", "bonferroni") else 1
    return int(np.ceil(divisor / alpha - 1e-9)) - 1


def adjust(outcomes: Sequence[ClaimOutcome], method: str = "holm") -> str:
    """Adjust the random-baseline and the TOST p-value families; re-derive baseline verdicts.

    Returns the method name for the report. Outcomes are modified in place.
    """
    method = check_method(method)
    _adjust_baselines([o for o in outcomes if "random_baseline" in o.details], method)
    _adjust_tost([o for o in outcomes if o.details.get("tost_p") is not None], method)
    return method


def _adjust_baselines(family: Sequence[ClaimOutcome], method: str) -> None:
    """The random-baseline family: adjusted p, the best attainable adjusted p, the verdict."""
    if not family:
        return
    raw = [o.details["random_baseline"]["p_value"] for o in family]
    smallest = [1 / (o.details["random_baseline"]["n"] + 1) for o in family]
    adjusted, attainable = adjust_p_values(raw, method), adjust_p_values(smallest, method)
    label = _LABELS[method] if len(family) > 1 else None
    for outcome, p_adjusted, best in zip(family, adjusted, attainable, strict=True):
        outcome.p_adjusted = float(p_adjusted)
        outcome.details["p_family"] = f"random baselines: {method} over {len(family)} claim(s)"
        if "ci_verdict" not in outcome.details:
            continue
        alpha = outcome.details["alpha"]
        outcome.verdict, outcome.reason = combine_verdict(
            outcome.details["ci_verdict"],
            outcome.details["ci_reason"],
            outcome.p_adjusted,
            alpha,
            outcome.details["random_baseline"]["n"],
            adjusted_by=label,
            attainable=float(best),
            needed=circuits_needed(method, len(family), alpha),
            kind=outcome.kind,
        )


def _adjust_tost(family: Sequence[ClaimOutcome], method: str) -> None:
    """The equivalence (TOST) family: adjusted p's, reported; verdicts come from intervals."""
    adjusted = adjust_p_values([o.details["tost_p"] for o in family], method)
    for outcome, p_adjusted in zip(family, adjusted, strict=True):
        outcome.details["tost_p_adjusted"] = float(p_adjusted)
        outcome.details["tost_family"] = f"equivalence (TOST): {method} over {len(family)} claim(s)"
        if "random_baseline" not in outcome.details:
            outcome.p_adjusted = float(p_adjusted)
            outcome.details["p_family"] = outcome.details["tost_family"]
