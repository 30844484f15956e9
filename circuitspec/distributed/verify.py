"""``circuitspec verify FILES... --ray [ADDRESS]``: each file a job, files sharing a model in one task.

Each file's reports go where ``verify`` puts them (``reports/<name>/``, or ``--out`` for one file),
checked and locked before Ray starts; files whose ``model:`` (and checkpoint, device, dtype) are the
same share one model load on one worker. The exit code is the worst ``verify`` would give over the
files; a file whose worker died twice is printed as error cells and gets no new report.
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

from .jobs import JobResult, error_outcomes
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
) -> int:
    """Verify every file as a Ray job and publish each file's reports; the worst exit code."""
    from circuitspec.reports import report_set

    import_ray()
    probe(address)
    console = console or make_console()
    paths = [Path(f) for f in files]
    for path in paths:
        if not path.is_file():
            raise CircuitSpecError(f"no such hypothesis file (looked at {path.resolve()})", file=str(path))
        if load_hypothesis(path).spec.models:  # before any cluster starts (plan_job says it again)
            message = "--ray runs single-model files; this one names several models (models:)"
            raise CircuitSpecError(message, file=str(path))
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
        gpus = cluster_gpus(ray)
        planned = [plan_job(i, str(files[i]), gpus=gpus, **options) for i in range(len(files))]
        groups = plan_groups(planned)
        console.print(f"{len(files)} files, {len(groups)} models, as Ray tasks", markup=False)
        results = run_groups(ray, groups, run, lambda r: _publish(r, prepared[r.index]))
    worst = 0
    for i, path in enumerate(paths):
        result = results[i]
        outcomes = result.outcomes if result.error is None else error_outcomes(planned[i].graph, result.error)
        console.print(f"{path}:", markup=False)
        report = folders[i] / "report.html" if result.error is None else None
        print_verdict_table(outcomes, console, report)
        worst = max(worst, pipeline.exit_code(outcomes, allow_inconclusive, allow_errors))
    return worst


def _publish(result: JobResult, prepared: Any) -> None:
    if result.error is None:
        prepared.publish(result.files)


def verify_command(files: Sequence[Path], ray: bool, ray_address: str | None, **options: Any) -> int:
    """``circuitspec verify FILES... --ray``: the options ``verify`` takes, those Ray runs cannot honour
    refused in one line (``--junit``, ``--baseline``: one report each, for one file)."""
    if not (ray or ray_address):
        raise CircuitSpecError(f"verify takes one file, or several with --ray ({len(files)} given)")
    for name in ("junit", "baseline"):
        if options.pop(name, None):
            raise CircuitSpecError(f"--{name} is not available with --ray: verify that file without --ray")
    return verify_on_ray(files, address=ray_address, **options)
