"""The ``activation_patching`` claim: metric with the targets patched from the other run − its base."""

from __future__ import annotations

from typing import Any

from circuitspec.engine.context import RunContext
from circuitspec.measurement import Measurement

from .activation_patching import activation_patch
from .measuring import MeasurementBuilder, claim_sites, clean_corrupt, fill_random_baseline, to_numpy

__all__ = ["measure"]


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """Denoising patches clean values into the corrupted run (base: corrupt); noising the reverse."""
    b = MeasurementBuilder(ctx, claim, seed)
    intervened = to_numpy(activation_patch(ctx, claim_sites(ctx, graph, claim), claim.direction))
    clean, corrupt = clean_corrupt(ctx)
    base = corrupt if claim.direction == "denoising" else clean
    b.arrays(value=intervened - base, clean=clean, corrupt=corrupt, intervened=intervened)
    fill_random_baseline(b, graph, claim, seed, direction=claim.direction)
    return b.build()
