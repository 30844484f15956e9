"""`circuitspec regress` and `circuitspec baseline`: verify one hypothesis on several checkpoints.

The commands above the pipeline; the comparison they report (diffs, the claims × checkpoints
matrix) is :mod:`circuitspec.regress`, which sits below it. Each checkpoint gets a full verification
and its own report under ``reports/<name>/checkpoint-<X>/``; the model is freed before the next one
loads. The matrix of claims × checkpoints goes to ``reports/<name>/regression.{json,md,html}``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitspec import pipeline
from circuitspec.errors import CircuitSpecError
from circuitspec.regress.matrix import (
    CheckpointRun,
    RegressionMatrix,
    build_matrix,
    print_matrix_table,
    write_matrix,
)
from circuitspec.reports.table import make_console
from circuitspec.spec.loader import load_hypothesis

__all__ = ["RegressResult", "baseline", "parse_checkpoints", "regress"]


@dataclass
class RegressResult:
    matrix: RegressionMatrix
    paths: dict[str, Path]  # regression.{json,md,html}
    exit_code: int  # verify's exit code on the last checkpoint listed


def parse_checkpoints(text: str | Sequence[int | str] | None) -> list[int | str]:
    """``"0,500,final"`` → ``[0, 500, 'final']`` (all-digit names become training steps)."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    parsed: list[int | str] = []
    for item in items:
        name = item.strip() if isinstance(item, str) else item
        if name == "":
            continue
        parsed.append(int(name) if isinstance(name, str) and name.isdigit() else name)
    return parsed


def _bundled_checkpoints(bundled: str | None) -> list[int | str]:
    """Every checkpoint a bundled model ships with (known without loading it)."""
    if not bundled:
        return []
    from circuitspec.zoo.catalog import BUNDLED  # torch-free

    model = BUNDLED.get(bundled)
    return list(model.checkpoints) if model is not None else []


def _write_checkpoint_report(result: Any, out_dir: Path) -> dict[str, Path]:
    from circuitspec.reports import build_report_input, write_reports

    return write_reports(build_report_input(result), out_dir)


def regress(
    file: str | Path,
    checkpoints: str | Sequence[int | str] | None = None,
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    allow_inconclusive: bool = False,
    progress: bool = True,
    console: Any = None,
    run: Callable[..., Any] | None = None,
) -> RegressResult:
    """Verify ``file`` on every checkpoint: the argument, else the YAML's ``checkpoints:``, else
    every checkpoint of the bundled model it names.

    ``run`` replaces :func:`circuitspec.pipeline.run_verification` (tests). Returns the matrix,
    the written paths, and the exit code ``verify`` would give on the last checkpoint.
    """
    console = console or make_console()
    path = Path(file)
    if not path.is_file():
        raise CircuitSpecError(f"no such hypothesis file (looked at {path.resolve()})", file=str(file))
    spec = load_hypothesis(path).spec
    wanted = (
        parse_checkpoints(checkpoints) or list(spec.checkpoints) or _bundled_checkpoints(spec.model.bundled)
    )
    if not wanted:
        raise CircuitSpecError(
            "no checkpoints to compare: pass --checkpoints A,B,C or list 'checkpoints:' in the YAML",
            file=str(file),
        )
    run = run or pipeline.run_verification  # looked up now, so tests may monkeypatch the pipeline
    runs: list[CheckpointRun] = []
    last_code = 0
    for checkpoint in wanted:
        console.print(f"checkpoint {checkpoint}", markup=False)
        result = run(path, checkpoint=checkpoint, seed=seed, progress=progress)
        report_dir = (
            Path(out) / f"checkpoint-{checkpoint}"
            if out
            else pipeline.default_report_dir(path, spec.name, checkpoint)
        )
        _write_checkpoint_report(result, report_dir)
        runs.append(CheckpointRun(checkpoint, list(result.outcomes), report_dir.as_posix()))
        last_code = pipeline.exit_code(result.outcomes, allow_inconclusive)
        del result  # the model went out of scope inside the run; drop measurements too
        pipeline.free_model_memory()

    matrix = build_matrix(spec.name, path.as_posix(), runs)
    out_dir = Path(out) if out else pipeline.default_report_dir(path, spec.name, None)
    for run_ in runs:  # links inside the matrix pages are relative to them
        if run_.report_dir:
            matrix.report_dirs[str(run_.checkpoint)] = _relative(Path(run_.report_dir), out_dir)
    paths = write_matrix(matrix, out_dir)
    print_matrix_table(matrix, console)
    console.print(f"matrix: {paths['html']}", markup=False)
    return RegressResult(matrix, paths, last_code)


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
    """Verify ``file`` and keep its report.json as the baseline (default ``reports/<name>/baseline.json``)."""
    console = console or make_console()
    path = Path(file)
    if not path.is_file():
        raise CircuitSpecError(f"no such hypothesis file (looked at {path.resolve()})", file=str(file))
    run = run or pipeline.run_verification
    result = run(path, checkpoint=checkpoint, seed=seed, progress=progress)
    name = result.hypothesis.spec.name
    report_dir = pipeline.default_report_dir(path, name, checkpoint)
    written = _write_checkpoint_report(result, report_dir)
    target = Path(out) if out else pipeline.default_report_dir(path, name, None) / "baseline.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    if Path(written["json"]).resolve() != target.resolve():
        shutil.copyfile(written["json"], target)
    verdicts = [o.verdict for o in result.outcomes]
    console.print(
        f"baseline: {target} ({len(verdicts)} claims: {verdicts.count('pass')} pass, "
        f"{verdicts.count('inconclusive')} inconclusive, {verdicts.count('fail')} fail)",
        markup=False,
    )
    return target
