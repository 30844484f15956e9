"""Family-wise error control over a hypothesis file's interval-decided verdicts.

Each claim is decided by where its interval lies, so a file of m claims each judged at 95% has a
much larger chance than 5% that *some* claim passes by chance. The hypothesis' ``family`` states
the error control, and it sets the **level of each claim's interval** (the level is shown per
claim in the reports):

- ``bonferroni``: every claim at 1 − α/m.
- ``holm`` (default): step-down. Every claim at 1 − α/m; the claims that are decided (pass or
  fail) keep that level; the k still undecided are re-evaluated at 1 − α/k, and so on until a
  round decides nothing. Equivalent to Holm's procedure on the p-values of "the statistic sits
  exactly at the boundary", so it controls the family-wise rate of wrong pass/fail decisions.
- ``bh``: step-up (Benjamini–Hochberg). The largest R such that at least R claims are decided at
  1 − α·R/m; every claim is reported at that level. Controls the false discovery rate.
- ``none``: every claim at its own confidence.

α is each claim's own 1 − confidence; m counts the claims that can be decided at all (not
errors, not claims below ``min_n``). Random-baseline and TOST p-values are separate families,
adjusted by :func:`.multiple.adjust` with the same method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from circuitspec.measurement import Measurement
from circuitspec.spec.expectations import Expectation

from .bootstrap import DEFAULT_N_RESAMPLES
from .evaluate import evaluate_claim
from .levels import family_levels  # the interval levels of each family (screens use them too)
from .multiple import adjust, check_method
from .outcome import ClaimOutcome

__all__ = ["ClaimRequest", "evaluate_family", "family_levels"]


@dataclass(frozen=True)
class ClaimRequest:
    """One claim to evaluate: its measurement, expectation, nominal confidence and min_n."""

    measurement: Measurement
    expectation: Expectation | str
    confidence: float = 0.95
    min_n: int | None = None
    sweep_index: int = -1


def evaluate_family(
    requests: Sequence[ClaimRequest],
    family: str = "holm",
    seed: int = 0,
    n_resamples: int = DEFAULT_N_RESAMPLES,
) -> list[ClaimOutcome]:
    """Every claim's outcome with its interval at the level ``family`` gives it, then the
    p-value families adjusted (:func:`.multiple.adjust`). Outcomes come back in request order."""
    family = check_method(family)
    cache: dict[tuple[int, float], ClaimOutcome] = {}

    def at(index: int, level: float) -> ClaimOutcome:
        key = (index, round(level, 12))
        if key not in cache:
            request = requests[index]
            cache[key] = evaluate_claim(
                request.measurement,
                request.expectation,
                confidence=level,
                seed=seed,
                n_resamples=n_resamples,
                sweep_index=request.sweep_index,
                min_n=request.min_n,
            )
        return cache[key]

    alphas = [1 - r.confidence for r in requests]
    nominal = [at(i, r.confidence) for i, r in enumerate(requests)]
    members = [i for i, o in enumerate(nominal) if o.details.get("decidable", True)]
    levels = family_levels(family, members, alphas, at)
    outcomes = [at(i, levels[i]) if i in levels else nominal[i] for i in range(len(requests))]
    for i, outcome in enumerate(outcomes):
        outcome.details["nominal_confidence"] = requests[i].confidence
        if "random_baseline" in outcome.details:
            outcome.details["alpha"] = alphas[i]  # the baseline p is judged in its own family
        if i in levels:
            outcome.details.update(family=family, family_size=len(members), level=levels[i])
    adjust(outcomes, family)
    return outcomes
