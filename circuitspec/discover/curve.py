"""Faithfulness over circuit size (MIB's CPR / CMD style), with circuitspec's faithfulness engine.

For each size k on the grid the circuit is the heads and MLPs of the k highest-scoring edges;
everything else is mean-ablated (``engine.interventions.faithfulness.circuits_only``, all circuits
batched in one edited pass) and faithfulness is the ratio of means ``(mean circuit − mean ablated)
/ (mean clean − mean ablated)``. The engine keeps components, not single edges, so an edge's
components count as soon as one of their edges is kept (MIB patches edges; said in the JSON).
CPR is the area under the curve and CMD the area under |1 − f|, trapezoidal over the share of
scored edges, from (0, 0): the empty circuit recovers nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from circuitspec.spec.nodes import parse_node

from .prune import KeptEdge, components

__all__ = ["MIB_SHARES", "faithfulness_curve"]

MIB_SHARES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _grid(n_edges: int, extra: Sequence[int]) -> list[int]:
    """Circuit sizes: MIB's shares of the scored edges (at least one edge each), plus ``extra``."""
    sizes = {max(1, math.ceil(share * n_edges)) for share in MIB_SHARES} | {k for k in extra if k > 0}
    return sorted(k for k in sizes if k <= n_edges)


def faithfulness_curve(
    ctx: Any, ranked: list[KeptEdge], n_edges: int, extra: Sequence[int] = (), method: str = "mean"
) -> dict[str, Any]:
    """Faithfulness at each grid size; ``ranked`` are the nonzero edges strongest first, ``n_edges`` every
    edge scored (zero ones included: they fill the top of the grid with the whole nonzero set)."""
    from circuitspec.engine.interventions.faithfulness import circuits_only, fully_ablated
    from circuitspec.engine.sites import resolve_site

    sizes = _grid(n_edges, extra)
    sets = [components(ranked[:k]) for k in sizes]
    unique = sorted({tuple(s) for s in sets}, key=len)
    arch = ctx.adapter.arch
    circuits = [[resolve_site(parse_node(name), ctx.prompts, arch) for name in s] for s in unique]
    kept = circuits_only(ctx, circuits, method) if circuits else None
    clean = float(ctx.metric(ctx.clean()[0], ctx.prompts).float().mean())
    ablated = float(fully_ablated(ctx, method).mean())
    by_set = (
        {s: (float(kept[i].mean()) - ablated) / (clean - ablated) for i, s in enumerate(unique)}
        if kept is not None
        else {}
    )
    points = [
        {"edges": k, "share": k / n_edges, "components": len(s), "faithfulness": by_set.get(tuple(s), 0.0)}
        for k, s in zip(sizes, sets, strict=True)
    ]
    xs = [0.0, *(p["share"] for p in points)]
    ys = [0.0, *(p["faithfulness"] for p in points)]
    return {
        "method": method,
        "unit": "components (heads, MLPs) of the top-k edges kept; the rest mean-ablated",
        "clean": clean,
        "ablated": ablated,
        "n_edges": n_edges,
        "points": points,
        "cpr": _area(xs, ys),
        "cmd": _area(xs, [abs(1.0 - y) for y in ys]),
    }


def _area(xs: list[float], ys: list[float]) -> float:
    """Trapezoidal area under ``ys`` over ``xs``."""
    return sum((xs[i + 1] - xs[i]) * (ys[i + 1] + ys[i]) / 2 for i in range(len(xs) - 1))
