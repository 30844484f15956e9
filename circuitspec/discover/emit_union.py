"""The hypothesis YAML of a discovery under several corruptions (:mod:`.union`).

Every corruption gets its own copy of each source template (``<template>__<corruption>``, tagged
``corrupt_<corruption>``, with that corruption as the template's own ``corrupt:``); ``data.corrupt``
is dropped. Claims:

* ``does_task`` (behaviour) on the first corruption's copies (clean prompts are the same in every copy);
* per kept edge and per corruption that kept it with a measurable effect: ``path_patching`` on that
  corruption's copies, half of the effect measured under it (``edge_e03__shuffle_w_ori``);
* ``circuit_faithful`` and per-component ``ablation`` (mean; a component whose effect is >= 2 % of the
  smallest corruption's total) on the union circuit, once, on the first corruption's copies: mean
  ablation reads only clean prompts, so another corruption's copies would repeat the same prompts
  and the same number (and count each prompt twice).

The header says which corruption found which edge; each path's comment gives every finder's score
and measured effect.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from .emit import (
    _MEASURABLE,
    MIN_RANDOM_CIRCUITS,
    Discovery,
    _bound,
    _random_circuits,
    dump,
    hypothesis_doc,
    source_line,
    threshold_lines,
)
from .prune import KeptEdge

__all__ = ["render_union"]

Hits = list[tuple[int, KeptEdge, float]]


def _flow(value: Any) -> str:
    """A corruption as one line of flow YAML (``{shuffle: [w_ori]}``)."""
    return " ".join(yaml.safe_dump(value, default_flow_style=True, width=10_000).split())


def _describe(run: Any, spec: Any) -> str:
    """What a run's corruption is, for the header."""
    if run.corruption is not None:
        return f"--corrupt {_flow(run.corruption.model_dump(mode='json', exclude_defaults=True))}"
    own = any(t.corrupt is not None for t in spec.data.templates)
    source = spec.data.corrupt.model_dump(mode="json", exclude_defaults=True) if spec.data.corrupt else None
    return "the source's corruption" + (" (each template's own)" if own else f" {_flow(source)}")


def _templates(spec: Any, runs: list[Any]) -> list[dict[str, Any]]:
    """Each source template once per corruption, carrying that corruption."""
    copies = []
    for run in runs:
        for template in spec.data.templates:
            item = template.model_dump(mode="json", exclude_defaults=True, by_alias=True)
            corruption = run.corruption or template.corrupt or spec.data.corrupt
            item["id"] = f"{template.id}__{run.name}"
            item["tags"] = [*template.tags, run.tag]
            item.pop("corrupt", None)
            if corruption is not None:
                item["corrupt"] = corruption.model_dump(mode="json", exclude_defaults=True, by_alias=True)
            copies.append(item)
    return copies


def _claims(d: Discovery, runs: list[Any], edges: list[tuple[KeptEdge, Hits]], names: list[str]) -> list[Any]:
    """Claims on the held-out rows; edge thresholds from the corruption that found each edge."""
    first = [runs[0].tag]
    claims: list[dict[str, Any]] = [{
        "id": "does_task", "kind": "behaviour", "description": "The clean prompts' answers win.",
        "data": [*first], "expect": "mean > 0",
    }]  # fmt: skip
    for name, (_, hits) in zip(names, edges, strict=True):
        for i, edge, effect in hits:
            run = runs[i]
            if abs(effect) < _MEASURABLE * run.scale:
                continue
            claims.append({
                "id": f"edge_{name}__{run.name}", "kind": "path_patching", "targets": [name],
                "data": [run.tag], "expect": _bound(effect),
                "description": f"{edge.path} under {run.name}: score {edge.score:.3g}, "
                f"path patching {effect:.3g} ({d.split})",
            })  # fmt: skip
    if d.components and d.faithfulness >= 0.125:
        claim: dict[str, Any] = {
            "id": "circuit_faithful", "kind": "faithfulness", "method": "mean", "targets": ["circuit"],
            "data": [*first], "expect": f"recovered >= {math.floor(0.8 * d.faithfulness * 20) / 20:g}",
            "description": f"the union circuit: faithfulness {d.faithfulness:.3g} on the {d.split} rows",
        }  # fmt: skip
        if _random_circuits(d) >= MIN_RANDOM_CIRCUITS:
            claim["random_baseline"] = {"n": 200}
        claims.append(claim)
    scale = min(run.scale for run in runs)  # measurable against some corruption's effect
    for component, effect in zip(d.components, d.ablation_effects, strict=True):
        if abs(effect) < _MEASURABLE * scale:
            continue
        claims.append({
            "id": f"ablate_{component}", "kind": "ablation", "method": "mean", "targets": [component],
            "data": [*first], "expect": _bound(effect, 0.25),
            "description": f"mean ablation {effect:.3g} ({d.split} rows)",
        })  # fmt: skip
    return claims


def _header(d: Discovery, runs: list[Any], edges: list[tuple[KeptEdge, Hits]], names: list[str]) -> list[str]:
    """The comment lines above the YAML: the command, each corruption's summary and edges."""
    spec = d.spec
    head = [
        source_line(d),
        f"# {len(runs)} corruptions, each scored on the same rows; each has its own copies of the templates",
        "# (<template>__<corruption>, tag corrupt_<corruption>) and each edge's path-patching claims run on",
        "# the copies of the corruption(s) that found it. Faithfulness and ablation (mean ablation reads",
        "# clean prompts only, the same in every copy) run once, on the union circuit, over the copies",
        f"# of {runs[0].name}.",
    ]
    for i, run in enumerate(runs):
        found = [
            name for name, (_, hits) in zip(names, edges, strict=True) if any(j == i for j, _, _ in hits)
        ]
        head += [
            f"# {run.name}: {_describe(run, spec)}.",
            f"#   {run.scored.summary}",
            f"#   found: {', '.join(found) or 'nothing'}",
        ]
    return head + threshold_lines(d)


def render_union(d: Discovery, runs: list[Any], edges: list[tuple[KeptEdge, Hits]], output: Path) -> str:
    """The hypothesis YAML text for ``output`` (file references relative to its folder)."""
    spec = d.spec
    names = [f"e{i + 1:02d}" for i in range(len(edges))]
    description = (
        f"Circuit discovered in {spec.name} under {len(runs)} corruptions "
        f"({len(edges)} edges, {len(d.components)} components)."
    )
    doc = hypothesis_doc(d, description, output)
    doc["data"].pop("corrupt", None)  # each template copy carries its own
    doc["data"]["templates"] = _templates(spec, runs)
    body = dump(doc)
    paths = ["paths:"] if edges else []
    for name, (edge, hits) in zip(names, edges, strict=True):
        found = "; ".join(
            f"{runs[i].name}: score {hit.score:.4g}, path patching ({d.split}) {effect:.4g}"
            for i, hit, effect in hits
        )
        paths.append(f'  {name}: "{edge.path}"  # {found}')
    claims = dump({"claims": _claims(d, runs, edges, names)})
    return "\n".join([*_header(d, runs, edges, names), body.rstrip(), *paths, claims.rstrip()]) + "\n"
