"""`circuitspec regress` and `circuitspec baseline`: verify one hypothesis on several checkpoints.

The commands above the pipeline; the comparison they report (diffs, the claims × checkpoints
matrix) is :mod:`circuitspec.regress`, which sits below it. Each checkpoint gets a full verification
and its own report under ``reports/<name>/checkpoint-<X>/``; the model is freed before the next one
loads. The matrix of claims × checkpoints goes to ``reports/<name>/regression.{json,md,html}``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitspec import pipeline
from circuitspec.errors import CircuitSpecError
from circuitspec.graph.checkpoint_checks import check_checkpoint
from circuitspec.regress.matrix import (
    MATRIX_FILES,
    CheckpointRun,
    RegressionMatrix,
    build_matrix,
    print_matrix_table,
    write_matrix,
)
from circuitspec.reports.atomic import ReportSet
from circuitspec.reports.table import make_console
from circuitspec.spec.loader import load_hypothesis
from circuitspec.spec.names import checkpoint_name

__all__ = [
    "RegressResult",
    "baseline",
    "parse_checkpoints",
    "plan_checkpoints",
    "regress",
    "write_checkpoint_matrix",
]


@dataclass
class RegressResult:
    matrix: RegressionMatrix
    paths: dict[str, Path]  # regression.{json,md,html}
    exit_code: int  # the worst of verify's exit codes over the checkpoints (2 > 1 > 0)


def parse_checkpoints(text: str | Sequence[int | str] | None) -> list[int | str]:
    """``"0,500,final"`` → ``[0, 500, 'final']`` (ASCII-digit names become training steps).

    Each name must be :data:`~circuitspec.spec.names.CHECKPOINT_HELP` (it becomes a folder name);
    empty items are skipped, but a list with none left (``",,,"``) is an error, not "all of them".
    """
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    parsed: list[int | str] = []
    for item in items:
        name = item.strip() if isinstance(item, str) else item
        if name == "":
            continue
        try:
            parsed.append(checkpoint_name(name))
        except ValueError as exc:
            raise CircuitSpecError(f"--checkpoints: {exc}") from None
    if not parsed:
        raise CircuitSpecError(f"--checkpoints {text!r} names no checkpoint (write e.g. 0,100,final)")
    return list(dict.fromkeys(parsed))


def _bundled_checkpoints(bundled: str | None) -> list[int | str]:
    """Every checkpoint a bundled model ships with (known without loading it)."""
    if not bundled:
        return []
    from circuitspec.zoo.catalog import BUNDLED  # torch-free

    model = BUNDLED.get(bundled)
    return list(model.checkpoints) if model is not None else []


def _write_checkpoint_report(result: Any, prepared: ReportSet) -> dict[str, Path]:
    """One checkpoint's report set, into the folder prepared (and locked) before the runs."""
    from circuitspec.reports import build_report_input, write_reports

    return write_reports(build_report_input(result), prepared.out, prepared=prepared)


def plan_checkpoints(
    file: str | Path, checkpoints: str | Sequence[int | str] | None, out: str | Path | None
) -> tuple[Path, Any, list, Path, dict]:
    """``regress``'s plan, before any model loads (serial or on Ray): the file, its spec, the checkpoints
    (each checked), the matrix folder and each checkpoint's report folder."""
    path = Path(file)
    if not path.is_file():
        raise CircuitSpecError(f"no such hypothesis file (looked at {path.resolve()})", file=str(file))
    spec = load_hypothesis(path).spec
    wanted = _wanted_checkpoints(path, spec, checkpoints)
    out_dir = Path(out) if out else pipeline.default_report_dir(path, spec.name, None)
    report_dirs = {
        c: out_dir / f"checkpoint-{c}" if out else pipeline.default_report_dir(path, spec.name, c)
        for c in wanted
    }
    return path, spec, wanted, out_dir, report_dirs


def _wanted_checkpoints(path: Path, spec: Any, checkpoints: str | Sequence[int | str] | None) -> list:
    """The checkpoints to run, every one checked against the model before the first runs."""
    wanted = (
        parse_checkpoints(checkpoints) or list(spec.checkpoints) or _bundled_checkpoints(spec.model.bundled)
    )
    if not wanted:
        raise CircuitSpecError(
            "no checkpoints to compare: pass --checkpoints A,B,C or list 'checkpoints:' in the YAML",
            file=str(path),
        )
    return [check_checkpoint(spec.model, checkpoint) for checkpoint in wanted]


