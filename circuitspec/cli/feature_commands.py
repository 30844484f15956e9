"""``circuitspec features search``: propose a transcoder-feature circuit as YAML paths to verify."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from circuitspec.errors import CircuitSpecError

__all__ = ["register", "search_command"]


def search_command(hypothesis: Path, target: str, k: int, depth: int, template: str | None) -> str:
    """Load the hypothesis' model (with its declared transcoders) and prompts; return a ``paths:`` block."""
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.features.search import greedy_feature_search, to_yaml_snippet
    from circuitspec.pipeline import load_hypothesis_model
    from circuitspec.spec.loader import load_hypothesis, load_rows

    loaded_hypothesis = load_hypothesis(hypothesis)
    spec = loaded_hypothesis.spec
    if not spec.model.dictionaries:
        raise CircuitSpecError(
            "the search needs transcoders: declare them under model.dictionaries", file=str(hypothesis)
        )
    loaded = load_hypothesis_model(spec.model, loaded_hypothesis.base_dir)
    rows = load_rows(spec.data, loaded_hypothesis.base_dir)
    prompts = build_prompt_set(
        spec.data, rows, loaded.tokenizer, template_ids=[template] if template else None, seed=spec.data.seed
    )
    paths = greedy_feature_search(loaded.model, prompts, target=target, k=k, depth=depth)
    return to_yaml_snippet(paths)


def register(app: typer.Typer) -> None:
    """Add ``features search`` to ``app``."""
    features_app = typer.Typer(help="Transcoder / SAE feature tools.", no_args_is_help=True)

    @features_app.command("search")
    def search_cli(
        hypothesis: Annotated[
            Path, typer.Argument(help="hypothesis YAML naming the model and its transcoders")
        ],
        target: Annotated[
            str, typer.Option(help="'logits' (the logit difference) or a feature, e.g. MLP1.tc[7]")
        ] = "logits",
        k: Annotated[int, typer.Option(help="upstream parts kept per hop")] = 3,
        depth: Annotated[int, typer.Option(help="hops toward the embeddings")] = 2,
        template: Annotated[
            str | None, typer.Option(help="one template id (default: every template)")
        ] = None,
    ) -> None:
        """Greedy feature-circuit search (Dunefsky et al.): print a `paths:` block to paste and verify."""
        try:
            print(search_command(hypothesis, target, k, depth, template))
        except CircuitSpecError as error:
            print(str(error), file=sys.stderr)
            raise typer.Exit(2) from None

    app.add_typer(features_app, name="features")
