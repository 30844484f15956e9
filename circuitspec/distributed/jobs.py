"""Jobs for the Ray fan-out: one (hypothesis, checkpoint) verification each, grouped by model.

Neither Ray nor torch is imported here at import time. The driver builds :class:`Job` s (torch-free:
compiling a hypothesis reads only its YAML and the model's shape) and groups them by the model they
load (:func:`group_jobs`); a worker runs a whole group with :func:`run_group`, loading the model once
and running every job on it. A worker renders each job's reports itself (the rendering is a large
share of a run), so the driver only publishes the texts it gets back: the same bytes the serial
run writes, because the same functions render them from the same verification.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError
from circuitspec.stats.outcome import ClaimOutcome

__all__ = ["Job", "JobResult", "ModelGroup", "error_outcomes", "group_jobs", "render_reports", "run_group"]


@dataclass(frozen=True)
class Job:
    """One verification: the file as named on the command line (reports record that string), the
    driver's folder (relative paths resolve there on the worker), and the run's options."""

    index: int
    path: str
    cwd: str
    checkpoint: int | str | None = None
    seed: int | None = None
    split: str | None = None
    model_overrides: dict[str, str] | None = None
    label: str = ""  # what a message calls it: "checkpoint step_00100", "hypotheses/x.yaml"
    shard: tuple[int, int] | None = None  # (i, k): measure prompt shard i of k only (distributed.shards)


@dataclass
class JobResult:
    """What a job sends back: its outcomes and its rendered report texts, or the one-line error that
    stopped it (``outcomes`` then empty)."""

    index: int
    outcomes: list[ClaimOutcome] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # report.json / .md / .html
    seconds: float = 0.0
    worker: str = ""  # host:pid that ran it
    error: str | None = None
    part: Any = None  # a prompt shard's unjudged Verification (no outcomes, no files): merged on the driver


@dataclass
class ModelGroup:
    """The jobs that load one model (same source, checkpoint, dictionaries, device and dtype), with
    the Ray resources one worker needs to hold it (:mod:`circuitspec.distributed.resources`)."""

    key: str
    jobs: list[Job]
    resources: dict[str, float]


def model_key(loaded: Any, checkpoint: int | str | None, overrides: dict[str, str] | None) -> str:
    """Jobs with equal keys load the same weights: the ``model:`` entry (with the run's overrides), the
    folder its relative paths start from, and the checkpoint."""
    model = loaded.spec.model.model_copy(update=overrides) if overrides else loaded.spec.model
    return json.dumps(
        {
            "model": model.model_dump(mode="json"),
            "base": str(Path(loaded.base_dir).resolve()),
            "at": checkpoint,
        },
        sort_keys=True,
        default=str,
    )


def group_jobs(jobs: Sequence[Job], keys: Sequence[str], resources: Sequence[dict]) -> list[ModelGroup]:
    """Jobs grouped by model key, groups in the order their first job appears."""
    groups: dict[str, ModelGroup] = {}
    for job, key, need in zip(jobs, keys, resources, strict=True):
        groups.setdefault(key, ModelGroup(key, [], dict(need))).jobs.append(job)
    return list(groups.values())


def error_outcomes(graph: Any, reason: str, seed: int = 0) -> list[ClaimOutcome]:
    """Every claim of ``graph`` as an **error** cell saying ``reason`` (a job that never came back);
    statistic and expectation text as the statistics layer writes them."""
    from circuitspec.measurement import Measurement
    from circuitspec.stats.evaluate import evaluate_claim

    outcomes = []
    for claim in graph.claims:
        outcome = evaluate_claim(
            Measurement(claim.id, claim.kind, 0, error=reason), claim.expectation, seed=seed
        )
        outcome.reason = reason
        outcomes.append(outcome)
    return outcomes


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, CircuitSpecError) else f"{type(exc).__name__}: {text}"


def _load_group_model(job: Job) -> Any:
    """The model every job of the group runs on, loaded as ``run_verification`` would load it."""
    from circuitspec import pipeline
    from circuitspec.graph.checkpoint_checks import check_checkpoint
    from circuitspec.spec.loader import load_hypothesis

    loaded = load_hypothesis(job.path)
    model_spec = loaded.spec.model
    if job.model_overrides:
        model_spec = model_spec.model_copy(update=job.model_overrides)
    checkpoint = job.checkpoint if job.checkpoint is not None else loaded.spec.model.checkpoint
    checkpoint = check_checkpoint(loaded.spec.model, checkpoint)
    return pipeline.load_hypothesis_model(model_spec, loaded.base_dir, checkpoint)


def _run_one(job: Job, run: Callable[..., Any], model: Any) -> JobResult:
    """One verification on the group's model, its reports rendered here (the versions recorded are
    this worker's); a prompt shard's unjudged Verification instead, for the driver to merge."""
    started = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    shard = {"shard": job.shard} if job.shard is not None else {}  # `run` stand-ins need not know it
    try:
        result = run(
            job.path,
            checkpoint=job.checkpoint,
            seed=job.seed,
            progress=False,
            loaded_model=model,
            split=job.split,
            model_overrides=job.model_overrides,
            **shard,
        )
        if job.shard is not None:
            return JobResult(job.index, seconds=time.perf_counter() - started, worker=worker, part=result)
        files = render_reports(result)
    except Exception as exc:  # one job's failure is its own error cell, never the group's
        return JobResult(
            job.index, seconds=time.perf_counter() - started, worker=worker, error=_one_line(exc)
        )
    return JobResult(job.index, list(result.outcomes), files, time.perf_counter() - started, worker)


def render_reports(result: Any) -> dict[str, str]:
    """A judged Verification's report texts by file name (report.json / .md / .html), recording the
    versions of the process that renders them."""
    from circuitspec import reports
    from circuitspec.reports.model import package_versions

    report_input = reports.build_report_input(result)
    report_input.packages = package_versions()
    return reports.render_reports(report_input)


def run_group(jobs: Sequence[Job], run: Callable[..., Any] | None = None) -> list[JobResult]:
    """Run every job of one model group on one model load (the worker side of a Ray task).

    ``run`` replaces :func:`circuitspec.pipeline.run_verification` (tests); it is called with
    ``loaded_model=``. A model that fails to load makes every job of the group an error.
    """
    from circuitspec import pipeline

    os.chdir(jobs[0].cwd)  # relative hypothesis, data and model paths, as on the driver
    run = run or pipeline.run_verification
    try:
        model = _load_group_model(jobs[0])
    except Exception as exc:
        reason = f"the model could not be loaded: {_one_line(exc)}"
        return [JobResult(job.index, error=reason) for job in jobs]
    try:
        return [_run_one(job, run, model) for job in jobs]
    finally:
        del model
        pipeline.free_model_memory()
