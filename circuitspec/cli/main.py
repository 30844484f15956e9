"""``circuitspec`` commands. Exit codes: 0 ok, 1 a claim failed, 2 bad input (one line on stderr).

``validate``, ``graph``, ``schema`` and ``diff`` import neither torch nor TransformerLens (the core
install has neither); ``verify`` imports the pipeline lazily, and a command that needs the ``models``
extra without it says so in one line (``cli/extras.py``).
"""

from __future__ import annotations

import atexit
import functools
import gc
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from circuitspec.cli.data_commands import register as register_data_commands
from circuitspec.cli.direction_commands import register as register_direction_commands
from circuitspec.cli.discover_command import register as register_discover_command
from circuitspec.cli.extras import EXTRA_MODULES, models_hint, require_models
from circuitspec.cli.feature_commands import register as register_feature_commands
from circuitspec.cli.init_command import register as register_init_command
from circuitspec.cli.learn_command import register as register_learn_command
from circuitspec.cli.prompt_commands import register as register_prompt_commands
from circuitspec.cli.regress_commands import register as register_regress_commands
from circuitspec.errors import CircuitSpecError, ModelNotAvailable

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "app"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _OneLineApp(typer.Typer):
    """The app as a console script: a usage error (an option value that is not a number, a missing
    argument) is one line on stderr and exit 2, like every other bad input, not a framed box."""

    invoked: str | None = None  # the subcommand being run (set by the root callback)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # At exit, keep the cyclic collector off the objects torch, TransformerLens and matplotlib
        # leave: interpreter teardown after a verify took 3-4 s with them, 0.6 s without (gc.freeze).
        atexit.register(gc.freeze)
        try:
            code = super().__call__(*args, standalone_mode=False, **kwargs)
        except ModuleNotFoundError as exc:  # a command reached a module of an extra that is not installed
            missing = (exc.name or "").split(".")[0]
            if missing not in EXTRA_MODULES:
                raise
            print(str(models_hint(self.invoked, missing)), file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except Exception as exc:
            if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):  # click's UsageError
                raise
            context = getattr(exc, "ctx", None)
            command = context.command_path if context is not None else "circuitspec"
            if exc.format_message():  # empty when the help was printed instead (no arguments)
                message = CircuitSpecError(f"{exc.format_message()} (see {command} --help)", file=command)
                print(str(message), file=sys.stderr)
            sys.exit(exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


app = _OneLineApp(
    name="circuitspec",
    help="Declarative, statistically honest tests of circuit hypotheses in transformer language models.",
    no_args_is_help=True,
    add_completion=True,  # typer's --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    """``--version``: print the package version and exit 0 (eager, before any command runs)."""
    if value:
        from importlib.metadata import version

        print(f"circuitspec {version('circuitspec')}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Declarative, statistically honest tests of circuit hypotheses in transformer language models."""
    app.invoked = ctx.invoked_subcommand


class GraphFormat(StrEnum):
    dot = "dot"
    mermaid = "mermaid"


class RowSplit(StrEnum):
    """``verify --split``: the rows every verdict uses (see data.split)."""

    explore = "explore"
    test = "test"
    all = "all"


class WeightsDtype(StrEnum):
    """``verify --dtype``: the weights' dtype, as ``model.dtype``."""

    float32 = "float32"
    float64 = "float64"
    float16 = "float16"
    bfloat16 = "bfloat16"


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")


def model_overrides(device: str | None, dtype: str | None) -> dict[str, str]:
    """The ``model:`` fields ``verify --device/--dtype`` replace for one run; a bad device is one line."""
    if device is not None and not _DEVICE.match(device):
        raise CircuitSpecError(f"--device '{device}' is not a device (valid: auto, cpu, cuda, cuda:N, mps)")
    overrides = {"device": device, "dtype": dtype}
    return {key: value for key, value in overrides.items() if value is not None}


def _bad_input(error: CircuitSpecError) -> typer.Exit:
    """Print the one-line error to stderr; the caller raises the returned exit (code 2)."""
    print(str(error), file=sys.stderr)
    return typer.Exit(EXIT_BAD_INPUT)


def _compile(file: Path, *, with_rows: bool = False):  # -> CircuitGraph
    """Load and compile ``file``; with ``with_rows`` also read and check its data rows."""
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis, load_rows

    loaded = load_hypothesis(file)
    try:
        graph = next(iter(_model_views(file).values()), None) or compile_hypothesis(loaded)
    except ModelNotAvailable as exc:  # the model the file names: point at its `model:` entry
        raise (loaded.error(exc.message, ("model",)) if exc.file is None else exc) from None
    _check_checkpoints(loaded)
    if with_rows:
        from circuitspec.engine.vocabulary import check_rows_offline

        rows = load_rows(loaded.spec.data, loaded.base_dir, hypothesis=loaded)
        # unknown words, where the tokenizer loads without the model
        check_rows_offline(loaded.spec.model, loaded.spec.data, loaded.base_dir, rows)
    return graph


def _model_views(file: Path) -> dict:
    """A ``models:`` file's views compiled per model (:func:`circuitspec.compare.run.compile_views`); {}
    for a single-model file."""
    from circuitspec.spec.loader import load_hypothesis

    loaded = load_hypothesis(file)
    if not loaded.spec.models:
        return {}
    from circuitspec.compare.run import compile_views

    return compile_views(loaded)


def load_hypothesis_claims(file: Path) -> list:
    """The file's claims after ``each`` expansion."""
    from circuitspec.spec.loader import load_hypothesis

    return list(load_hypothesis(file).claims)


def _check_checkpoints(loaded) -> None:  # loaded: LoadedHypothesis
    """``model.checkpoint`` and every ``checkpoints:`` entry exist for the model (``regress`` runs them)."""
    from circuitspec.graph.checkpoint_checks import check_checkpoint

    spec = loaded.spec
    named: list[tuple[tuple[str | int, ...], object]] = [(("model", "checkpoint"), spec.model.checkpoint)]
    named += [(("checkpoints", i), c) for i, c in enumerate(spec.checkpoints)]
    for loc, checkpoint in named:
        try:
            check_checkpoint(spec.model, checkpoint)
        except CircuitSpecError as exc:
            raise loaded.error(exc.message, loc) from None


def parse_checkpoint(text: str | None) -> int | str | None:
    """``--checkpoint`` as a training step (ASCII digits) or a name; a one-line error otherwise."""
    from circuitspec.spec.names import checkpoint_name

    if text is None:
        return None
    try:
        return checkpoint_name(text)
    except ValueError as exc:
        raise CircuitSpecError(f"--checkpoint: {exc}") from None


FileArg = Annotated[Path, typer.Argument(help="hypothesis YAML file", show_default=False)]


@app.command()
def validate(file: FileArg) -> None:
    """Check a hypothesis file against its model's shape, without loading weights."""
    try:
        graph = _compile(file, with_rows=True)
        views = _model_views(file)
    except CircuitSpecError as exc:
        raise _bad_input(exc) from None
    if views:
        shapes = ", ".join(
            f"{n}: {g.shape.n_layers} layers × {g.shape.n_heads} heads" for n, g in views.items()
        )
        claims = len(load_hypothesis_claims(file))
        name = graph.hypothesis.name
        print(f"ok: {file}: hypothesis '{name}', {claims} claims on {len(views)} models ({shapes})")
        return
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
def schema(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write it to this file")] = None,
) -> None:
    """Print (or write) the JSON Schema of a hypothesis file, for editors (README: Editor set-up)."""
    from circuitspec.claims.json_schema import schema_text

    text = schema_text()
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _bad_input(CircuitSpecError(f"cannot write the schema to {out}: {exc.strerror}")) from None


@app.command()
def verify(
    file: Annotated[
        list[Path], typer.Argument(help="hypothesis YAML file (several with --ray)", show_default=False)
    ],
    checkpoint: Annotated[str | None, typer.Option(help="training step, revision or checkpoint name")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="report directory (default reports/<name>)")
    ] = None,
    allow_inconclusive: Annotated[
        bool, typer.Option(help="exit 0 when claims are only inconclusive")
    ] = False,
    junit: Annotated[Path | None, typer.Option(help="also write JUnit XML here")] = None,
    baseline: Annotated[Path | None, typer.Option(help="a previous report.json to compare against")] = None,
    seed: Annotated[int | None, typer.Option(help="override the hypothesis' seed")] = None,
    allow_errors: Annotated[
        bool, typer.Option(help="do not exit 2 when a claim could not be measured (verdict 'error')")
    ] = False,
    split: Annotated[
        RowSplit | None,
        typer.Option(help="run every claim on these rows (default: the split thresholds were not set on)"),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="override model.device: auto, cpu, cuda, cuda:N or mps")
    ] = None,
    dtype: Annotated[WeightsDtype | None, typer.Option(help="override model.dtype")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="each file a Ray task (circuitspec[ray])")] = False,
    ray_address: Annotated[str | None, typer.Option(help="join this Ray cluster; implies --ray")] = None,
    shard_prompts: Annotated[
        int | None, typer.Option(help="with --ray: split each file's prompts over this many Ray tasks")
    ] = None,
) -> None:
    """Run every claim on the model and report verdicts (exit 1 when a claim fails, 2 on an error)."""
    try:
        require_models("verify")  # the core install has no torch: one line naming the extra
        if shard_prompts is not None and not (ray or ray_address):
            raise CircuitSpecError("--shard-prompts splits prompts over Ray tasks: add --ray")
        if ray or ray_address or len(file) > 1:  # a Ray fan-out (circuitspec/distributed/verify.py)
            from circuitspec.distributed.verify import verify_command

            shards = {} if shard_prompts is None else {"shard_prompts": shard_prompts}
            run_verify: Any = functools.partial(verify_command, file, ray, ray_address, **shards)
        else:
            from circuitspec.compare.run import verify_file  # one model, or several side by side

            run_verify = functools.partial(verify_file, file[0])
        code = run_verify(
            checkpoint=parse_checkpoint(checkpoint),
            out=out,
            allow_inconclusive=allow_inconclusive,
            junit=junit,
            baseline=baseline,
            seed=seed,
            allow_errors=allow_errors,
            split=split.value if split is not None else None,
            model_overrides=model_overrides(device, dtype.value if dtype is not None else None),
        )
    except CircuitSpecError as exc:
        raise _bad_input(exc) from None
    raise typer.Exit(code)


register_regress_commands(app)
register_data_commands(app)
register_feature_commands(app)
register_prompt_commands(app)
register_init_command(app)
register_direction_commands(app)
register_discover_command(app)
register_learn_command(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
