"""The ``attribution`` claim: direct logit attribution of the targets, per target and for every head.

The kernel (:func:`direct_logit_attribution`, :func:`component_attributions`) lives in
``logit_attribution.py``, so random baselines can call it without importing the claim.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from circuitspec.claims.hooks import dla_hooks
from circuitspec.engine.context import RunContext
from circuitspec.engine.sites import Site
from circuitspec.measurement import HeadGrid, Measurement, TargetValues

from .logit_attribution import component_attributions, direct_logit_attribution
from .measuring import MeasurementBuilder, claim_sites, fill_random_baseline, to_numpy

__all__ = ["component_attributions", "direct_logit_attribution", "dla_hooks", "head_grid", "measure"]


def head_grid(ctx: RunContext) -> HeadGrid:
    """Every head's mean DLA as a layer × head grid (the report's heatmap)."""
    table = component_attributions(ctx)
    arch = ctx.adapter.arch
    values = [
        [float(table[f"L{layer}H{head}"].mean()) for head in range(arch.n_heads)]
        for layer in range(arch.n_layers)
    ]
    return HeadGrid(values, title="mean direct logit attribution per head")


def _embedding_attribution(b: MeasurementBuilder, claim: Any, sites: list[Site]) -> None:
    """Encoders: direct effect of the targets on cos(embedding, reference) (``cosine``) or on the
    embedding's own direction (any other metric)."""
    from .embedding_attribution import direct_embedding_effect

    ctx = b.ctx
    clean = ctx.clean()[0]
    direction = ctx.reference() if claim.metric == "cosine" else clean
    b.arrays(value=direct_embedding_effect(ctx, sites, direction), clean=ctx.metric(clean, ctx.prompts))


def _circuit_arrays(ctx: RunContext, circuits: list[list[Site]]) -> list[dict[str, np.ndarray]]:
    """Per circuit: the summed direct logit attribution of its components (``value``)."""
    return [{"value": to_numpy(direct_logit_attribution(ctx, circuit))} for circuit in circuits]


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """An ``attribution`` claim: summed DLA of the targets, each target's own, every head's grid."""
    b = MeasurementBuilder(ctx, claim, seed)
    sites = claim_sites(ctx, graph, claim)
    if ctx.adapter.arch.encoder:
        _embedding_attribution(b, claim, sites)
        return b.build()
    features = [s for s in sites if s.node.is_feature]
    components = [s for s in sites if not s.node.is_feature]
    per_target = {s.node.text: direct_logit_attribution(ctx, [s]) for s in components}
    if features:
        from circuitspec.engine.feature_attribution import feature_logit_attribution

        per_target |= {s.node.text: feature_logit_attribution(ctx, [s]) for s in features}
    value = torch.stack(list(per_target.values())).sum(0)
    b.arrays(value=value, clean=ctx.metric(ctx.clean()[0], ctx.prompts))
    b.plot(head_grid(ctx))
    if len(per_target) > 1:
        b.plot(TargetValues({name: to_numpy(v) for name, v in per_target.items()}))
    fill_random_baseline(b, graph, claim, lambda circuits: _circuit_arrays(ctx, circuits))
    return b.build()
