"""Compile checks of the ``steering`` claim kind (torch-free): its target rule, and its direction file.

``validate`` reads the direction file named by the claim (relative to the hypothesis file, like
``data.file``): it must exist, be a circuitspec direction (not a subspace), have been read from this
hypothesis' model, and, where the width is known from the shape alone (residual stream and MLP
output: ``d_model``), match the target's width. A head's output width is checked when the model runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError
from circuitspec.spec.nodes import NodeKind, NodeRef

from .checks import Chains, Checker
from .rules import NodeRule

__all__ = ["STEERING_TARGET", "check_steering", "model_label"]

_STREAM = (NodeKind.RESID_PRE, NodeKind.RESID_MID, NodeKind.RESID_POST)

STEERING_TARGET = NodeRule(
    "a residual stream (resid_pre<l>, resid_mid<l>, resid_post<l>), a head's output L<l>H<h> or an MLP's "
    "output MLP<l>, optionally @role",
    lambda node: node.kind in (*_STREAM, NodeKind.HEAD, NodeKind.MLP),
)


def model_label(model_spec: Any) -> str:
    """The model a direction belongs to, as its provenance records it: ``bundled:toy_sentiment``,
    ``name:gpt2``, ``package:…``, ``gguf:…`` or ``path:…`` (the hypothesis' spelling, no file access)."""
    for field in ("bundled", "name", "package", "gguf", "path"):
        value = getattr(model_spec, field, None)
        if value:
            return f"{field}:{value}"
    return "unknown"


def _width(node: NodeRef, shape: Any) -> int | None:
    """The width of ``node``'s activation from the shape alone (None: only the weights know)."""
    return int(shape.d_model) if node.kind in (*_STREAM, NodeKind.MLP) else None


def check_steering(
    c: Checker, claim: Any, targets: list[NodeRef], chains: Chains, template_ids: list[str]
) -> None:
    """One target per claim, and a direction file that fits it and this hypothesis' model."""
    from circuitspec.directions.store import load

    if len(targets) != 1:
        raise c.fail(
            f"a steering claim steers one node, got {len(targets)} "
            f"({', '.join(t.text for t in targets)}): for a layer sweep add 'each: true' "
            "(one claim per node)",
            c.claim_loc(claim.id, "targets"),
        )
    loaded = getattr(c, "loaded", None)
    base = Path(loaded.base_dir) if loaded is not None else Path.cwd()
    path = Path(claim.direction)
    path = path if path.is_absolute() else base / path
    where = c.claim_loc(claim.id, "direction")
    try:
        stored = load(path, width=_width(targets[0], c.shape), what=f"'{targets[0].text}' of this model")
    except CircuitSpecError as exc:
        raise c.fail(f"direction '{claim.direction}': {exc.message}", where) from None
    if stored.provenance.kind != "direction":
        raise c.fail(
            f"direction '{claim.direction}' holds a {stored.provenance.kind}; steering adds one direction",
            where,
        )
    model = model_label(c.spec.model)
    if stored.provenance.model != model:
        raise c.fail(
            f"direction '{claim.direction}' was read from model '{stored.provenance.model}', "
            f"not this hypothesis' '{model}'",
            where,
        )
    claim._direction_path = str(path.resolve())
