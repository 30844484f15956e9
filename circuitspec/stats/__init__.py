"""Statistics: intervals, verdicts, random baselines, family-wise error control → ClaimOutcome.

numpy/scipy only (no torch). Entry points: :func:`evaluate_family` for a file's claims (interval
levels set by the hypothesis' ``family``, then the p-value families adjusted);
:func:`evaluate_claim` for one claim's :class:`~circuitspec.measurement.Measurement` at one level,
and :func:`adjust` for the p-value families alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from circuitspec.lazy_exports import lazy_exports

if TYPE_CHECKING:  # the names below, imported on first use (see __getattr__)
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

_EXPORTS = {
    "BaselineComparison": "baselines",
    "ClaimOutcome": "outcome",
    "ClaimRequest": "family",
    "DEFAULT_MIN_N": "intervals",
    "DEFAULT_N_RESAMPLES": "bootstrap",
    "Interval": "outcome",
    "METHODS": "multiple",
    "PointOutcome": "outcome",
    "Verdict": "outcome",
    "adjust": "multiple",
    "adjust_p_values": "multiple",
    "benjamini_hochberg": "multiple",
    "bootstrap_interval": "bootstrap",
    "combine_verdict": "baselines",
    "compare_to_baseline": "baselines",
    "equivalence_verdict": "verdicts",
    "evaluate_claim": "evaluate",
    "evaluate_family": "family",
    "holm": "multiple",
    "interval_verdict": "verdicts",
    "spearman_rho": "bootstrap",
    "tost_p_value": "verdicts",
    "trend_verdict": "verdicts",
}


# the names above, imported on first use: importing one light module (`stats.outcome`, for
# `circuitspec diff`) then does not import scipy.stats
__getattr__ = lazy_exports(__name__, _EXPORTS)
