"""The ``faithfulness`` claim: recovery of the metric with everything outside the circuit ablated."""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitspec.engine.context import RunContext
from circuitspec.engine.sites import Site
from circuitspec.measurement import Measurement

from .faithfulness import circuits_only, fully_ablated
from .measuring import MeasurementBuilder, claim_sites, fill_random_baseline, to_numpy

__all__ = ["circuit_arrays", "measure"]


def circuit_arrays(
    ctx: RunContext, circuits: list[list[Site]], claim: Any, seed: int
) -> list[dict[str, np.ndarray]]:
    """Per circuit: ``corrupt`` is the fully ablated run (shared), ``intervened`` the circuit alone,
    ``value`` the per-prompt normalized recovery."""
    kept = to_numpy(circuits_only(ctx, circuits, claim.method, seed))
    clean = to_numpy(ctx.metric(ctx.clean()[0], ctx.prompts))
    ablated = to_numpy(fully_ablated(ctx, claim.method, seed))
    return [
        {"value": (x - ablated) / (clean - ablated), "clean": clean, "corrupt": ablated, "intervened": x}
        for x in kept
    ]


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    b = MeasurementBuilder(ctx, claim, seed)
    b.arrays(**circuit_arrays(ctx, [claim_sites(ctx, graph, claim)], claim, seed)[0])
    fill_random_baseline(b, graph, claim, lambda circuits: circuit_arrays(ctx, circuits, claim, seed))
    return b.build()