def regress(
    file: str | Path,
    checkpoints: str | Sequence[int | str] | None = None,
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    allow_inconclusive: bool = False,
    allow_errors: bool = False,
    progress: bool = True,
    console: Any = None,
    run: Callable[..., Any] | None = None,
) -> RegressResult:
    """Verify ``file`` on every checkpoint: the argument, else the YAML's ``checkpoints:``, else
    every checkpoint of the bundled model it names.

    Every checkpoint and every report folder is checked (and locked) before the first model loads.
    ``run`` replaces :func:`circuitspec.pipeline.run_verification` (tests). Returns the matrix,
    the written paths, and the worst exit code ``verify`` would give over the checkpoints (a fail
    at an early step is not hidden by a pass at the last; ``allow_errors``: an unmeasured claim does not
    make it 2).
    """
    from circuitspec.reports import report_set

    console = console or make_console()
    path, spec, wanted, out_dir, report_dirs = plan_checkpoints(file, checkpoints, out)
    run = run or pipeline.run_verification  # looked up now, so tests may monkeypatch the pipeline
    runs: list[CheckpointRun] = []
    worst_code = 0
    with contextlib.ExitStack() as stack:
        prepared = {c: stack.enter_context(report_set(folder)) for c, folder in report_dirs.items()}
        matrix_set = stack.enter_context(ReportSet(out_dir, list(MATRIX_FILES.values())))
        for number, checkpoint in enumerate(wanted, 1):
            console.print(f"checkpoint {checkpoint} ({number}/{len(wanted)})", markup=False)
            result = run(path, checkpoint=checkpoint, seed=seed, progress=progress)
            _write_checkpoint_report(result, prepared[checkpoint])
            runs.append(CheckpointRun(checkpoint, list(result.outcomes), report_dirs[checkpoint].as_posix()))
            code = pipeline.exit_code(result.outcomes, allow_inconclusive, allow_errors)
            worst_code = max(worst_code, code)
            del result  # the model went out of scope inside the run; drop measurements too
            pipeline.free_model_memory()
        matrix, paths = write_checkpoint_matrix(spec.name, path, runs, out_dir, matrix_set)
    print_matrix_table(matrix, console)
    console.print(f"matrix: {paths['html']}", markup=False)
    return RegressResult(matrix, paths, worst_code)


def write_checkpoint_matrix(
    name: str, path: Path, runs: list[CheckpointRun], out_dir: Path, prepared: Any
) -> tuple[RegressionMatrix, dict[str, Path]]:
    """Build the claims × checkpoints matrix, its links relative to ``out_dir``, and publish it into the
    prepared report set (serial and Ray regress alike)."""
    matrix = build_matrix(name, path.as_posix(), runs)
    for run_ in runs:  # links inside the matrix pages are relative to them
        if run_.report_dir:
            matrix.report_dirs[str(run_.checkpoint)] = _relative(Path(run_.report_dir), out_dir)
    return matrix, write_matrix(matrix, out_dir, prepared=prepared)


def _relative(target: Path, start: Path) -> str:
    try:
        return target.resolve().relative_to(start.resolve()).as_posix()
    except ValueError:
        return target.as_posix()


def baseline(
    file: str | Path,
    out: str | Path | None = None,
    checkpoint: int | str | None = None,
    *,
    seed: int | None = None,
    progress: bool = True,
    console: Any = None,
    run: Callable[..., Any] | None = None,
) -> Path:
    """Verify ``file`` and keep its report.json as the baseline (default ``reports/<name>/baseline.json``).

    The report folder and the baseline path are checked before the model runs.
    """
    from circuitspec.reports import (
        atomic_write_bytes,
        build_report_input,
        check_output_file,
        report_set,
        write_reports,
    )

    console = console or make_console()
    path = Path(file)
    if not path.is_file():
        raise CircuitSpecError(f"no such hypothesis file (looked at {path.resolve()})", file=str(file))
    name = load_hypothesis(path).spec.name
    checkpoint = check_checkpoint(load_hypothesis(path).spec.model, checkpoint)
    report_dir = pipeline.default_report_dir(path, name, checkpoint)
    target = check_output_file(
        Path(out) if out else pipeline.default_report_dir(path, name, None) / "baseline.json", "the baseline"
    )
    run = run or pipeline.run_verification
    with report_set(report_dir) as prepared:
        result = run(path, checkpoint=checkpoint, seed=seed, progress=progress)
        written = write_reports(build_report_input(result), report_dir, prepared=prepared)
    atomic_write_bytes(target, Path(written["json"]).read_bytes())
    verdicts = [o.verdict for o in result.outcomes]
    console.print(
        f"baseline: {target} ({len(verdicts)} claims: {verdicts.count('pass')} pass, "
        f"{verdicts.count('inconclusive')} inconclusive, {verdicts.count('fail')} fail)",
        markup=False,
    )
    return target
