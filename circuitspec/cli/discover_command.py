"""``circuitspec discover``: a circuit found by edge attribution patching, written as a hypothesis to
verify on held-out prompts, with its faithfulness curve (JSON, and a PNG when matplotlib is there)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from circuitspec.errors import CircuitSpecError

__all__ = ["curve_table", "register", "run_discover"]


def _check_output(out: Path, force: bool) -> None:
    """Before any model loads: the output must be a new (or ``--force``) file in a writable folder."""
    if out.exists() and (out.is_dir() or not force):
        what = "is a folder" if out.is_dir() else "exists (use --force to replace it)"
        raise CircuitSpecError(f"-o {out}: {what}")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise CircuitSpecError(f"-o {out}: folder {folder} does not exist or is not writable")


def _edge_table(summary: str, edges: list[Any], effects: list[float]) -> list[str]:
    """One corruption's kept edges: score, path patching, path."""
    lines = [summary, "", f"{'score':>9}  {'patched':>9}  edge"]
    for edge, effect in zip(edges, effects, strict=True):
        lines.append(f"{edge.score:>9.4g}  {effect:>9.4g}  {edge.path}")
    return lines


def curve_table(result: Any) -> str:
    """The kept edges (per corruption when there are several) and the faithfulness curve as plain text."""
    d, curve = result.discovery, result.curve
    if not result.runs:
        lines = _edge_table(d.summary, result.kept, d.edge_effects)
    else:
        lines = [d.summary]
        for run in result.runs:
            lines += [
                "",
                f"corruption {run.name}:",
                *_edge_table(run.scored.summary, run.scored.kept, run.scored.effects),
            ]
    passes = (
        sum(run.scored.attribution.backward_passes for run in result.runs)
        or result.attribution.backward_passes
    )
    lines += [
        "",
        f"faithfulness over circuit size ({curve['unit']}):",
        f"{'edges':>7}  {'share':>7}  {'parts':>5}  faithfulness",
    ]
    for p in curve["points"]:
        lines.append(f"{p['edges']:>7}  {p['share']:>7.3f}  {p['components']:>5}  {p['faithfulness']:.3f}")
    cost = f"{passes} backward passes" if passes else "forward passes only"  # edge patching: no gradients
    lines.append(f"CPR {curve['cpr']:.3f}  CMD {curve['cmd']:.3f}  ({cost})")
    return "\n".join(lines)


def _plot(curve: dict[str, Any], path: Path) -> bool:
    """The curve as a PNG (False when matplotlib is missing)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    fig = Figure(figsize=(5, 3.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = [p["edges"] for p in curve["points"]]
    ax.plot(xs, [p["faithfulness"] for p in curve["points"]], marker="o")
    ax.set_xscale("log")
    ax.set_xlabel("edges kept (top-k by score)")
    ax.set_ylabel("faithfulness (recovered)")
    ax.axhline(1.0, color="grey", linewidth=0.5)
    fig.tight_layout()
    fig.savefig(path)
    return True


def run_discover(file: Path, out: Path, force: bool = False, **options: Any) -> str:
    """Discover, write the YAML, its curve JSON (and PNG); return what to print."""
    from circuitspec.discover.run import discover
    from circuitspec.engine.progress import run_log
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis

    _check_output(out, force)
    tokens = [str(file)]
    for key, value in options.items():
        for item in value if isinstance(value, list) else [] if value is None else [value]:
            tokens += [f"--{key.rstrip('s') if key == 'templates' else key.replace('_', '-')}", str(item)]
    command = "circuitspec discover " + shlex.join([*tokens, "-o", str(out)])
    with run_log():
        result = discover(file, output=out, command=command, **options)
    out.write_text(result.yaml_text, encoding="utf-8")
    compile_hypothesis(load_hypothesis(out))  # what `circuitspec validate` checks
    curve_path = out.with_suffix(".curve.json")
    curve_path.write_text(json.dumps(result.curve, indent=2) + "\n", encoding="utf-8")
    written = [str(out), str(curve_path)]
    if _plot(result.curve, out.with_suffix(".curve.png")):
        written.append(str(out.with_suffix(".curve.png")))
    return curve_table(result) + "\n\nwrote " + ", ".join(written)


def register(app: typer.Typer) -> None:
    """Add ``discover`` to ``app``."""

    @app.command("discover")
    def discover_cli(
        file: Annotated[Path, typer.Argument(help="hypothesis YAML: the model, data and corruption")],
        out: Annotated[Path, typer.Option("--out", "-o", help="the hypothesis to write")] = Path(
            "candidate.yaml"
        ),
        method: Annotated[
            str,
            typer.Option(
                help="auto (default: edge-patching up to 2,000 edges, else eap-ig-act) | edge-patching | "
                "eap | eap-ig | eap-ig-act"
            ),
        ] = "auto",
        top_k: Annotated[int | None, typer.Option(help="keep the k highest-scoring edges")] = None,
        threshold: Annotated[
            float | None,
            typer.Option(help="keep edges with |score| >= T x |clean - corrupted| (default 0.05)"),
        ] = None,
        split: Annotated[str, typer.Option(help="rows to score on: explore | test | all")] = "explore",
        steps: Annotated[int, typer.Option(help="EAP-IG interpolation steps")] = 5,
        template: Annotated[
            list[str] | None, typer.Option(help="template ids (default: every template)")
        ] = None,
        test_fraction: Annotated[
            float, typer.Option(help="held-out share of rows, where the hypothesis has no data.split")
        ] = 0.5,
        force: Annotated[bool, typer.Option(help="replace an existing output file")] = False,
        corrupt: Annotated[
            list[str] | None,
            typer.Option(
                help="replace the file's corruption, e.g. '{shuffle: [w_ori]}' ('file': its own); "
                "give it again to discover under each corruption into one hypothesis"
            ),
        ] = None,
    ) -> None:
        """Score every edge (exact edge patching, or EAP / EAP-IG on a large model) on the exploration
        rows, keep the strongest and write a hypothesis whose claims verify them on held-out rows, with
        a faithfulness curve."""
        try:
            print(run_discover(
                file, out, force, method=method, top_k=top_k, threshold=threshold, split=split,
                steps=steps, templates=template, test_fraction=test_fraction, corrupt=corrupt,
            ))  # fmt: skip
        except CircuitSpecError as error:
            print(str(error), file=sys.stderr)
            raise typer.Exit(2) from None
