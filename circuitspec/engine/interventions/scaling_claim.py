"""The ``scaling`` claim: a sweep over α of the metric with the targets scaled, minus clean."""

from __future__ import annotations

from typing import Any

from circuitspec.engine.context import RunContext
from circuitspec.measurement import Measurement

from .measuring import MeasurementBuilder, claim_sites, clean_corrupt, fill_random_baseline, to_numpy
from .scaling import scale_sweep

__all__ = ["measure"]


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """One point per α (top-level arrays: the last α listed); ``interaction`` = joint − each alone."""
    b = MeasurementBuilder(ctx, claim, seed)
    sites = claim_sites(ctx, graph, claim)
    signs = [float(claim.signs.get(s.node.text, claim.signs.get(s.node.component, 1.0))) for s in sites]
    key = f"scaling:{[s.node.text for s in sites]}:{list(claim.alphas)}:{signs}"
    grid = ctx.cached(key, lambda: to_numpy(scale_sweep(ctx, sites, claim.alphas, signs)))  # [alphas, n]
    clean = clean_corrupt(ctx)[0]
    alone = None
    if claim.interaction:
        alone = [
            to_numpy(scale_sweep(ctx, [s], claim.alphas, [sign])) - clean
            for s, sign in zip(sites, signs, strict=True)
        ]
    for a, alpha in enumerate(claim.alphas):
        arrays = {"value": grid[a] - clean, "clean": clean, "intervened": grid[a]}
        if alone is not None:
            arrays["interaction"] = arrays["value"] - sum(effect[a] for effect in alone)
        b.sweep("alpha", float(alpha), **arrays)
    b.arrays(**b.measurement.sweep[-1].arrays)
    fill_random_baseline(b, graph, claim, runner=None)  # scaling has no random baseline: a note says so
    return b.build()
