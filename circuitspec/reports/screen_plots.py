"""A screen claim's heatmap: every cell's statistic on the grid, marked by what the verdict read.

Built from the outcome (its ``points`` and ``details["screen"]``, written by ``stats/screens.py``) as a
:class:`~circuitspec.measurement.HeadGrid` drawn by the ordinary heatmap, plus a mark per cell:
``✓`` a named cell that clears, ``✗`` a cell against the expectation (a named cell that misses, an
unnamed one that clears), ``?`` a named cell whose interval straddles, ``·`` any other named cell.
"""

from __future__ import annotations

import math
from typing import Any

from circuitspec.measurement import HeadGrid
from circuitspec.stats.outcome import ClaimOutcome

__all__ = ["screen_plot"]


def _mark(named: bool, state: str, which: str) -> str:
    if state == "clears":
        return "✓" if named else "✗"
    if not named:
        return ""
    if which == "none_outside":
        return "·"
    return "✗" if state == "misses" else "?"


def screen_plot(outcome: ClaimOutcome) -> dict[str, Any] | None:
    """The heatmap plot data of a screen outcome, or None when it has no judged cells."""
    info = outcome.details.get("screen")
    if not info or not outcome.points or "positions" not in info:
        return None
    positions = [tuple(p) for p in info["positions"]]
    rows = list(dict.fromkeys(r for r, _ in positions))
    cols = list(dict.fromkeys(c for _, c in positions))
    values = [[math.nan] * len(cols) for _ in rows]
    marks = []
    named, states = set(info.get("named", [])), info.get("states", {})
    for point, (row, col) in zip(outcome.points, positions, strict=False):
        i, j = rows.index(row), cols.index(col)
        values[i][j] = point.estimate
        mark = _mark(str(point.x) in named, states.get(str(point.x), ""), info.get("which", "only"))
        if mark:
            marks.append([i, j, mark])
    title = f"{info.get('cell_expectation', outcome.statistic)} per cell ({info.get('cell_family', 'holm')})"
    grid = HeadGrid(values, title=title, rows=rows, cols=cols)
    return {  # the heatmap plotdata.payload_plot makes of a HeadGrid, with the marks and the axis names
        "type": "heatmap",
        "title": grid.title,
        "rows": grid.row_labels(),
        "cols": grid.col_labels(),
        "values": grid.values,
        "xlabel": "head" if all(c.startswith("H") for c in cols) else "position",
        "ylabel": "layer",
        "marks": marks,
        "of": info.get("of"),
        "cell_statistic": info.get("cell_statistic", "mean"),
    }
