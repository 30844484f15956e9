"""Draw the plot data of ``plotdata.py`` as inline SVG with matplotlib (no pyplot state).

SVG, not PNG: crisp on any screen, and smaller for these plots (text stays text; ``svg_inline``).
Axis titles come from the plot data (``x_axis`` / ``y_axis``: the quantity and its unit, falling
back to the short ``xlabel`` / ``ylabel``); the expectation's threshold is drawn where the data
carries a ``guide``. Heatmap cells are one vector mesh, each cell with a hover ``<title>``
("L3H5: 0.12", "query ' John' → key ' Mary': 0.41"). Axes are placed by margins computed from
the labels' lengths rather than by a layout engine (tight or constrained layout measured 30–45% of
the drawing time: they lay every text out twice), and titles sit at a fixed height.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .svg_inline import figure_svg, svg_style

__all__ = ["render_svg"]

_BLUE = "#3b6fb6"
_ORANGE = "#d9822b"
_GREY = "#8a8f98"
_GUIDE = "#b03a2e"
_WRAP = 46  # characters per line of an axis title
_CHAR = 0.075  # inches per character of 10 px DejaVu Sans (margins are set from label lengths)


def _floats(values: list[Any]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def _figure(width: float = 6.4, height: float = 3.4) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height))
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#e4e6ea", linewidth=0.8)
    axes.set_axisbelow(True)
    return figure, axes


def _guide(axes: Any, plot: dict[str, Any], vertical: bool = False) -> None:
    guide = plot.get("guide") or {}
    line = axes.axvline if vertical else axes.axhline
    span = axes.axvspan if vertical else axes.axhspan
    if guide.get("threshold") is not None:
        label = _wrap(guide.get("label") or f"expected {guide.get('op', '')} {guide['threshold']:g}", 30)
        style = {"color": _GUIDE, "linestyle": "--", "linewidth": 1.4, "label": label, "zorder": 4}
        if guide.get("bar") is not None:  # the threshold on one bar only (the intervened run)
            bar = guide["bar"]
            axes.hlines(guide["threshold"], bar - 0.45, bar + 0.45, **style)
        else:
            line(guide["threshold"], **style)
    elif guide.get("margin") is not None:
        m = guide["margin"]
        span(-m, m, color=_GUIDE, alpha=0.08, label=f"expected within ±{m:g}")


def _error(estimates: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray | None:
    if np.all(np.isnan(low)) or np.all(np.isnan(high)):
        return None
    lower = np.nan_to_num(estimates - low, nan=0.0).clip(min=0)
    upper = np.nan_to_num(high - estimates, nan=0.0).clip(min=0)
    return np.vstack([lower, upper])


def _bars(plot: dict[str, Any]) -> Figure:
    labels = [str(label) for label in plot["labels"]]
    estimates = _floats(plot["estimates"])
    figure, axes = _figure(max(4.0 if plot["type"] == "bars" else 5.2, min(11.0, 1.6 + 0.55 * len(labels))))
    colours = [_BLUE if (e >= 0 or math.isnan(e)) else _ORANGE for e in estimates]
    axes.bar(
        range(len(labels)),
        np.nan_to_num(estimates),
        color=colours,
        width=0.65,
        yerr=_error(estimates, _floats(plot["low"]), _floats(plot["high"])),
        ecolor="#222",
        capsize=4,
    )
    tilt = len(labels) > 6 or max(map(len, labels), default=0) > 12
    axes.set_xticks(range(len(labels)), labels, rotation=30 if tilt else 0, ha="right" if tilt else "center")
    axes.set_xlim(-0.5 - 0.5 / len(labels) if labels else -1, len(labels) - 0.5 + 0.5 / max(1, len(labels)))
    axes.axhline(0, color="#444", linewidth=0.8)
    _guide(axes, plot)
    return figure


def _sweep(plot: dict[str, Any]) -> Figure:
    x = _floats(plot["x"])
    estimates, low, high = _floats(plot["estimates"]), _floats(plot["low"]), _floats(plot["high"])
    order = np.argsort(x)
    figure, axes = _figure()
    if not np.all(np.isnan(low)):
        level = plot.get("ci_level")
        label = f"{level:.0%} CI" if level else "CI"
        axes.fill_between(
            x[order], low[order], high[order], color=_BLUE, alpha=0.18, linewidth=0, label=label
        )
    axes.plot(x[order], estimates[order], marker="o", color=_BLUE, label=plot.get("ylabel"))
    if plot.get("log_x"):
        axes.set_xscale("symlog", linthresh=min(abs(v) for v in x if v != 0))
        # plain numbers: the log formatter writes mathtext ($10^{2}$), which svg_style leaves unparsed
        axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes.axhline(0, color="#444", linewidth=0.8)
    _guide(axes, plot)
    return figure


def _cells(
    axes: Any, values: np.ndarray, cmap: str, norm: Normalize, name: Callable[[int, int], str]
) -> dict[str, list[str]]:
    """The cells as one mesh (vector: crisp; one artist: fast), row by row; each cell's hover text
    'name: value' goes to the mesh's gid (``svg_inline`` gives each drawn cell its own ``<title>``)."""
    colours = colormaps[cmap].with_extremes(bad="#eeeeee")
    rows, cols = values.shape
    edges_x, edges_y = np.arange(cols + 1) - 0.5, np.arange(rows + 1) - 0.5
    mesh = axes.pcolormesh(
        edges_x, edges_y, np.ma.masked_invalid(values), cmap=colours, norm=norm, gid="cells"
    )
    mesh.set_clip_on(False)  # the cells fill the axes exactly: no clip path per cell (a fifth of the bytes)
    axes.set_xlim(-0.5, cols - 0.5)
    axes.set_ylim(rows - 0.5, -0.5)
    return {"cells": [f"{name(i, j)}: {v:.4g}" for (i, j), v in np.ndenumerate(values)]}


