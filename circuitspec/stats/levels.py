"""Each member's interval level under a family-wise error control (holm, bonferroni, bh, none).

Kept apart from :mod:`.family` (which evaluates a file's claims) so that a screen's cells
(:mod:`.screens`) are corrected by the same procedure without importing the claim evaluation;
the procedures are described in :mod:`.family`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .outcome import ClaimOutcome

__all__ = ["Evaluate", "family_levels"]

Evaluate = Callable[[int, float], ClaimOutcome]


def _decided(outcome: ClaimOutcome) -> bool:
    """Pass or fail by the interval alone (before any random-baseline p is combined in)."""
    return outcome.details.get("ci_verdict", outcome.verdict) in ("pass", "fail")


def _holm(members: Sequence[int], alphas: Sequence[float], at: Evaluate) -> dict[int, float]:
    levels: dict[int, float] = {}
    remaining = list(members)
    while remaining:
        k = len(remaining)
        for i in remaining:
            levels[i] = 1 - alphas[i] / k
        decided = {i for i in remaining if _decided(at(i, levels[i]))}
        if not decided:
            break
        remaining = [i for i in remaining if i not in decided]
    return levels


def _bh(members: Sequence[int], alphas: Sequence[float], at: Evaluate) -> dict[int, float]:
    m = rank = len(members)
    while True:
        levels = {i: 1 - alphas[i] * rank / m for i in members}
        n_decided = sum(_decided(at(i, levels[i])) for i in members)
        if n_decided >= rank or rank == 1:
            return levels
        rank = max(1, n_decided)


def family_levels(
    family: str, members: Sequence[int], alphas: Sequence[float], at: Evaluate
) -> dict[int, float]:
    """Each member's interval level under ``family`` (``at(i, level)`` evaluates claim i there)."""
    if family == "none" or len(members) < 2:
        return {i: 1 - alphas[i] for i in members}
    if family == "bonferroni":
        return {i: 1 - alphas[i] / len(members) for i in members}
    if family == "holm":
        return _holm(members, alphas, at)
    return _bh(members, alphas, at)
