"""Compile check of an ablation's ``mean_from`` (torch-free): a mean ablation, known templates, roles there.

The reference prompts stand in for the claim's own when the mean is taken, so a target pinned to a
role (``L0H0@s_con``) needs that role in every reference template, as in the claim's own templates.
"""

from __future__ import annotations

from typing import Any

from circuitspec.spec.mean_reference import reference_templates
from circuitspec.spec.nodes import NodeRef

from .checks import Chains, Checker, check_ablation

__all__ = ["check_ablation_with_reference", "check_mean_from"]


def check_mean_from(c: Checker, claim: Any, targets: list[NodeRef]) -> None:
    """One line at the bad key when ``mean_from`` cannot give the claim's mean."""
    reference = getattr(claim, "mean_from", None)
    if reference is None:
        return
    loc = c.claim_loc(claim.id, "mean_from")
    if claim.method != "mean":
        raise c.fail(f"'mean_from' is for method: mean (got method: {claim.method})", loc)
    try:
        template_ids = reference_templates(c.spec.data.templates, reference.data)
    except ValueError as exc:
        index, message = exc.args
        raise c.fail(message, (*loc, "data", index)) from None
    for node in targets:
        c.check_role(node.role, template_ids, (*loc, "data"), f"of target '{node.text}' (mean_from)")


def check_ablation_with_reference(
    c: Checker, claim: Any, targets: list[NodeRef], chains: Chains, template_ids: list[str]
) -> None:
    """The ablation kind's check: soft needs alpha (``checks.check_ablation``), then ``mean_from``."""
    check_ablation(c, claim, targets, chains, template_ids)
    check_mean_from(c, claim, targets)
