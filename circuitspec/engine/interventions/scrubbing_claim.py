"""The ``causal_scrubbing`` claim: the kernel's entry point in the one measurement contract.

The kernel (``scrubbing.py``) draws its resampled inputs with ``ctx.seed``, so ``verify --seed``
reaches it; cost comes from the shared pass counter like every other kind's.
"""

from __future__ import annotations

from typing import Any

from circuitspec.engine.context import RunContext
from circuitspec.measurement import Measurement

from .measuring import MeasurementBuilder
from .path_patching_claim import adopt

__all__ = ["measure"]


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    from .scrubbing import measure_causal_scrubbing

    b = MeasurementBuilder(ctx, claim, seed)
    ctx.seed = seed
    return adopt(b, measure_causal_scrubbing(ctx, claim, graph))
