"""The ``ablation`` claim: metric with the targets ablated (zero / mean / resample / soft) − clean."""

from __future__ import annotations

from typing import Any

from circuitspec.engine.context import RunContext
from circuitspec.measurement import Measurement

from .ablation import ablate
from .measuring import MeasurementBuilder, claim_sites, clean_corrupt, fill_random_baseline, to_numpy

__all__ = ["measure"]


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    b = MeasurementBuilder(ctx, claim, seed)
    intervened = to_numpy(ablate(ctx, claim_sites(ctx, graph, claim), claim.method, claim.alpha, seed=seed))
    clean, corrupt = clean_corrupt(ctx)
    b.arrays(value=intervened - clean, clean=clean, corrupt=corrupt, intervened=intervened)
    fill_random_baseline(b, graph, claim, seed, method=claim.method, alpha=claim.alpha)
    return b.build()