def _heatmap(plot: dict[str, Any], tokens: bool = False) -> tuple[Figure, dict[str, list[str]]]:
    values = np.array(plot["pattern" if tokens else "values"], dtype=float)
    rows = [str(t) for t in (plot["tokens"] if tokens else plot["rows"])]
    cols = [str(t) for t in (plot["tokens"] if tokens else plot["cols"])]
    side = max(3.2, min(6.0, 1.8 + (0.2 if tokens else 0.3) * max(values.shape)))
    figure = Figure(figsize=(side + 1.4, side))
    axes = figure.add_subplot()
    rotated = max(map(len, cols), default=0) * _CHAR * 0.8 if tokens else 0.2
    _margins(figure, max(map(len, rows), default=0) * _CHAR * 0.8 + 0.55, rotated + 0.45, 0.4, 1.25)
    finite = values[np.isfinite(values)]
    if tokens:
        norm, cmap = Normalize(0, max(1e-12, float(finite.max()) if finite.size else 1.0)), "Blues"
        axes.set_xlabel("key (attended to)")
        axes.set_ylabel("query (attends from)")
        titles = _cells(axes, values, cmap, norm, lambda i, j: f"query {rows[i]!r} → key {cols[j]!r}")
    else:
        bound = float(np.abs(finite).max()) if finite.size else 1.0
        norm, cmap = Normalize(-(bound or 1.0), bound or 1.0), "RdBu_r"
        titles = _cells(axes, values, cmap, norm, lambda i, j: f"{rows[i]}{cols[j]}")
        for i, j, mark in plot.get("marks", []):  # screens: which cells the verdict read as what
            halo = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
            axes.text(j, i, mark, ha="center", va="center", fontsize=9, color="black", bbox=halo)
    axes.set_xticks(range(len(cols)), cols, rotation=90 if tokens else 0, fontsize=8)
    axes.set_yticks(range(len(rows)), rows, fontsize=8)
    box = axes.get_position()  # the colour bar right of the cells, placed by hand (see _margins)
    width = 0.15 / figure.get_figwidth()
    bar_axes = figure.add_axes((box.x1 + width, box.y0 + 0.1 * box.height, width, 0.8 * box.height))
    bar = figure.colorbar(ScalarMappable(norm, cmap), cax=bar_axes)
    if plot.get("value_axis"):
        bar.set_label(_wrap(plot["value_axis"], 36), fontsize=8)
    return figure, titles


