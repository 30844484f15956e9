"""``circuitspec prompts``: the prompts a hypothesis runs, built exactly as ``verify`` builds them.

Per prompt: the rendered text, its tokens (index, id, text), where each role sits (``end`` = the last
token), the answers (ids and text; an encoder's reference text instead) and the corrupted twin. The
prompt set is :func:`circuitspec.engine.prompts.build_prompt_set` on the rows of the split verdicts
use (``--split`` to choose), ``data.n`` rows sampled with ``data.seed``, the model's own tokenizer:
read without the weights for bundled models and BERT encoders (the same tokenizer their loaders
return), otherwise taken from the loaded model. Output: a rich table per prompt on a terminal, plain
text otherwise, ``--json`` for machines.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from circuitspec.errors import CircuitSpecError, ModelNotAvailable, printable

__all__ = ["collect_prompts", "prompt_tokenizer", "register", "render_plain", "render_rich"]


def prompt_tokenizer(model_spec: Any, base_dir: Path) -> Any:
    """The tokenizer ``verify`` builds prompts with (a :class:`TextTokenizer`), loading weights only
    when it cannot be had alone (hub names, GGUF files and decoder directories: their BOS convention
    comes from the loaded model)."""
    from circuitspec.graph.model_sources import resolve_source

    source = resolve_source(model_spec, base_dir)  # a one-line error when the model is not here
    if source.kind == "bundled":
        from circuitspec.engine.vocabulary import offline_tokenizer

        tokenizer = offline_tokenizer(model_spec, base_dir)  # the bundled model's own tokenizer()
        if tokenizer is not None:
            return tokenizer
    elif source.kind == "path" and _model_type(Path(source.location)) == "bert":
        from circuitspec.engine.encoder import encoder_tokenizer

        return encoder_tokenizer(Path(source.location))  # what load_encoder returns: [CLS] text [SEP]
    from circuitspec.pipeline import load_hypothesis_model

    return load_hypothesis_model(model_spec, base_dir).tokenizer


def _model_type(directory: Path) -> str | None:
    """``model_type`` of a Hugging Face directory's config.json (None when unreadable)."""
    try:
        return json.loads((directory / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def collect_prompts(file: Path, template: str | None = None, n: int = 5, split: str | None = None) -> dict:
    """The first ``n`` prompts of each selected template, as ``verify`` builds them (plain data)."""
    from circuitspec.engine.prompt_sample import prompt_record, token_roles
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.spec.loader import load_hypothesis, load_rows
    from circuitspec.spec.splits import check_run_split, default_split, select_rows

    loaded = load_hypothesis(file)
    spec, data = loaded.spec, loaded.spec.data
    known = [t.id for t in data.templates]
    if template is not None and template not in known:
        raise CircuitSpecError(f"--template: no template '{template}' in {file} (valid: {', '.join(known)})")
    check_run_split(spec, split)  # an unknown split, or a split of rows that are not split
    used = split or default_split(spec)
    rows = select_rows(load_rows(data, loaded.base_dir, hypothesis=loaded), data, used)
    try:
        tokenizer = prompt_tokenizer(spec.model, loaded.base_dir)
    except ModelNotAvailable as exc:  # point at the file's `model:` entry, as validate does
        raise (loaded.error(exc.message, ("model",)) if exc.file is None else exc) from None
    selected = [template] if template is not None else known

    def build(ids: list[str]) -> Any:
        return build_prompt_set(data, rows, tokenizer, ids, seed=data.seed, n=data.n)

    prompts = build(selected)  # the set a claim over these templates runs on (twins included)
    shown: list[dict[str, Any]] = []
    for tid in selected:  # per template: role positions (a set over several keeps only shared roles)
        alone = prompts if len(selected) == 1 else build([tid])
        first = prompts.template_ids.index(tid)
        for k in range(min(n, len(alone))):  # roles in token order, shared with the report's sample
            shown.append(prompt_record(prompts, first + k, token_roles(alone, k), tokenizer))
    return {
        "hypothesis": spec.name,
        "split": used,
        "rows": len(rows),
        "per_template": len(prompts) // len(selected),
        "shown_per_template": min(n, len(prompts) // len(selected)),
        "prompts": shown,
    }


def _quoted(tokens: list[dict[str, Any]]) -> str:
    return " ".join(f"{t['index']}:{printable(repr(t['text']))}" for t in tokens)


def _answers(record: dict[str, Any]) -> str:
    def one(answer: dict[str, Any] | None) -> str:
        return "-" if answer is None else f"{printable(repr(answer['text']))} (id {answer['id']})"

    if record.get("desired") is None and record.get("undesired") is None:
        return "none (a template for generation and attention claims)"
    return f"desired {one(record['desired'])}, undesired {one(record['undesired'])}"


def _heading(result: dict[str, Any]) -> str:
    return (
        f"hypothesis '{result['hypothesis']}': split {result['split']} ({result['rows']} rows), "
        f"{result['per_template']} prompts per template; showing {result['shown_per_template']} of each"
    )


def render_plain(result: dict[str, Any]) -> str:
    """Blocks of ``key: value`` lines, one block per prompt (logs, pipes)."""
    lines = [_heading(result)]
    for r in result["prompts"]:
        twin = r["corrupted"]
        lines += [
            "",
            f"[{r['template']}] row {r['row'] or '-'}",
            f"  text:       {printable(repr(r['text']))}",
            f"  tokens:     {_quoted(r['tokens'])}",
            "  roles:      " + " ".join(f"{role}={pos}" for role, pos in r["roles"].items()),
        ]
        if "reference" in r:
            lines.append(f"  reference:  {printable(repr(r['reference']['text']))}")
            lines.append(f"  ref tokens: {_quoted(r['reference']['tokens'])}")
        else:
            lines.append(f"  answers:    {_answers(r)}")
        lines += [
            f"  corrupted:  {printable(repr(twin['text']))}",
            f"  tokens:     {_quoted(twin['tokens'])}",
        ]
        if "reference" not in r and _answers(twin) != _answers(r):
            lines.append(f"  answers:    {_answers(twin)}")
    return "\n".join(lines) + "\n"


def render_rich(result: dict[str, Any], console: Any) -> None:
    """A table per prompt on ``console``: position, clean token, corrupted token, roles there."""
    from rich.markup import escape
    from rich.table import Table

    console.print(escape(_heading(result)), highlight=False)
    for r in result["prompts"]:
        by_position: dict[int, list[str]] = {}
        for role, position in r["roles"].items():
            by_position.setdefault(position, []).append(role)
        answers = f"reference {r['reference']['text']!r}" if "reference" in r else _answers(r)
        if "reference" not in r and _answers(r["corrupted"]) != _answers(r):
            answers += f"; corrupted: {_answers(r['corrupted'])}"
        for line in (
            f"[{r['template']}] row {r['row'] or '-'}",
            f"  text:      {r['text']!r}",
            f"  corrupted: {r['corrupted']['text']!r}",
            f"  {answers}",
        ):
            console.print(escape(printable(line)), highlight=False)
        table = Table()
        for column in ("#", "token", "corrupted", "roles"):
            table.add_column(column)
        for clean, twin in zip(r["tokens"], r["corrupted"]["tokens"], strict=True):
            differs = clean["id"] != twin["id"]
            table.add_row(
                str(clean["index"]),
                escape(printable(repr(clean["text"]))),
                ("[bold red]" if differs else "") + escape(printable(repr(twin["text"]))),
                escape(", ".join(by_position.get(clean["index"], []))),
            )
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``prompts`` to ``app``."""

    @app.command("prompts")
    def prompts_cli(
        file: Annotated[Path, typer.Argument(help="hypothesis YAML file", show_default=False)],
        template: Annotated[
            str | None, typer.Option("--template", "-t", help="one template id (default: every template)")
        ] = None,
        n: Annotated[int, typer.Option("-n", min=1, help="prompts shown per template")] = 5,
        split: Annotated[
            str | None,
            typer.Option(help="explore | test | all (default: the split verdicts use)", show_default=False),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """Show the prompts verify runs: text, tokens, role positions, answers, corrupted twin."""
        try:
            result = collect_prompts(file, template, n, split)
        except CircuitSpecError as error:
            print(str(error), file=sys.stderr)
            raise typer.Exit(2) from None
        if as_json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        elif sys.stdout.isatty():
            from rich.console import Console

            render_rich(result, Console())
        else:
            sys.stdout.write(render_plain(result))
