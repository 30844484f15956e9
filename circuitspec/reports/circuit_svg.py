"""The report's circuit drawing: an inline, self-contained SVG of the component graph.

Drawn with matplotlib's SVG backend (no Graphviz on CI machines, no pyplot state) from the
JSON-able component graph of ``circuitspec.graph.components.circuit_dict``: one box per component,
columns left to right in forward-pass order (embeddings first, logits last; the heads of one layer
stacked in one column, its MLP in the next), wrapped into bands of :data:`COLUMNS_PER_BAND`
columns so that a 30-layer circuit stays legible at page width. A box is filled with its first
group's colour (a second group colours its border) and the legend names the groups; edges are
arrows labelled ``channel@role``. ``svg_inline.figure_svg`` makes it inline-safe (ids prefixed
``circuit-``, no metadata, width 100% of its container, never wider than drawn) and gives each
component a ``<title>`` (a hover tooltip, no script) listing its roles, groups and node names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from circuitspec.graph.components import merged_edges

from .svg_inline import figure_svg, svg_style

__all__ = ["COLUMNS_PER_BAND", "circuit_svg"]

COLUMNS_PER_BAND = 10
_COLUMN_W, _ROW_H, _BAND_GAP, _LEGEND_H = 1.25, 0.52, 0.35, 0.35  # inches
_FONT = 7.5
_ID_PREFIX = "circuit-"
# tab20's light halves without its grey (kept for components in no group)
_PALETTE = ["#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5"]
_LOOSE_FILL, _LINE = "#ffffff", "#555b66"


@dataclass
class _Layout:
    """Component centres (inches, y down from 0), their column (band-wide index) and the figure's size."""

    at: dict[str, tuple[float, float]]
    column: dict[str, int]
    width: float
    height: float


