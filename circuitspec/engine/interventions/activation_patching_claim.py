"""The ``activation_patching`` claim: metric with the targets patched from the other run − its base."""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitspec.engine.context import RunContext
from circuitspec.engine.sites import Site
from circuitspec.measurement import Measurement

from .activation_patching import patch_circuits
from .measuring import MeasurementBuilder, claim_sites, clean_corrupt, fill_random_baseline, to_numpy

__all__ = ["circuit_arrays", "measure"]


def circuit_arrays(ctx: RunContext, circuits: list[list[Site]], claim: Any) -> list[dict[str, np.ndarray]]:
    """Per circuit: denoising patches clean values into the corrupted run (base: corrupt), noising the
    reverse (base: clean); ``value`` = patched − base."""
    patched = to_numpy(patch_circuits(ctx, circuits, claim.direction))
    clean, corrupt = clean_corrupt(ctx)
    base = corrupt if claim.direction == "denoising" else clean
    return [{"value": x - base, "clean": clean, "corrupt": corrupt, "intervened": x} for x in patched]


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    b = MeasurementBuilder(ctx, claim, seed)
    b.arrays(**circuit_arrays(ctx, [claim_sites(ctx, graph, claim)], claim)[0])
    fill_random_baseline(b, graph, claim, lambda circuits: circuit_arrays(ctx, circuits, claim))
    return b.build()
