"""Behaviour gates: a claim that ``require``s another is judged only where that one passes.

Step 1 of a circuit analysis is to check that the model does the task at all; a mechanism claim
on prompts the model gets wrong says nothing about the hypothesis, whichever way it comes out. So
after the verdicts (and the family-wise correction), a claim whose required claim did not pass
becomes *inconclusive* with the reason; its own verdict, reason and numbers stay in the outcome
(``details["without_requirement"]``). A claim that could not be measured keeps its ``error``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from circuitspec.spec.requirements import requirement_order

from .outcome import ClaimOutcome

__all__ = ["apply_requirements", "requirement_reason"]


def requirement_reason(required_id: str, required_verdict: str) -> str:
    """Why a gated claim is inconclusive."""
    if required_verdict == "error":
        return f"requires '{required_id}', which could not be measured"
    return f"requires '{required_id}', which did not pass: the model does not do the task here"


def apply_requirements(outcomes: Sequence[ClaimOutcome], graph_or_spec: Any) -> list[str]:
    """Turn claims whose ``require``d claims did not pass into inconclusive, in requirement order (so a
    gate on a gated claim holds too); ``graph_or_spec`` has the (expanded) ``claims``. Returns the ids
    of the claims it changed."""
    claims = {claim.id: claim for claim in graph_or_spec.claims}
    by_id = {outcome.claim_id: outcome for outcome in outcomes}
    changed: list[str] = []
    for claim_id in requirement_order(list(claims.values())):
        outcome, claim = by_id.get(claim_id), claims.get(claim_id)
        if outcome is None or claim is None or outcome.verdict == "error":
            continue
        failed = next(
            (r for r in claim.require if r in by_id and by_id[r].verdict != "pass"),
            None,
        )
        if failed is None:
            continue
        outcome.details["without_requirement"] = {"verdict": outcome.verdict, "reason": outcome.reason}
        outcome.details["requires"] = list(claim.require)
        outcome.verdict = "inconclusive"
        outcome.reason = requirement_reason(failed, by_id[failed].verdict)
        changed.append(claim_id)
    return changed
