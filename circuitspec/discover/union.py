"""Discovery under several corruptions in one run (``--corrupt file --corrupt '{shuffle: [w_ori]}'``).

A corruption finds only the part of a circuit whose inputs it changes (the toy model: the file's
label corruption finds the label readers, a shuffled word the word carriers). Each corruption is
scored on the same exploration rows with the same method and pruning rule; the emitted hypothesis
holds the union of the kept edges, gives every corruption its own copies of the templates
(``sub_contextual__shuffle_w_ori``, tagged ``corrupt_shuffle_w_ori``) and runs each edge's
path-patching claim on the copies of the corruption(s) that found it, with that corruption's
measured effect as threshold. Mean-ablation claims (faithfulness, ablation) read only the clean
prompts, which every copy shares, so they are stated once, on the union circuit, over the first
corruption's copies (:mod:`.emit_union`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError

from .emit import Discovery
from .prune import KeptEdge
from .scoring import DiscoveryResult, Scored, header_notes, measure_circuit, score_session

__all__ = ["CorruptionRun", "corruption_names", "discover_union", "union_edges"]


@dataclass
class CorruptionRun:
    """One corruption's discovery: its name (template-copy suffix), the ``--corrupt`` text and scores."""

    name: str
    text: str | None  # None: the hypothesis file's own corruption
    corruption: Any  # CorruptionSpec, None for the file's own
    scored: Scored

    @property
    def tag(self) -> str:
        """The tag its template copies carry (claims select them with ``data: [tag]``)."""
        return f"corrupt_{self.name}"

    @property
    def scale(self) -> float:
        """``|clean − corrupted|`` under this corruption (what thresholds are shares of)."""
        return abs(self.scored.attribution.clean - self.scored.attribution.corrupt)


def corruption_names(texts: list[str], corruptions: list[Any]) -> list[str]:
    """A short name per corruption: ``file``, ``shuffle_w_ori``, ``set_s_con`` (one line if repeated)."""
    names: list[str] = []
    seen: dict[str, str] = {}
    for text, corruption in zip(texts, corruptions, strict=True):
        key = "file" if corruption is None else repr(corruption.model_dump(mode="json"))
        if key in seen:
            raise CircuitSpecError(f"--corrupt {text!r}: the same corruption as --corrupt {seen[key]!r}")
        seen[key] = text
        if corruption is None:
            name = "file"
        else:
            parts = [f"shuffle_{'_'.join(corruption.shuffle)}"] if corruption.shuffle else []
            parts += [f"set_{'_'.join(corruption.set)}"] if corruption.set else []
            name = re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))
        base, i = name, 2
        while name in names:  # same slots, different values
            name, i = f"{base}_{i}", i + 1
        names.append(name)
    return names


def union_edges(runs: list[CorruptionRun]) -> list[tuple[KeptEdge, list[tuple[int, KeptEdge, float]]]]:
    """Every kept edge once (by its path), strongest share of its corruption's effect first, with
    (run index, the edge as that run kept it, its measured effect) for each run that kept it."""
    found: dict[str, list[tuple[int, KeptEdge, float]]] = {}
    for i, run in enumerate(runs):
        for edge, effect in zip(run.scored.kept, run.scored.effects, strict=True):
            found.setdefault(edge.path, []).append((i, edge, effect))

    def strength(hits: list[tuple[int, KeptEdge, float]]) -> float:
        return max(abs(edge.score) / runs[i].scale for i, edge, _ in hits)

    ordered = sorted(found.values(), key=strength, reverse=True)  # stable: ties keep the run order
    return [(hits[0][1], hits) for hits in ordered]


def _merged_ranking(runs: list[CorruptionRun], kept: list[KeptEdge]) -> list[KeptEdge]:
    """The curve's ranking: the kept union first, then every other nonzero edge by its largest share
    of a corruption's effect (mean-ablation faithfulness reads no corrupted prompt)."""
    paths = {edge.path for edge in kept}
    rest = sorted(
        ((abs(edge.score) / run.scale, edge) for run in runs for edge in run.scored.ranked),
        key=lambda item: item[0],
        reverse=True,
    )
    for _, edge in rest:
        if edge.path not in paths:
            paths.add(edge.path)
            kept = [*kept, edge]
    return kept


def _score_each(
    path: str | Path, texts: list[str], corruptions: list[Any], options: dict[str, Any]
) -> list[CorruptionRun]:
    """Open a session per corruption (the model loads once) and score it."""
    from circuitspec.engine.progress import phase

    from .session import open_session

    names = corruption_names(texts, corruptions)
    runs: list[CorruptionRun] = []
    loaded = options["loaded_model"]
    for name, text, corruption in zip(names, texts, corruptions, strict=True):
        with phase(f"corruption {name}: loading the exploration prompts", "loaded"):
            session = open_session(
                path, options["split"], options["templates"], loaded, options["test_fraction"], corruption
            )
        loaded = session.loaded
        scored = score_session(
            session, options["score"], options["method"], options["steps"], options["top_k"],
            options["threshold"],
        )  # fmt: skip
        runs.append(CorruptionRun(name, None if corruption is None else text, corruption, scored))
    return runs


def discover_union(
    path: str | Path, texts: list[str], corruptions: list[Any], **options: Any
) -> DiscoveryResult:
    """:func:`.run.discover` with several corruptions: one hypothesis holding every corruption's edges."""
    from .emit_union import render_union

    runs = _score_each(path, texts, corruptions, options)
    first = runs[0].scored
    edges = union_edges(runs)
    kept = [edge for edge, _ in edges]
    ctx, n_edges = first.session.ctx, int(first.attribution.graph.valid.sum())
    circuit = measure_circuit(ctx, kept, _merged_ranking(runs, kept), n_edges)
    curve = circuit.curve
    timings = {
        "scoring": sum(run.scored.seconds for run in runs),
        "measuring": sum(run.scored.measuring for run in runs) + circuit.seconds,
    }
    session, arch = first.session, ctx.adapter.arch
    found = Discovery(
        source=Path(path), spec=session.hypothesis.spec, base_dir=Path(session.hypothesis.base_dir),
        split_added=session.split_added, command=options["command"],
        summary=f"{len(kept)} edges kept under {len(runs)} corruptions ({', '.join(r.name for r in runs)}).",
        edges=kept, edge_effects=[hits[0][2] for _, hits in edges], components=circuit.components,
        ablation_effects=circuit.ablations, faithfulness=circuit.faithfulness,
        clean=first.attribution.clean, corrupt=first.attribution.corrupt, shape=(arch.n_layers, arch.n_heads),
        notes=header_notes(session.split_added),
        split=session.split,
    )  # fmt: skip
    curve.update({
        "method": first.attribution.method, "requested": options["method"],
        "steps": first.attribution.steps, "kept": len(kept),
        "corruptions": {run.name: {"text": run.text or "file", "kept": len(run.scored.kept)} for run in runs},
        "ranking": "the kept union, then the rest by |score| / |clean - corrupted| of their corruption",
    })  # fmt: skip
    text = render_union(found, runs, edges, options["output"])
    return DiscoveryResult(text, curve, first.attribution, kept, found, timings, runs)
