"""A ``screen`` claim's single-target claims (one per cell) and what it reads from the shared runs:
what its measured kind reads for every cell."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from circuitspec.spec import schema
from circuitspec.spec.claim_base import _ClaimBase
from circuitspec.spec.screens import FIELDS_OF, ScreenClaim

__all__ = ["screen_hooks", "single_claim"]


def screen_hooks(claim: Any, graph: Any, cfg: Any, registry: Mapping[str, Any]) -> set[str]:
    """The hooks of the kind in ``of`` (its ``registry`` entry, passed in by the registry), for all
    cells (``graph.targets(claim.id)``: the single claims share the screen's id)."""
    cells = graph.targets(claim.id)
    if not cells:
        return set()
    hooks: set[str] = registry[claim.of].needed_hooks(single_claim(claim, cells[0].text), graph, cfg)
    return hooks


def single_claim(screen: ScreenClaim, cell: str) -> Any:
    """The single-target claim of kind ``screen.of`` that one cell equals (same id, data, metric)."""
    models: dict[str, type[BaseModel]] = {
        "attribution": schema.AttributionClaim,
        "attention": schema.AttentionClaim,
        "ablation": schema.AblationClaim,
        "activation_patching": schema.ActivationPatchingClaim,
    }
    shared = set(_ClaimBase.model_fields) - {"targets", "expect", "each", "random_baseline", "require"}
    common = {name: getattr(screen, name) for name in shared}
    common |= {"kind": screen.of, "targets": [cell], "expect": "mean > 0"}
    own = {name: getattr(screen, name) for name, kinds in FIELDS_OF.items() if screen.of in kinds}
    own.pop("versus", None)  # the second prompt group is the screen's, not a single claim's
    return models[screen.of].model_validate(common | own)
