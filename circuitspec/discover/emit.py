"""The discovered circuit as a hypothesis YAML that ``circuitspec validate`` accepts and ``verify``
checks on the held-out rows: the source's model and data, one path per kept edge, and claims whose
thresholds come from the engine's measurements on the exploration rows (:mod:`.measure`):

* ``behaviour``: the clean prompts' mean logit difference is positive (the model does the task);
* ``path_patching`` per kept edge: the edge alone moves the metric by at least half of what it did
  on the exploration rows (edges without a measurable effect there get no claim, a comment says so);
* ``faithfulness`` of the circuit's heads and MLPs (everything else mean-ablated): at least 0.8 of
  the exploration value, against random circuits of the same shape when there are enough of them;
* ``ablation`` (mean) per component with a measurable effect: a quarter of its exploration effect
  (the mean it ablates to is taken over each split's own prompts, so it moves more between splits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .prune import KeptEdge

__all__ = [
    "MIN_RANDOM_CIRCUITS", "Discovery", "dump", "hypothesis_doc", "render", "source_line", "threshold_lines",
]  # fmt: skip

MIN_RANDOM_CIRCUITS = 200  # fewer distinct same-shape circuits than this: no random baseline
_MEASURABLE = 0.02  # share of the total effect below which a measured effect is "none"


@dataclass
class Discovery:
    """Everything the YAML is written from."""

    source: Path
    spec: Any  # the source Hypothesis
    base_dir: Path
    split_added: dict[str, float] | None  # the split added to a hypothesis that had none
    command: str
    summary: str  # how edges were scored and kept, one line
    edges: list[KeptEdge]
    edge_effects: list[float]
    components: list[str]
    ablation_effects: list[float]
    faithfulness: float
    clean: float
    corrupt: float
    shape: tuple[int, int]  # (n_layers, n_heads): how many random circuits exist
    notes: list[str] = field(default_factory=list)
    split: str = "explore"  # the rows the thresholds were set on (all: no held-out rows)


def _place(path: str, base_dir: Path, out_dir: Path) -> tuple[str, bool]:
    """A file the source names, as the output file must name it: (text, outside the output's folder)."""
    full = (base_dir / path).resolve()
    try:
        return full.relative_to(out_dir).as_posix(), False
    except ValueError:
        return str(full), True


def _model_and_data(d: Discovery, out_dir: Path) -> dict[str, Any]:
    """The source's model, models and data blocks, file references rewritten for the output folder."""
    spec = d.spec
    model = spec.model.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    for key in ("path", "gguf"):
        if model.get(key):
            model[key] = _place(model[key], d.base_dir, out_dir)[0]
    for dictionary in model.get("dictionaries", {}).values():
        if dictionary.get("path"):
            dictionary["path"] = _place(dictionary["path"], d.base_dir, out_dir)[0]
    data = spec.data.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    data["split"] = d.split_added or spec.data.split.model_dump(mode="json")
    if data.get("file"):
        data["file"], outside = _place(data["file"], d.base_dir, out_dir)
        if outside:
            data["allow_outside"] = True
    out: dict[str, Any] = {"model": model}
    if spec.models:
        out["models"] = {
            k: m.model_dump(mode="json", exclude_defaults=True, by_alias=True) for k, m in spec.models.items()
        }
    out["data"] = data
    return out


def _bound(effect: float, share: float = 0.5) -> str:
    """``mean < -4`` / ``mean > 0.8``: ``share`` of the measured effect, rounded toward zero."""
    half = math.trunc(effect * share * 1000) / 1000
    return f"mean < {half:g}" if effect < 0 else f"mean > {half:g}"


def _random_circuits(d: Discovery) -> int:
    """How many distinct same-shape circuits the random baseline draws from."""
    n_layers, n_heads = d.shape
    heads = sum(1 for c in d.components if not c.startswith("MLP"))
    return (n_layers * n_heads) ** heads * n_layers ** (len(d.components) - heads)


def _claims(d: Discovery, names: list[str]) -> list[dict[str, Any]]:
    """Claims on the held-out rows, thresholds from the exploration measurements."""
    scale = abs(d.clean - d.corrupt)
    claims: list[dict[str, Any]] = [
        {
            "id": "does_task",
            "kind": "behaviour",
            "description": "The clean prompts' answers win.",
            "expect": "mean > 0",
        }
    ]
    for name, edge, effect in zip(names, d.edges, d.edge_effects, strict=True):
        if abs(effect) < _MEASURABLE * scale:
            continue
        claims.append({
            "id": f"edge_{name}", "kind": "path_patching", "targets": [name], "expect": _bound(effect),
            "description": f"{edge.path}: score {edge.score:.3g}, path patching {effect:.3g} ({d.split})",
        })  # fmt: skip
    if d.components and d.faithfulness >= 0.125:
        claim: dict[str, Any] = {
            "id": "circuit_faithful", "kind": "faithfulness", "method": "mean", "targets": ["circuit"],
            "expect": f"recovered >= {math.floor(0.8 * d.faithfulness * 20) / 20:g}",
            "description": f"faithfulness {d.faithfulness:.3g} on the {d.split} rows",
        }  # fmt: skip
        if _random_circuits(d) >= MIN_RANDOM_CIRCUITS:
            claim["random_baseline"] = {"n": 200}
        claims.append(claim)
    for component, effect in zip(d.components, d.ablation_effects, strict=True):
        if abs(effect) < _MEASURABLE * scale:
            continue
        claims.append({
            "id": f"ablate_{component}", "kind": "ablation", "method": "mean", "targets": [component],
            "expect": _bound(effect, 0.25), "description": f"mean ablation {effect:.3g} ({d.split} rows)",
        })  # fmt: skip
    return claims


def source_line(d: Discovery) -> str:
    """The header's first line: where the file came from, on one line whatever the names."""
    return " ".join(f"# Discovered from {d.source} by `{d.command}`.".split())


def threshold_lines(d: Discovery) -> list[str]:
    """The header's closing lines: which rows set the thresholds, and the discovery's notes."""
    return [
        f"# Thresholds were set on the {d.split} rows (engine measurements, not the gradient scores);",
        "# `circuitspec verify` checks them on the other split's rows."
        if d.split != "all"
        else "# every row was used: `circuitspec verify` has no held-out rows to check them on.",
        *(f"# {note}" for note in d.notes),
    ]


def hypothesis_doc(d: Discovery, description: str, output: Path) -> dict[str, Any]:
    """The emitted hypothesis up to its paths: name, description, model, data, split, seed, nodes."""
    doc: dict[str, Any] = {"version": 1, "name": f"{d.spec.name}_discovered", "description": description}
    doc.update(_model_and_data(d, output.parent.resolve()))
    if d.split != "all":
        doc["thresholds_set_on"] = d.split
    if d.spec.seed:
        doc["seed"] = d.spec.seed
    if d.components:
        doc["nodes"] = {"circuit": list(d.components)}
    return doc


def dump(value: Any) -> str:
    """YAML as the emitted files write it (keys in order, unicode kept, lines up to 100)."""
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100)


def render(d: Discovery, output: Path) -> str:
    """The hypothesis YAML text for ``output`` (file references relative to its folder)."""
    names = [f"e{i + 1:02d}" for i in range(len(d.edges))]
    head = [source_line(d), f"# {d.summary}", *threshold_lines(d)]
    description = (
        f"Circuit discovered in {d.spec.name} ({len(d.edges)} edges, {len(d.components)} components)."
    )
    body = dump(hypothesis_doc(d, description, output))
    paths = ["paths:"] if d.edges else []
    for name, edge, effect in zip(names, d.edges, d.edge_effects, strict=True):
        paths.append(
            f'  {name}: "{edge.path}"  # score {edge.score:.4g}, path patching ({d.split}) {effect:.4g}'
        )
    claims = dump({"claims": _claims(d, names)})
    return "\n".join([*head, body.rstrip(), *paths, claims.rstrip()]) + "\n"
