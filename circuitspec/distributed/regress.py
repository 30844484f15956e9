"""``circuitspec regress FILE --ray [ADDRESS]``: every checkpoint a Ray task, one matrix at the end.

The same checks, folders, seeds and report texts as :func:`circuitspec.checkpoints.regress` (whose
helpers it reuses): every checkpoint and report folder is checked and locked before Ray starts; each
checkpoint's verification runs and renders its reports on a worker; the driver publishes each set as
it lands and writes the claims × checkpoints matrix in the checkpoints' order. A checkpoint whose
worker died twice is a column of **error** cells (no report folder), and the others still land.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from circuitspec import pipeline
from circuitspec.checkpoints import RegressResult, plan_checkpoints, write_checkpoint_matrix
from circuitspec.regress.matrix import (
    MATRIX_FILES,
    CheckpointRun,
    print_matrix_table,
)
from circuitspec.reports.atomic import ReportSet
from circuitspec.reports.table import make_console

from .jobs import JobResult, error_outcomes
from .planning import plan_groups, plan_job
from .ray_backend import cluster_gpus, connect, import_ray, probe, run_groups

__all__ = ["regress_on_ray"]


def regress_on_ray(
    file: str | Path,
    checkpoints: str | Sequence[int | str] | None = None,
    *,
    address: str | None = None,
    out: str | Path | None = None,
    seed: int | None = None,
    allow_inconclusive: bool = False,
    allow_errors: bool = False,
    console: Any = None,
    run: Callable[..., Any] | None = None,
) -> RegressResult:
    """:func:`circuitspec.checkpoints.regress` with each checkpoint a Ray task (``address``: a
    cluster to join; None starts a local one). ``run`` replaces ``run_verification`` on the workers
    (tests; it must be picklable)."""
    from circuitspec.reports import report_set

    import_ray()  # the missing extra, or an address that does not answer: one line before anything else
    probe(address)
    console = console or make_console()
    path, spec, wanted, out_dir, report_dirs = plan_checkpoints(file, checkpoints, out)
    with contextlib.ExitStack() as stack:
        prepared = {c: stack.enter_context(report_set(folder)) for c, folder in report_dirs.items()}
        matrix_set = stack.enter_context(ReportSet(out_dir, list(MATRIX_FILES.values())))
        ray = stack.enter_context(connect(address))
        gpus = cluster_gpus(ray)
        planned = [
            plan_job(i, file, checkpoint=c, seed=seed, label=f"checkpoint {c}", gpus=gpus)
            for i, c in enumerate(wanted)
        ]
        console.print(f"{len(wanted)} checkpoints as Ray tasks on {_cluster_words(ray)}", markup=False)

        def landed(result: JobResult) -> None:
            checkpoint = wanted[result.index]
            if result.error is None:
                prepared[checkpoint].publish(result.files)
            state = "done" if result.error is None else f"error: {result.error}"
            console.print(f"checkpoint {checkpoint} {state} ({result.seconds:.1f} s)", markup=False)

        results = run_groups(ray, plan_groups(planned), run, landed)
        runs, worst = _runs(wanted, planned, results, report_dirs, (allow_inconclusive, allow_errors))
        matrix, paths = write_checkpoint_matrix(spec.name, path, runs, out_dir, matrix_set)
    print_matrix_table(matrix, console)
    console.print(f"matrix: {paths['html']}", markup=False)
    return RegressResult(matrix, paths, worst)


def _runs(
    wanted: list[int | str],
    planned: list[Any],
    results: dict[int, JobResult],
    report_dirs: dict[Any, Path],
    allowed: tuple[bool, bool],
) -> tuple[list[CheckpointRun], int]:
    """The matrix's columns in the checkpoints' order (a dead job: error cells, no report folder) and
    the worst exit code ``verify`` would give over them (``allowed``: allow inconclusive, allow errors)."""
    runs, worst = [], 0
    for i, checkpoint in enumerate(wanted):
        result = results[i]
        if result.error is None:
            outcomes, folder = result.outcomes, report_dirs[checkpoint].as_posix()
        else:
            outcomes, folder = error_outcomes(planned[i].graph, result.error), None
        runs.append(CheckpointRun(checkpoint, list(outcomes), folder))
        worst = max(worst, pipeline.exit_code(outcomes, *allowed))
    return runs, worst


def _cluster_words(ray: Any) -> str:
    """``2 CPUs, 0 GPUs, 1 node``: what the connected cluster offers."""
    total = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return f"{total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs, {nodes} node{'s' * (nodes != 1)}"
