"""The driver's side before anything runs: each job's hypothesis compiled (torch-free), its model key
and resources, so bad input is one line before Ray starts and every group declares what it needs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError

from .jobs import Job, ModelGroup, group_jobs, model_key
from .resources import group_resources

__all__ = ["Planned", "plan_groups", "plan_job"]


@dataclass
class Planned:
    """A job with what the driver knows of it: its compiled graph (claims for error cells), model key
    and resources."""

    job: Job
    graph: Any
    key: str
    resources: dict[str, float]


def plan_job(
    index: int,
    path: str | Path,
    *,
    checkpoint: int | str | None = None,
    seed: int | None = None,
    split: str | None = None,
    model_overrides: dict[str, str] | None = None,
    label: str = "",
    gpus: float = 0.0,
    shard: tuple[int, int] | None = None,
) -> Planned:
    """Compile ``path`` against its model's shape and make its job; the checkpoint is checked (and
    normalised) as ``run_verification`` will check it. Prompt shard ``(i, k)`` of a file is a job of
    its own, grouped only with shard ``i`` of other files, so a file's shards run as separate tasks."""
    from circuitspec.graph.checkpoint_checks import check_checkpoint
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis

    loaded = load_hypothesis(path)
    if getattr(loaded.spec, "models", None):
        raise CircuitSpecError(
            "--ray runs single-model files; this one names several models (models:)", file=str(path)
        )
    graph = compile_hypothesis(loaded)
    at = check_checkpoint(
        loaded.spec.model, checkpoint if checkpoint is not None else loaded.spec.model.checkpoint
    )
    model = loaded.spec.model.model_copy(update=model_overrides) if model_overrides else loaded.spec.model
    job = Job(
        index, str(path), os.getcwd(), checkpoint, seed, split, model_overrides, label or str(path), shard
    )
    key = model_key(loaded, at, model_overrides) + ("" if shard is None else f" shard {shard[0]}")
    return Planned(job, graph, key, group_resources(graph.shape, model, gpus))


def plan_groups(planned: Sequence[Planned]) -> list[ModelGroup]:
    """The planned jobs grouped by the model they load."""
    return group_jobs([p.job for p in planned], [p.key for p in planned], [p.resources for p in planned])
