"""``circuitspec`` commands. Exit codes: 0 ok, 1 a claim failed, 2 bad input (one line on stderr).

``validate``, ``graph`` and ``schema`` import neither torch nor TransformerLens; ``verify``
imports the pipeline lazily.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from circuitspec.cli.data_commands import register as register_data_commands
from circuitspec.cli.feature_commands import register as register_feature_commands
from circuitspec.cli.regress_commands import register as register_regress_commands
from circuitspec.errors import CircuitSpecError

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "app"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

app = typer.Typer(
    name="circuitspec",
    help="Declarative, statistically honest tests of circuit hypotheses in transformer language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class GraphFormat(StrEnum):
    dot = "dot"
    mermaid = "mermaid"


def _bad_input(error: CircuitSpecError) -> typer.Exit:
    """Print the one-line error to stderr; the caller raises the returned exit (code 2)."""
    print(str(error), file=sys.stderr)
    return typer.Exit(EXIT_BAD_INPUT)


def _compile(file: Path, *, with_rows: bool = False):  # -> CircuitGraph
    """Load and compile ``file``; with ``with_rows`` also read and check its data rows."""
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis, load_rows

    loaded = load_hypothesis(file)
    graph = compile_hypothesis(loaded)
    if with_rows:
        load_rows(loaded.spec.data, loaded.base_dir, hypothesis=loaded)
    return graph


FileArg = Annotated[Path, typer.Argument(help="hypothesis YAML file", show_default=False)]


@app.command()
def validate(file: FileArg) -> None:
    """Check a hypothesis file against its model's shape, without loading weights."""
    try:
        graph = _compile(file, with_rows=True)
    except CircuitSpecError as exc:
        raise _bad_input(exc) from None
    shape = graph.shape
    print(
        f"ok: {file}: hypothesis '{graph.hypothesis.name}', {len(graph.claims)} claims, "
        f"{graph.digraph.number_of_nodes()} nodes, {graph.digraph.number_of_edges()} edges "
        f"({shape.n_layers} layers × {shape.n_heads} heads)"
    )


@app.command()
def graph(
    file: FileArg,
    format: Annotated[GraphFormat, typer.Option("--format", "-f", help="output format")] = GraphFormat.dot,
) -> None:
    """Print the hypothesis' circuit as Graphviz DOT or Mermaid."""
    from circuitspec.graph.export import render

    try:
        compiled = _compile(file)
    except CircuitSpecError as exc:
        raise _bad_input(exc) from None
    sys.stdout.write(render(compiled, format.value))


@app.command()
def schema() -> None:
    """Print the JSON Schema of a hypothesis file."""
    from circuitspec.spec.schema import Hypothesis

    print(json.dumps(Hypothesis.model_json_schema(), indent=2))


@app.command()
def verify(
    file: FileArg,
    checkpoint: Annotated[str | None, typer.Option(help="training step, revision or checkpoint name")] = None,
    out: Annotated[Path | None, typer.Option(help="report directory")] = None,
    allow_inconclusive: Annotated[
        bool, typer.Option(help="exit 0 when claims are only inconclusive")
    ] = False,
    junit: Annotated[Path | None, typer.Option(help="also write JUnit XML here")] = None,
    baseline: Annotated[Path | None, typer.Option(help="a previous report.json to compare against")] = None,
    seed: Annotated[int | None, typer.Option(help="override the hypothesis' seed")] = None,
) -> None:
    """Run every claim on the model and report verdicts (exit 1 when a claim fails)."""
    from circuitspec.pipeline import verify as run_verify

    step: int | str | None = (
        int(checkpoint) if checkpoint is not None and checkpoint.isdigit() else checkpoint
    )
    try:
        code = run_verify(
            file,
            checkpoint=step,
            out=out,
            allow_inconclusive=allow_inconclusive,
            junit=junit,
            baseline=baseline,
            seed=seed,
        )
    except CircuitSpecError as exc:
        raise _bad_input(exc) from None
    raise typer.Exit(code)


register_regress_commands(app)
register_data_commands(app)
register_feature_commands(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
