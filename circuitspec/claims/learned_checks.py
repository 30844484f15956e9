"""Compile checks of the ``learned_scaling`` claim kind (torch-free): its file of learned parameters.

``validate`` reads the file the claim names (relative to the hypothesis file, like ``data.file``): it must
exist, be a circuitspec learned-intervention file whose content matches its hash, have been learned on
this hypothesis' model, fit the model's shape (layers, ``d_model``), and pin its locations to roles the
claim's templates define (or ``end``). The claim then carries the resolved path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from circuitspec.spec.nodes import NodeRef

from .checks import Chains, Checker
from .steering_checks import model_label

__all__ = ["check_learned_scaling"]


def check_learned_scaling(
    c: Checker, claim: Any, targets: list[NodeRef], chains: Chains, template_ids: list[str]
) -> None:
    """The file loads, belongs to this model and fits its shape and the claim's templates' roles."""
    from circuitspec.errors import CircuitSpecError
    from circuitspec.learned.store import load

    loaded = getattr(c, "loaded", None)
    base = Path(loaded.base_dir) if loaded is not None else Path.cwd()
    path = Path(claim.scalars)
    path = path if path.is_absolute() else base / path
    where = c.claim_loc(claim.id, "scalars")
    try:
        stored = load(path, model=model_label(c.spec.model))
    except CircuitSpecError as exc:
        raise c.fail(f"scalars '{claim.scalars}': {exc.message}", where) from None
    shape = c.shape
    if stored.provenance.width != int(shape.d_model):
        raise c.fail(
            f"scalars '{claim.scalars}' are {stored.provenance.width} wide but the model's d_model is "
            f"{shape.d_model}",
            where,
        )
    per_template = [set(c.template_roles.get(t, [])) for t in template_ids] or [set()]
    roles = set.intersection(*per_template) | {"end"}
    for loc in stored.locations:
        if loc.layer >= int(shape.n_layers):
            raise c.fail(
                f"scalars '{claim.scalars}': {loc.label} but the model has {shape.n_layers} layers", where
            )
        if loc.role is not None and loc.role not in roles:
            raise c.fail(
                f"scalars '{claim.scalars}': {loc.label} needs role '{loc.role}', which the claim's "
                f"templates do not all define (valid: {', '.join(sorted(roles))})",
                where,
            )
    claim._scalars_path = str(path.resolve())
