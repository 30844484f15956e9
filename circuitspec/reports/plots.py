"""Draw the plot data of ``plotdata.py`` as PNG bytes with matplotlib (Agg, no pyplot state)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["render_plot"]

_BLUE = "#3b6fb6"
_ORANGE = "#d9822b"
_GREY = "#8a8f98"
_GUIDE = "#b03a2e"


def _floats(values: list[Any]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def _figure(width: float = 6.4, height: float = 3.2) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
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
        line(
            guide["threshold"],
            color=_GUIDE,
            linestyle="--",
            linewidth=1.2,
            label=f"expected {guide.get('op', '')} {guide['threshold']:g}",
        )
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
    figure, axes = _figure(max(4.0, min(11.0, 1.2 + 0.55 * len(labels))))
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
    axes.set_xticks(
        range(len(labels)),
        labels,
        rotation=30 if len(labels) > 6 or max(map(len, labels), default=0) > 12 else 0,
        ha="right" if len(labels) > 6 else "center",
    )
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
        axes.fill_between(
            x[order],
            low[order],
            high[order],
            color=_BLUE,
            alpha=0.18,
            linewidth=0,
            label=f"{level:.0%} CI" if level else "CI",
        )
    axes.plot(x[order], estimates[order], marker="o", color=_BLUE, label=plot.get("ylabel"))
    if plot.get("log_x"):
        axes.set_xscale("symlog", linthresh=min(abs(v) for v in x if v != 0))
    axes.axhline(0, color="#444", linewidth=0.8)
    _guide(axes, plot)
    return figure


def _heatmap(plot: dict[str, Any], tokens: bool = False) -> Figure:
    values = np.array(plot["pattern" if tokens else "values"], dtype=float)
    rows = plot["tokens"] if tokens else plot["rows"]
    cols = plot["tokens"] if tokens else plot["cols"]
    side = max(3.2, min(7.5, 1.8 + 0.38 * max(values.shape)))
    figure = Figure(figsize=(side + 1.4, side), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if tokens:
        image = axes.imshow(values, cmap="Blues", vmin=0, vmax=max(1e-12, float(np.nanmax(values))))
        axes.set_xlabel("key (attended to)")
        axes.set_ylabel("query (attends from)")
    else:
        bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
        image = axes.imshow(values, cmap="RdBu_r", vmin=-bound or -1, vmax=bound or 1, aspect="auto")
    axes.set_xticks(range(len(cols)), cols, rotation=90 if tokens else 0, fontsize=8)
    axes.set_yticks(range(len(rows)), rows, fontsize=8)
    figure.colorbar(image, ax=axes, shrink=0.8)
    return figure


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
            axes.axvline(
                plot["estimate"],
                color=_BLUE,
                linewidth=2,
                label=f"{plot.get('statistic', 'estimate')} = {plot['estimate']:.3g}",
            )
    _guide(axes, plot, vertical=True)
    return figure


_RENDERERS: dict[str, Callable[[dict[str, Any]], Figure]] = {
    "bars": _bars,
    "runs": _bars,
    "sweep": _sweep,
    "heatmap": _heatmap,
    "attention": lambda plot: _heatmap(plot, tokens=True),
    "baseline_histogram": _histogram,
    "distribution": _histogram,
}


def render_plot(plot: dict[str, Any]) -> bytes:
    """One plot (a ``plotdata`` dict) as PNG bytes."""
    figure = _RENDERERS[plot["type"]](plot)
    axes = figure.axes[0]
    axes.set_title(plot.get("title", ""), fontsize=10, loc="left")
    if plot["type"] not in ("attention",):
        axes.set_xlabel(plot.get("xlabel", ""))
        axes.set_ylabel(plot.get("ylabel", ""))
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8, frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
