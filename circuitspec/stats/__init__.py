"""Statistics: intervals, verdicts, random baselines, family-wise error control → ClaimOutcome.

numpy/scipy only (no torch). Entry points: :func:`evaluate_family` for a file's claims (interval
levels set by the hypothesis' ``family``, then the p-value families adjusted);
:func:`evaluate_claim` for one claim's :class:`~circuitspec.measurement.Measurement` at one level,
and :func:`adjust` for the p-value families alone.
"""

from __future__ import annotations

from .baselines import BaselineComparison, combine_verdict, compare_to_baseline
from .bootstrap import DEFAULT_N_RESAMPLES, bootstrap_interval, spearman_rho
from .evaluate import evaluate_claim
from .family import ClaimRequest, evaluate_family
from .intervals import DEFAULT_MIN_N
from .multiple import METHODS, adjust, adjust_p_values, benjamini_hochberg, holm
from .outcome import ClaimOutcome, Interval, PointOutcome, Verdict
from .verdicts import equivalence_verdict, interval_verdict, tost_p_value, trend_verdict

__all__ = [
    "DEFAULT_MIN_N",
    "DEFAULT_N_RESAMPLES",
    "METHODS",
    "BaselineComparison",
    "ClaimOutcome",
    "ClaimRequest",
    "Interval",
    "PointOutcome",
    "Verdict",
    "adjust",
    "adjust_p_values",
    "benjamini_hochberg",
    "bootstrap_interval",
    "combine_verdict",
    "compare_to_baseline",
    "equivalence_verdict",
    "evaluate_claim",
    "evaluate_family",
    "holm",
    "interval_verdict",
    "spearman_rho",
    "tost_p_value",
    "trend_verdict",
]