def _histogram(plot: dict[str, Any]) -> Figure:
    edges = np.array(plot["edges"], dtype=float)
    counts = np.array(plot["counts"], dtype=float)
    figure, axes = _figure()
    axes.stairs(counts, edges, fill=True, color=_GREY, alpha=0.7, label=plot.get("ylabel"))
    if plot["type"] == "baseline_histogram":
        observed = plot.get("observed")
        if observed is not None and math.isfinite(observed):
            axes.axvline(observed, color=_BLUE, linewidth=2.2, label=f"hypothesis = {observed:.3g}")
    else:
        if plot.get("low") is not None and plot.get("high") is not None:
            axes.axvspan(plot["low"], plot["high"], color=_BLUE, alpha=0.2, label="CI of estimate")
        if plot.get("estimate") is not None and math.isfinite(plot["estimate"]):
            label = f"{plot.get('statistic', 'estimate')} = {plot['estimate']:.3g}"
            axes.axvline(plot["estimate"], color=_BLUE, linewidth=2, label=label)
    _guide(axes, plot, vertical=True)
    return figure


_RENDERERS: dict[str, Callable[[dict[str, Any]], Figure | tuple[Figure, dict[str, list[str]]]]] = {
    "bars": _bars,
    "runs": _bars,
    "sweep": _sweep,
    "heatmap": _heatmap,
    "attention": lambda plot: _heatmap(plot, tokens=True),
    "baseline_histogram": _histogram,
    "distribution": _histogram,
}


def _wrap(text: str, width: int = _WRAP) -> str:
    return textwrap.fill(str(text), width)


def _margins(figure: Figure, left: float, bottom: float, top: float, right: float) -> None:
    """Place the axes by margins in inches (see the module docstring: no layout engine)."""
    width, height = figure.get_size_inches()
    figure.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height
    )


def _lines(text: str) -> int:
    return text.count("\n") + 1 if text else 0


def _label_axes(figure: Figure, axes: Any, plot: dict[str, Any]) -> None:
    """Titles, legend, and (for the plots of ``_figure``) margins that fit them."""
    title = _wrap(plot.get("title", ""), 70)
    axes.set_title(title, fontsize=10, loc="left")
    xlabel = _wrap(plot.get("x_axis") or plot.get("xlabel", ""), 70)
    ylabel = _wrap(plot.get("y_axis") or plot.get("ylabel", ""))
    if plot["type"] not in ("attention",):
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel, fontsize=9)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8, frameon=False)
    if plot["type"] in ("heatmap", "attention"):
        return
    ticks = [t.get_text() for t in axes.get_xticklabels()] if plot["type"] in ("bars", "runs") else []
    tilted = any(t.get_rotation() for t in axes.get_xticklabels()) if ticks else False
    below = 0.5 * _CHAR * max(map(len, ticks), default=0) + 0.1 if tilted else 0.25
    left = 0.65 + 0.16 * _lines(ylabel)
    _margins(figure, left, below + 0.17 * _lines(xlabel) + 0.12, 0.17 * _lines(title) + 0.15, 0.2)


def render_svg(plot: dict[str, Any], ident: str = "plot") -> str:
    """One plot (a ``plotdata`` dict) as an inline ``<svg>``; ``ident`` keeps its ids unique in a page."""
    with svg_style():
        drawn = _RENDERERS[plot["type"]](plot)
        figure, titles = drawn if isinstance(drawn, tuple) else (drawn, {})
        _label_axes(figure, figure.axes[0], plot)
        label = str(plot.get("title") or plot["type"])
        return figure_svg(figure, f"{ident}-", label, titles, fill=False)
