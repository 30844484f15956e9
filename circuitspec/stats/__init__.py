"""Statistics: bootstrap CIs, verdicts, random baselines, multiple comparisons → ClaimOutcome.

numpy/scipy only (no torch). Entry points: :func:`evaluate_claim` for one claim's
:class:`~circuitspec.measurement.Measurement`, then :func:`adjust` across a file's outcomes.
"""

from __future__ import annotations

from .baselines import BaselineComparison, combine_verdict, compare_to_baseline
from .bootstrap import DEFAULT_N_RESAMPLES, bootstrap_interval, spearman_rho
from .evaluate import evaluate_claim
from .multiple import METHODS, adjust, adjust_p_values, benjamini_hochberg, holm
from .outcome import ClaimOutcome, Interval, PointOutcome, Verdict
from .verdicts import equivalence_verdict, interval_verdict, tost_p_value, trend_verdict

__all__ = [
    "DEFAULT_N_RESAMPLES",
    "METHODS",
    "BaselineComparison",
    "ClaimOutcome",
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
    "holm",
    "interval_verdict",
    "spearman_rho",
    "tost_p_value",
    "trend_verdict",
]
