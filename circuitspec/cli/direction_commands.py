"""``circuitspec directions``: a mean-difference direction (or PCA subspace) between two prompt groups at
one node, saved with its provenance for a ``steering`` claim to reference.

A group is a template id or a tag of the hypothesis' templates. When the hypothesis splits its rows
(``data.split``) the default split is ``explore``, so a direction is set on exploration prompts and a
steering claim verifies it on the held-out ones.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer

from circuitspec.errors import CircuitSpecError

__all__ = ["DirectionRequest", "directions_command", "register"]

_SPLITS = ("explore", "test", "all")


class DirectionRequest:
    """The command's arguments, checked (each bad one is a one-line error)."""

    def __init__(self, node: str, groups: str, pooling: str, pca: int | None, split: str | None) -> None:
        names = [g.strip() for g in groups.split(",")]
        if len(names) != 2 or not all(names) or names[0] == names[1]:
            raise CircuitSpecError(
                f"--groups '{groups}': give two different templates or tags, 'A,B' (direction: A − B)"
            )
        if pooling not in ("token", "final"):
            raise CircuitSpecError(f"--pooling '{pooling}' (valid: token, final)")
        if pca is not None and pca < 1:
            raise CircuitSpecError(f"--pca {pca}: the number of principal axes must be at least 1")
        if split is not None and split not in _SPLITS:
            raise CircuitSpecError(f"--split '{split}' (valid: {', '.join(_SPLITS)})")
        self.node, self.groups, self.pca, self.split = node, names, pca, split
        self.pooling = cast(Literal["token", "final"], pooling)


def _templates(spec: Any, group: str) -> list[str]:
    """The template ids a group names: a template id, or every template with that tag."""
    ids = [t.id for t in spec.data.templates]
    if group in ids:
        return [group]
    tagged = [t.id for t in spec.data.templates if group in t.tags]
    if not tagged:
        tags = sorted({tag for t in spec.data.templates for tag in t.tags})
        valid = ", ".join([*ids, *(f"tag {t}" for t in tags)])
        raise CircuitSpecError(f"--groups: unknown template or tag '{group}' (valid: {valid})")
    return tagged


def directions_command(
    hypothesis: Path, request: DirectionRequest, out: Path, model: str | None = None
) -> str:
    """Read both groups' activations at the node, save the direction (or subspace); return a summary.
    ``model``: which of a ``models:`` file's models to read (required there, refused elsewhere)."""
    from circuitspec.claims.steering_checks import model_label
    from circuitspec.spec.loader import load_hypothesis, load_rows
    from circuitspec.spec.splits import select_rows

    loaded_hypothesis = _one_model(load_hypothesis(hypothesis), model)
    spec = loaded_hypothesis.spec
    templates = [_templates(spec, g) for g in request.groups]
    split = request.split or ("explore" if spec.data.split is not None else "all")
    rows = load_rows(spec.data, loaded_hypothesis.base_dir, hypothesis=loaded_hypothesis)
    rows = select_rows(rows, spec.data, split)
    from circuitspec.engine import steering  # imports torch: only once the input is known to be good

    steering.reading_node(request.node, request.pooling)  # a bad node or pooling before the model loads
    if not out.parent.is_dir():
        raise CircuitSpecError(f"-o '{out}': the folder {out.parent} does not exist")
    acts = _activations(spec, loaded_hypothesis.base_dir, rows, templates, request)
    model = model_label(spec.model)
    n = [len(a) for a in acts]
    return _save(out, acts, request, model, n, split)


def _one_model(loaded: Any, model: str | None) -> Any:
    """The hypothesis as ``model`` sees it (:func:`circuitspec.compare.views.model_view`)."""
    from circuitspec.compare.views import model_view

    names = list(loaded.spec.models)
    if not names:
        if model is not None:
            raise CircuitSpecError(f"--model {model}: {loaded.path.name} names one model (no 'models:')")
        return loaded
    if model is None or model not in names:
        given = f"--model {model}: unknown model" if model else "--model is required"
        raise CircuitSpecError(f"{given}: {loaded.path.name} names several models ({', '.join(names)})")
    return model_view(loaded, model)