def _columns(nodes: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Components grouped by forward-pass place (``order``; the logits', null, last), in order."""
    by_order: dict[float, list[dict[str, Any]]] = {}
    for node in nodes:
        order = node.get("order")
        by_order.setdefault(math.inf if order is None else float(order), []).append(node)
    return [by_order[key] for key in sorted(by_order)]


def _layout(nodes: list[dict[str, Any]]) -> _Layout:
    """Columns left to right, wrapped every :data:`COLUMNS_PER_BAND`; a column's boxes centred."""
    columns = _columns(nodes)
    at: dict[str, tuple[float, float]] = {}
    column_of: dict[str, int] = {}
    top = 0.0
    for start in range(0, len(columns), COLUMNS_PER_BAND):
        band = columns[start : start + COLUMNS_PER_BAND]
        rows = max(len(column) for column in band)
        for c, column in enumerate(band):
            offset = (rows - len(column)) / 2
            for r, node in enumerate(column):
                at[str(node["id"])] = ((c + 0.5) * _COLUMN_W, top + (offset + r + 0.5) * _ROW_H)
                column_of[str(node["id"])] = start + c
        top += rows * _ROW_H + _BAND_GAP
    width = min(len(columns), COLUMNS_PER_BAND) * _COLUMN_W
    return _Layout(at, column_of, max(width, 2 * _COLUMN_W), max(top - _BAND_GAP, _ROW_H))


def _colours(nodes: list[dict[str, Any]]) -> dict[str, str]:
    """Group name → colour, groups in order of first appearance (the palette repeats past 9)."""
    groups: list[str] = []
    for node in nodes:
        groups += [g for g in node.get("groups", []) if g not in groups]
    return {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(groups)}


def _tooltip(node: dict[str, Any]) -> str:
    roles = ", ".join(node.get("roles", [])) or "every position"
    groups = ", ".join(node.get("groups", [])) or "none"
    return f"{node['id']}\nroles: {roles}\ngroups: {groups}\nnodes: {', '.join(node.get('members', []))}"


def _label(node: dict[str, Any]) -> str:
    roles = node.get("roles", [])
    return str(node["id"]) + ("\n" + " ".join(f"@{r}" for r in roles) if roles else "")


def _draw_nodes(
    axes: Any, nodes: list[dict[str, Any]], layout: _Layout, colours: dict[str, str]
) -> dict[str, Any]:
    """One text-with-box per component, its SVG group id ``node-<i>``; returns id → text artist."""
    artists: dict[str, Any] = {}
    for i, node in enumerate(nodes):
        groups = node.get("groups", [])
        fill = colours[groups[0]] if groups else _LOOSE_FILL
        border = colours[groups[1]] if len(groups) > 1 else _LINE
        x, y = layout.at[str(node["id"])]
        box = {"boxstyle": "round,pad=0.35", "fc": fill, "ec": border, "lw": 1.6 if len(groups) > 1 else 0.8}
        artists[str(node["id"])] = axes.text(
            x, y, _label(node), ha="center", va="center", fontsize=_FONT, parse_math=False, gid=f"node-{i}",
            bbox=box, zorder=3,
        )  # fmt: skip
    return artists


def _wraps(source: str, target: str, layout: _Layout) -> bool:
    """Whether an edge runs from one band into a later one (drawn from the bottom to the top)."""
    return layout.column[source] // COLUMNS_PER_BAND != layout.column[target] // COLUMNS_PER_BAND


def _label_at(source: str, target: str, layout: _Layout) -> tuple[float, float]:
    """Where an edge's label goes: halfway along it between neighbouring columns; where it crosses
    columns, in the gap just before its target; where it crosses bands, in the gap below its source
    (the gaps are free of boxes)."""
    (x0, y0), (x1, y1) = layout.at[source], layout.at[target]
    if _wraps(source, target, layout):
        t = 0.5 * _ROW_H / (y1 - y0)
        return x0 + t * (x1 - x0), y0 + 0.5 * _ROW_H
    if layout.column[target] - layout.column[source] <= 1:
        return (x0 + x1) / 2, (y0 + y1) / 2
    x = x1 - 0.5 * _COLUMN_W
    return x, y0 + (x - x0) / (x1 - x0) * (y1 - y0)


def _draw_edges(axes: Any, circuit: dict[str, Any], layout: _Layout, artists: dict[str, Any]) -> None:
    """Arrows from a box's right side to a later box's left side, bent more the more columns they
    cross (to pass beside the boxes in between), or from its bottom to the top of a box in a later
    band; one label per text and place.

    Parallel edges arrive merged (``merged_edges``); an edge inside one component (``MLP3.in ->
    MLP3``) is not drawn: its box already stands for both ends.
    """
    placed: list[tuple[str, float, float]] = []
    for source, target, label in merged_edges(circuit):
        if source == target or source not in artists or target not in artists:
            continue
        wraps = _wraps(source, target, layout)
        span = layout.column[target] - layout.column[source]
        bend = 0.0 if wraps else min(0.06 + 0.08 * (span - 1), 0.3)
        into, out_of = ((0.5, 1.0), (0.5, 0.0)) if wraps else ((0.0, 0.5), (1.0, 0.5))
        axes.annotate(
            "", xy=into, xycoords=artists[target], xytext=out_of, textcoords=artists[source],
            arrowprops={"arrowstyle": "-|>", "color": _LINE, "lw": 0.7, "shrinkA": 3.5, "shrinkB": 3.5,
                        "mutation_scale": 7, "connectionstyle": f"arc3,rad={bend:.2f}"},
            zorder=2,
        )  # fmt: skip
        x, y = _label_at(source, target, layout)
        if any(t == label and abs(x - px) < 0.3 and abs(y - py) < 0.12 for t, px, py in placed):
            continue
        placed.append((label, x, y))
        axes.text(
            x, y, label, ha="center", va="center", fontsize=_FONT - 1.5, color="#333844", parse_math=False,
            zorder=4, bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85},
        )  # fmt: skip


def _figure(circuit: dict[str, Any]) -> tuple[Figure, list[dict[str, Any]]]:
    nodes = [n for n in circuit.get("nodes", []) if isinstance(n, dict) and "id" in n]
    layout = _layout(nodes)
    colours = _colours(nodes)
    legend_h = _LEGEND_H if colours else 0.0
    pad = 0.15
    figure = Figure(figsize=(layout.width + 2 * pad, layout.height + 2 * pad + legend_h))
    height = layout.height + 2 * pad + legend_h
    axes = figure.add_axes((0.0, legend_h / height, 1.0, 1.0 - legend_h / height))
    axes.set_xlim(-pad, layout.width + pad)
    axes.set_ylim(layout.height + pad, -pad)
    axes.axis("off")
    artists = _draw_nodes(axes, nodes, layout, colours)
    _draw_edges(axes, circuit, layout, artists)
    if colours:
        handles = [Patch(fc=c, ec=_LINE, lw=0.6, label=g) for g, c in colours.items()]
        legend = figure.legend(
            handles=handles, loc="lower left", ncol=min(len(handles), 6), frameon=False, fontsize=_FONT,
            handlelength=1.2, borderaxespad=0.2, columnspacing=1.2,
        )  # fmt: skip
        for text in legend.get_texts():
            text.set_parse_math(False)
    return figure, nodes


def circuit_svg(circuit: dict[str, Any] | None) -> str | None:
    """Return an inline ``<svg>`` of the component graph (``graph.components.circuit_dict``), or None
    when there is no circuit or it has no components."""
    if not circuit or not circuit.get("nodes"):
        return None
    with svg_style():
        figure, nodes = _figure(circuit)
        titles = {f"node-{i}": _tooltip(node) for i, node in enumerate(nodes)}
        name = str(circuit.get("name") or "")
        label = f"circuit {name}: {len(nodes)} components" if name else f"circuit: {len(nodes)} components"
        return figure_svg(figure, _ID_PREFIX, label, titles)
