"""CLI commands for regression testing: ``baseline``, ``diff`` and ``regress``.

The plain functions do the work and return exit codes; :func:`register` adds them to the typer
app (``circuitspec.cli.main`` calls it). Nothing here imports torch at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from circuitspec.errors import CircuitSpecError

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["baseline_command", "diff_command", "register", "regress_command"]

RAY_HELP = "run each checkpoint as a Ray task (a local Ray cluster on this machine's cores; circuitspec[ray])"
RAY_ADDRESS_HELP = "join this Ray cluster instead (auto, HOST:PORT, ray://HOST:PORT); implies --ray"


def _console() -> Console:
    from circuitspec.reports.table import make_console

    return make_console()


def _checkpoint(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value


def baseline_command(
    file: Path, out: Path | None = None, checkpoint: str | None = None, seed: int | None = None
) -> Path:
    """Verify FILE and keep its report.json as ``reports/<name>/baseline.json`` (or OUT); a ``models:``
    file keeps one per model (``reports/<name>/<model>/baseline.json``) and the matrix."""
    from circuitspec.checkpoints import baseline
    from circuitspec.spec.loader import load_hypothesis

    if file.is_file() and load_hypothesis(file).spec.models:
        from circuitspec.compare.run import baseline_models

        if out is not None or checkpoint is not None:
            where = "reports/<name>/<model>/baseline.json"
            raise CircuitSpecError(f"--out / --checkpoint: a models: file keeps one per model, {where}")
        return baseline_models(file, _console(), seed)[-1]
    return baseline(file, out, _checkpoint(checkpoint), seed=seed, console=_console())


def diff_command(base: Path, new: Path, hypothesis: Path | None = None) -> int:
    """Compare two report.json files: 1 when a claim regressed, 0 otherwise."""
    from circuitspec.regress import diff_reports

    return 1 if diff_reports(base, new, console=_console(), hypothesis=hypothesis) else 0


def regress_command(
    file: Path,
    checkpoints: str | None = None,
    out: Path | None = None,
    allow_inconclusive: bool = False,
    seed: int | None = None,
    ray: bool = False,
    ray_address: str | None = None,
    allow_errors: bool = False,
) -> int:
    """Verify FILE on each checkpoint and write the claims × checkpoints matrix; the worst of
    verify's exit codes over the checkpoints. ``ray`` / ``ray_address``: each checkpoint a Ray task
    (:mod:`circuitspec.distributed`; no address: a local cluster on this machine's cores)."""
    if ray or ray_address:
        from circuitspec.distributed.regress import regress_on_ray

        return regress_on_ray(
            file, checkpoints, address=ray_address, out=out, seed=seed,
            allow_inconclusive=allow_inconclusive, allow_errors=allow_errors, console=_console(),
        ).exit_code  # fmt: skip
    from circuitspec.checkpoints import regress

    return regress(
        file, checkpoints, out=out, seed=seed, allow_inconclusive=allow_inconclusive,
        allow_errors=allow_errors, console=_console(),
    ).exit_code  # fmt: skip


def _fail(error: CircuitSpecError) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add the ``baseline``, ``diff`` and ``regress`` commands to ``app``."""

    @app.command("baseline")
    def baseline_cli(
        file: Annotated[Path, typer.Argument(help="hypothesis YAML")],
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="where to write the baseline JSON")
        ] = None,
        checkpoint: Annotated[str | None, typer.Option(help="model checkpoint to verify")] = None,
        seed: Annotated[int | None, typer.Option(help="override the hypothesis' seed")] = None,
    ) -> None:
        """Verify FILE and keep its report.json as reports/<name>/baseline.json."""
        try:
            baseline_command(file, out, checkpoint, seed)
        except CircuitSpecError as error:
            raise _fail(error) from None

    @app.command("diff")
    def diff_cli(
        base: Annotated[Path, typer.Argument(help="baseline report.json")],
        new: Annotated[Path, typer.Argument(help="new report.json")],
        hypothesis: Annotated[
            Path | None,
            typer.Option(help="read tolerances from this YAML (default: the one the report names)"),
        ] = None,
    ) -> None:
        """Compare two reports; exit 1 if any claim regressed (verdict worse, moved past tolerance, gone)."""
        try:
            code = diff_command(base, new, hypothesis)
        except CircuitSpecError as error:
            raise _fail(error) from None
        raise typer.Exit(code)

    @app.command("regress")
    def regress_cli(
        file: Annotated[Path, typer.Argument(help="hypothesis YAML")],
        checkpoints: Annotated[
            str | None, typer.Option(help="comma-separated checkpoints (default: the YAML's checkpoints:)")
        ] = None,
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="output folder (default reports/<name>)")
        ] = None,
        allow_inconclusive: Annotated[bool, typer.Option(help="inconclusive counts as passed")] = False,
        allow_errors: Annotated[
            bool, typer.Option(help="do not exit 2 when a claim could not be measured (verdict 'error')")
        ] = False,
        seed: Annotated[int | None, typer.Option(help="override the hypothesis' seed")] = None,
        ray: Annotated[bool, typer.Option("--ray", help=RAY_HELP)] = False,
        ray_address: Annotated[str | None, typer.Option(help=RAY_ADDRESS_HELP)] = None,
    ) -> None:
        """Verify FILE on each checkpoint; write regression.{json,md,html} and per-checkpoint reports.
        Exit code: the worst over the checkpoints (1 when a claim fails at any of them)."""
        try:
            code = regress_command(
                file, checkpoints, out, allow_inconclusive, seed, ray, ray_address, allow_errors
            )
        except CircuitSpecError as error:
            raise _fail(error) from None
        raise typer.Exit(code)
