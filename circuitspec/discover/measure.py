"""What the emitted claims' thresholds are set from: the engine's own measurements on the
exploration prompts (path patching of each kept edge, mean ablation of each component).

Thresholds are never set from the gradient estimates: an estimate may be off (saturation,
interactions), the measurement is what ``verify`` will repeat on the held-out prompts.
"""

from __future__ import annotations

from typing import Any

from circuitspec.spec.nodes import parse_node

from .prune import KeptEdge

__all__ = ["ablation_effects", "edge_effects"]


def edge_effects(ctx: Any, edges: list[KeptEdge]) -> list[float]:
    """Mean path-patching effect (patched − clean metric, noising, MLPs frozen) of each edge alone."""
    from circuitspec.engine.paths import path_patch_edges

    if not edges:
        return []
    pairs = []
    for edge in edges:
        sender, receiver = (part.strip() for part in edge.path.split("->"))
        pairs.append((parse_node(sender), parse_node(receiver)))
    patched, base, _ = path_patch_edges(ctx, pairs)
    return [float((row - base).float().mean()) for row in patched]


def ablation_effects(ctx: Any, names: list[str]) -> list[float]:
    """Mean effect (ablated − clean metric) of ablating each component alone at every position."""
    from circuitspec.engine.interventions.ablation import ablate_circuits
    from circuitspec.engine.sites import resolve_site

    if not names:
        return []
    circuits = [[resolve_site(parse_node(name), ctx.prompts, ctx.adapter.arch)] for name in names]
    ablated = ablate_circuits(ctx, circuits, "mean")
    clean = ctx.metric(ctx.clean()[0], ctx.prompts).float().cpu()
    return [float((row - clean).mean()) for row in ablated]
