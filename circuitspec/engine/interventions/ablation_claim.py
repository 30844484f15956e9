"""The ``ablation`` claim: metric with the targets ablated (zero / mean / resample / soft) − clean."""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitspec.engine.context import RunContext
from circuitspec.engine.reference_sets import reference_context
from circuitspec.engine.sites import Site
from circuitspec.measurement import Measurement

from .ablation import ablate_circuits
from .measuring import MeasurementBuilder, claim_sites, clean_corrupt, fill_random_baseline, to_numpy

__all__ = ["circuit_arrays", "measure"]


def circuit_arrays(
    ctx: RunContext, circuits: list[list[Site]], claim: Any, seed: int
) -> list[dict[str, np.ndarray]]:
    """What an ablation claim reports, for each circuit: ``value`` = ablated − clean."""
    reference = reference_context(ctx, claim)  # mean_from: the mean over separate reference prompts
    metric = ablate_circuits(ctx, circuits, claim.method, claim.alpha, seed=seed, reference=reference)
    ablated = to_numpy(metric)
    clean, corrupt = clean_corrupt(ctx)
    return [{"value": x - clean, "clean": clean, "corrupt": corrupt, "intervened": x} for x in ablated]


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    b = MeasurementBuilder(ctx, claim, seed)
    b.arrays(**circuit_arrays(ctx, [claim_sites(ctx, graph, claim)], claim, seed)[0])
    fill_random_baseline(b, graph, claim, lambda circuits: circuit_arrays(ctx, circuits, claim, seed))
    return b.build()
