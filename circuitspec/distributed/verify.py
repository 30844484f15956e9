"""``circuitspec verify FILES... --ray [ADDRESS]``: each file a job, files sharing a model in one task.

Each file's reports go where ``verify`` puts them (``reports/<name>/``, or ``--out`` for one file),
checked and locked before Ray starts; files whose ``model:`` (and checkpoint, device, dtype) are the
same share one model load on one worker. The exit code is the worst ``verify`` would give over the
files; a file whose worker died twice is printed as error cells and gets no new report.

With ``--shard-prompts K`` each file is K jobs, one per prompt shard (``engine.shards``), and shard
``s`` of every file sharing a model goes in one task, so a file's shards run on K workers at once;
the driver merges each file's shards before statistics (``distributed.shards``), judges, renders and
publishes its reports. A shard that failed (its worker dead on both tries, or its run raised) makes
the file error cells, never a report from part of the prompts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from circuitspec import pipeline
from circuitspec.errors import CircuitSpecError
from circuitspec.reports.table import make_console, print_verdict_table
from circuitspec.spec.loader import load_hypothesis

from .jobs import JobResult, error_outcomes, render_reports
from .planning import plan_groups, plan_job
from .ray_backend import cluster_gpus, connect, import_ray, probe, run_groups

__all__ = ["verify_on_ray"]


def _report_dirs(files: Sequence[Path], out: str | Path | None) -> list[Path]:
    """Each file's report folder; two files writing one folder is refused (one would hide the other)."""
    if out is not None and len(files) > 1:
        raise CircuitSpecError(
            "--out names one report folder: with several files each goes to reports/<name>/"
        )
    folders = [
        Path(out) if out else pipeline.default_report_dir(f, load_hypothesis(f).spec.name, None)
        for f in files
    ]
    seen: dict[Path, Path] = {}
    for file, folder in zip(files, folders, strict=True):
        other = seen.setdefault(folder.resolve(), file)
        if other != file:
            raise CircuitSpecError(f"{other} and {file} both write {folder}/ (same name:); rename one")
    return folders


def verify_on_ray(
    files: Sequence[str | Path],
    *,
    address: str | None = None,
    out: str | Path | None = None,
    checkpoint: int | str | None = None,
    seed: int | None = None,
    split: str | None = None,
    model_overrides: dict[str, str] | None = None,
    allow_inconclusive: bool = False,
    allow_errors: bool = False,
    console: Any = None,
    run: Callable[..., Any] | None = None,
    shard_prompts: int | None = None,
) -> int:
    """Verify every file as a Ray job and publish each file's reports; the worst exit code.
    ``shard_prompts=K``: each file as K prompt-shard jobs, merged and judged here before its reports
    are written (:mod:`circuitspec.distributed.shards`); a file whose shard failed is error cells."""
    from circuitspec.reports import report_set

    import_ray()
    probe(address)
    shards = _check_shards(shard_prompts)
    console = console or make_console()
    paths = _checked_paths(files)
    folders = _report_dirs(paths, out)
    with contextlib.ExitStack() as stack:
        prepared = [stack.enter_context(report_set(folder)) for folder in folders]
        ray = stack.enter_context(connect(address))
        options: dict[str, Any] = {
            "checkpoint": checkpoint,
            "seed": seed,
            "split": split,
            "model_overrides": model_overrides,
        }
        sharding = shards if shard_prompts else None
        planned = _plan(files, sharding, cluster_gpus(ray), options)
        groups = plan_groups(planned)
        words = f", {shards} prompt shards each" if shard_prompts else ""
        console.print(f"{len(files)} files{words}, {len(groups)} Ray tasks", markup=False)
        landed = None if shard_prompts else (lambda r: _publish(r, prepared[r.index]))
        results = run_groups(ray, groups, run, landed)
        if shard_prompts:
            results = merge_file_shards(results, len(files), shards, split)
            for i, result in results.items():
                _publish(result, prepared[i])
        planned = planned[::shards]
    worst = 0
    for i, path in enumerate(paths):
        result = results[i]
        outcomes = result.outcomes if result.error is None else error_outcomes(planned[i].graph, result.error)
        console.print(f"{path}:", markup=False)
        report = folders[i] / "report.html" if result.error is None else None
        print_verdict_table(outcomes, console, report)
        worst = max(worst, pipeline.exit_code(outcomes, allow_inconclusive, allow_errors))
    return worst


def merge_file_shards(
    results: dict[int, JobResult], n_files: int, shards: int, split: str | None
) -> dict[int, JobResult]:
    """Per file, its shards' results (job ``file * shards + s``) merged, judged and rendered into one
    result; a shard that failed (on both tries, for a dead worker) makes the whole file that error."""
    from .shards import merge_verifications

    merged: dict[int, JobResult] = {}
    for i in range(n_files):
        parts = [results[i * shards + s] for s in range(shards)]
        seconds = max(p.seconds for p in parts)
        failed = next((p for p in parts if p.error is not None), None)
        if failed is not None:
            merged[i] = JobResult(
                i, seconds=seconds, error=f"prompt shard {failed.index % shards}: {failed.error}"
            )
            continue
        try:
            result = merge_verifications([p.part for p in parts], split)
            merged[i] = JobResult(i, list(result.outcomes), render_reports(result), seconds, "driver")
        except Exception as exc:  # a merge that cannot be made is this file's error, never a partial report
            merged[i] = JobResult(i, seconds=seconds, error=" ".join(str(exc).split()) or type(exc).__name__)
    return merged


def _publish(result: JobResult, prepared: Any) -> None:
    if result.error is None:
        prepared.publish(result.files)


def _checked_paths(files: Sequence[str | Path]) -> list[Path]:
    """The files as paths, each an existing single-model hypothesis (one line before any cluster starts)."""
    paths = [Path(f) for f in files]
    for path in paths:
        if not path.is_file():
            raise CircuitSpecError(f"no such hypothesis file (looked at {path.resolve()})", file=str(path))
        if load_hypothesis(path).spec.models:  # plan_job says it again
            message = "--ray runs single-model files; this one names several models (models:)"
            raise CircuitSpecError(message, file=str(path))
    return paths


def _plan(files: Sequence[str | Path], shards: int | None, gpus: float, options: dict[str, Any]) -> list[Any]:
    """Each file's job, or with ``shards`` its shard jobs (file i's shard s is job ``i * shards + s``)."""
    if shards is None:
        return [plan_job(i, str(f), gpus=gpus, **options) for i, f in enumerate(files)]
    return [
        plan_job(i * shards + s, str(f), gpus=gpus, shard=(s, shards), **options)
        for i, f in enumerate(files)
        for s in range(shards)
    ]


def _check_shards(shard_prompts: int | None) -> int:
    """How many shard jobs each file is (1 without ``--shard-prompts``); a one-line error below 1."""
    if shard_prompts is not None and shard_prompts < 1:
        raise CircuitSpecError(f"--shard-prompts {shard_prompts}: give a number of shards, 1 or more")
    return shard_prompts or 1


def verify_command(files: Sequence[Path], ray: bool, ray_address: str | None, **options: Any) -> int:
    """``circuitspec verify FILES... --ray``: the options ``verify`` takes, those Ray runs cannot honour
    refused in one line (``--junit``, ``--baseline``: one report each, for one file)."""
    if not (ray or ray_address):
        raise CircuitSpecError(f"verify takes one file, or several with --ray ({len(files)} given)")
    for name in ("junit", "baseline"):
        if options.pop(name, None):
            raise CircuitSpecError(f"--{name} is not available with --ray: verify that file without --ray")
    return verify_on_ray(files, address=ray_address, **options)
