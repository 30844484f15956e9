"""The ``steering`` claim: add ``α·e`` at one node and role over the claim's α, against random directions.

``e`` is the claim's direction file (``circuitspec directions``), added as its raw mean difference
(unit × norm). :func:`circuitspec.engine.steering.steering_sweep` runs the α sweep and, per seed, a
random direction of the same norm at the same α. One sweep point per α (``value``: steered − clean
metric per prompt); the top-level arrays and the random-direction control (``random_baseline``: each
random direction's mean change) are at the last α listed, the point the verdict reads, so the
percentile-vs-random statistics and the report's histogram of random baselines apply unchanged.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from circuitspec.directions.store import load
from circuitspec.engine.context import RunContext
from circuitspec.engine.steering import steering_sweep
from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement

from .measuring import MeasurementBuilder

__all__ = ["control_seeds", "measure", "prompt_percentiles"]


def control_seeds(seed: int, n: int) -> list[int]:
    """``n`` seeds for the random directions, derived from the run's seed (``numpy.random.SeedSequence``):
    the same run seed always draws the same control."""
    return [int(s) for s in np.random.SeedSequence(int(seed)).generate_state(n)] if n else []


def prompt_percentiles(value: np.ndarray, random: np.ndarray) -> dict[str, np.ndarray]:
    """Per prompt, the share of random directions whose change is below the direction's (ties count
    half): ``{"percentile": [n]}`` in 0..1, or nothing without random directions (``random`` ``[seeds, n]``).

    Hand-written rather than ``scipy.stats.percentileofscore`` per prompt: one vectorized comparison.
    """
    if random.shape[0] == 0:
        return {}
    below = (random < value).mean(axis=0) + 0.5 * (random == value).mean(axis=0)
    return {"percentile": below}


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """The α sweep at the claim's one target, with ``random_directions`` random controls."""
    b = MeasurementBuilder(ctx, claim, seed)
    (node,) = graph.targets(claim.id)
    stored = load(claim.direction_path)
    if stored.provenance.kind != "direction":
        raise CircuitSpecError(
            f"claim '{claim.id}': '{claim.direction}' holds a {stored.provenance.kind}, not a direction"
        )
    vector = stored.direction().raw
    seeds = control_seeds(seed, claim.random_directions)
    grid = steering_sweep(ctx, {node.text: vector}, claim.alphas, seeds)
    steered = grid.measurement(claim.id, node.text, alpha=float(claim.alphas[-1]))
    for j, point in enumerate(steered.sweep):
        ranks = prompt_percentiles(point.arrays["value"], grid.random[0, :, j] - grid.clean)
        b.sweep("alpha", point.x, **point.arrays, **ranks)
    b.arrays(**b.measurement.sweep[-1].arrays)
    if claim.expectation.statistic == "percentile":  # the comparison is the statistic itself
        means = steered.random_baseline if steered.random_baseline is not None else np.zeros(0)
        b.note(random_direction_means=[float(x) for x in means])
    else:
        b.measurement.random_baseline = steered.random_baseline
    b.note(
        **steered.extra,
        direction=claim.direction,
        direction_sha256=stored.sha256,
        provenance=asdict(stored.provenance),
        random_directions=len(seeds),
    )
    return b.build()