def _activations(
    spec: Any, base_dir: Path, rows: list[Any], templates: list[list[str]], request: DirectionRequest
) -> list[Any]:
    """Per group, its prompts' activations ``[n, width]`` at the node (one clean run each)."""
    from circuitspec.engine.context import RunContext
    from circuitspec.engine.metrics import logit_diff
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.engine.steering import collect
    from circuitspec.pipeline import load_hypothesis_model

    loaded = load_hypothesis_model(spec.model, base_dir, spec.model.checkpoint)
    acts = []
    for ids in templates:
        prompts = build_prompt_set(spec.data, rows, loaded.tokenizer, ids, seed=spec.data.seed, n=spec.data.n)
        ctx = RunContext(loaded.model, prompts, metric=logit_diff)
        acts.append(collect(ctx, request.node, request.pooling))
    return acts


def _save(out: Path, acts: list[Any], request: DirectionRequest, model: str, n: list[int], split: str) -> str:
    """Write the direction (or, with ``--pca``, the subspace of both groups' activations)."""
    import numpy as np

    from circuitspec.directions.geometry import mean_difference, pca_subspace
    from circuitspec.directions.store import save_direction, save_subspace
    from circuitspec.engine.steering import provenance_for

    groups = f"{request.groups[0]} ({n[0]}) − {request.groups[1]} ({n[1]})"
    if request.pca is None:
        direction = mean_difference(acts[0], acts[1])
        provenance = provenance_for(request.node, request.pooling, model, request.groups, n)
        provenance = _with_split(provenance, split)
        stored = save_direction(out, direction, provenance)
        what = f"direction, raw norm {direction.norm:.4g}"
    else:
        subspace = pca_subspace(np.concatenate(acts), request.pca)
        provenance = provenance_for(
            request.node, request.pooling, model, request.groups, n, "subspace", "pca"
        )
        stored = save_subspace(out, subspace, _with_split(provenance, split))
        what = f"{request.pca}-dimensional PCA subspace, {float(subspace.ratio.sum()):.1%} of the variance"
    where = f"{request.node} ({request.pooling}), {groups} on split {split}"
    return f"wrote {out}: {what} at {where}, sha256 {stored.sha256[:12]}"


def _with_split(provenance: Any, split: str) -> Any:
    """The provenance noting which row split the groups' prompts came from."""
    from dataclasses import replace

    return replace(provenance, notes=f"split: {split}")


def register(app: typer.Typer) -> None:
    """Add ``directions`` to ``app``."""

    @app.command("directions")
    def directions_cli(
        hypothesis: Annotated[Path, typer.Argument(help="hypothesis YAML naming the model and templates")],
        node: Annotated[str, typer.Option(help="where to read, e.g. resid_post0@end, L0H1@end, MLP0@w_ori")],
        groups: Annotated[str, typer.Option(help="two templates or tags 'A,B': the direction is A − B")],
        out: Annotated[Path, typer.Option("--out", "-o", help="the .safetensors file to write")],
        pooling: Annotated[
            str, typer.Option(help="token: at the node's role; final: at each prompt's last token")
        ] = "token",
        pca: Annotated[int | None, typer.Option(help="save a K-dimensional PCA subspace instead")] = None,
        split: Annotated[
            str | None, typer.Option(help="rows read: explore (default when rows are split), test or all")
        ] = None,
        model: Annotated[
            str | None, typer.Option(help="with several models (models:), the one to read")
        ] = None,
    ) -> None:
        """Save a mean-difference direction (or PCA subspace) between two prompt groups at a node."""
        try:
            request = DirectionRequest(node, groups, pooling, pca, split)
            print(directions_command(hypothesis, request, out, model))
        except CircuitSpecError as error:
            print(str(error), file=sys.stderr)
            raise typer.Exit(2) from None
