"""The ``path_patching`` claim kind: a claim's paths patched with :mod:`circuitspec.engine.paths`.

One chain (any length) is patched hop by hop; several single-edge chains are patched jointly (each
receiver gets the sum of its own senders' deltas). ``value`` = patched − base metric. With ``alpha``
(soft path patching) the senders send ``alpha ×`` their own activation instead of the other run's.
The plain-hook IOI reference the tests compare against lives in ``tests/references/path_patching.py``.
"""

from __future__ import annotations

from typing import Any

from circuitspec.measurement import Measurement

from ..context import RunContext
from ..paths import Pair, PathJob, job_for_chains, path_patch_edges, path_patch_jobs
from .measuring import MeasurementBuilder

__all__ = ["Pair", "PathJob", "measure", "path_patch_edges", "path_patch_jobs"]


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """A ``path_patching`` claim: per-prompt patched, clean and corrupted metrics (no resampling:
    ``seed`` is only recorded)."""
    job = job_for_chains(claim.id, graph.chains(claim.id))
    b = MeasurementBuilder(ctx, claim, seed)
    soft = getattr(claim, "alpha", None)  # soft path patching: the senders × alpha
    patched, base, source = path_patch_jobs(
        ctx, [job], mlps=claim.mlps, direction=claim.direction, alpha=soft
    )
    clean, corrupt = (base, source) if claim.direction == "noising" else (source, base)
    return b.arrays(value=patched[0] - base, clean=clean, corrupt=corrupt, intervened=patched[0]).build()
