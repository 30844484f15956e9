"""The ``path_patching`` claim: the kernel's entry point, wrapped in the one measurement contract.

The kernel (``path_patching.py``) reads the seed from ``ctx.seed``; its arrays and notes are copied
into a measurement built like every other kind's, so cost comes from the shared pass counter.
"""

from __future__ import annotations

from typing import Any

from circuitspec.engine.context import RunContext
from circuitspec.measurement import Measurement

from .measuring import MeasurementBuilder

__all__ = ["adopt", "measure"]


def adopt(b: MeasurementBuilder, kernel: Measurement) -> Measurement:
    """Copy a kernel-built measurement's results into the builder's (cost and seed are the builder's)."""
    b.arrays(**kernel.arrays)
    for point in kernel.sweep:
        b.sweep(kernel.sweep_variable or "point", point.x, **point.arrays)
    for payload in kernel.plots:
        b.plot(payload)
    b.note(**kernel.extra)
    return b.build()


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    from .path_patching import measure_path_patching

    b = MeasurementBuilder(ctx, claim, seed)
    ctx.seed = seed
    return adopt(b, measure_path_patching(ctx, claim, graph))
