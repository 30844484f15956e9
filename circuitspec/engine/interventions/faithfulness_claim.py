"""The ``faithfulness`` claim: recovery of the metric with everything outside the circuit ablated."""

from __future__ import annotations

from typing import Any

from circuitspec.engine.context import RunContext
from circuitspec.measurement import Measurement

from .faithfulness import faithfulness
from .measuring import MeasurementBuilder, claim_sites, fill_random_baseline

__all__ = ["measure"]


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """``corrupt`` is the fully ablated run, ``intervened`` the circuit alone, ``value`` the recovery."""
    b = MeasurementBuilder(ctx, claim, seed)
    result = faithfulness(ctx, claim_sites(ctx, graph, claim), claim.method, seed=seed)
    b.arrays(value=result.recovery, clean=result.clean, corrupt=result.baseline, intervened=result.circuit)
    fill_random_baseline(b, graph, claim, seed, method=claim.method)
    return b.build()
