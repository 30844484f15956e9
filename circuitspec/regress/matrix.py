"""The regression matrix: claims × checkpoints (statistic, CI, verdict), as JSON, Markdown and HTML.

Built from :class:`ClaimOutcome` lists (the stats → reports contract), so it needs no model; the
HTML page is self-contained, with one plot per claim of the statistic across checkpoints and
its CI band (matplotlib, inline SVG; the x-axis is the training step when checkpoints are numbers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circuitspec.reports.atomic import ReportSet
from circuitspec.stats.outcome import ClaimOutcome, Interval

__all__ = [
    "ACROSS_MODELS",
    "MATRIX_FILES",
    "MATRIX_SCHEMA_VERSION",
    "CheckpointRun",
    "MatrixCell",
    "MatrixRow",
    "RegressionMatrix",
    "build_matrix",
    "checkpoint_steps",
    "plot_claim_svg",
    "print_matrix_table",
    "render_html",
    "render_markdown",
    "write_matrix",
]

MATRIX_SCHEMA_VERSION = 1
ACROSS_MODELS = "across models"  # the column of a `models:` file's cross-model claims (compare/run.py)
VERDICT_COLOURS = {"pass": "#2e7d32", "inconclusive": "#ef8f00", "fail": "#c62828"}


@dataclass
class CheckpointRun:
    """One checkpoint's outcomes and where its report was written."""

    checkpoint: int | str
    outcomes: list[ClaimOutcome]
    report_dir: str | None = None


@dataclass
class MatrixCell:
    estimate: float | None
    ci: Interval | None
    verdict: str
    reason: str = ""


@dataclass
class MatrixRow:
    """One claim across checkpoints; ``cells`` is keyed by ``str(checkpoint)`` (absent: not run)."""

    claim_id: str
    kind: str
    statistic: str
    expectation: str
    cells: dict[str, MatrixCell] = field(default_factory=dict)


@dataclass
class RegressionMatrix:
    hypothesis_name: str
    hypothesis_path: str
    checkpoints: list[int | str]
    rows: list[MatrixRow]
    report_dirs: dict[str, str | None] = field(default_factory=dict)
    axis: str = "checkpoint"  # what a column is: a checkpoint (regress) or a model (a `models:` hypothesis)
    appendix: list[dict[str, Any]] = field(default_factory=list)  # {"title", "rows": [{column: value}]}

    @property
    def span(self) -> str:
        """``7 checkpoints``, ``2 models`` (a column of cross-model claims is not a model)."""
        n = sum(1 for c in self.checkpoints if c != ACROSS_MODELS)
        extra = " and the cross-model claims" if n < len(self.checkpoints) else ""
        return f"{n} {self.axis}{'' if n == 1 else 's'}{extra}"

    @property
    def title(self) -> str:
        """``Regression: name`` across checkpoints, ``Models: name`` side by side."""
        return f"{'Regression' if self.axis == 'checkpoint' else 'Models'}: {self.hypothesis_name}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (floats rounded like report.json, keys sorted when written)."""
        from circuitspec.reports.json_report import jsonable

        body = {
            "schema_version": MATRIX_SCHEMA_VERSION,
            **({} if self.axis == "checkpoint" else {"axis": self.axis}),
            **({"appendix": self.appendix} if self.appendix else {}),
            "hypothesis": {"name": self.hypothesis_name, "path": self.hypothesis_path},
            "checkpoints": [
                {"name": c, "report_dir": self.report_dirs.get(str(c))} for c in self.checkpoints
            ],
            "claims": [
                {
                    "id": row.claim_id,
                    "kind": row.kind,
                    "statistic": row.statistic,
                    "expectation": row.expectation,
                    "cells": [
                        None
                        if (cell := row.cells.get(str(c))) is None
                        else {
                            "checkpoint": c,
                            "estimate": cell.estimate,
                            "ci": cell.ci,
                            "verdict": cell.verdict,
                            "reason": cell.reason,
                        }
                        for c in self.checkpoints
                    ],
                }
                for row in self.rows
            ],
        }
        notes: list[str] = []
        data = jsonable(body, notes)
        data["notes"] = notes
        return data


def build_matrix(
    name: str, path: str, runs: Sequence[CheckpointRun], axis: str = "checkpoint"
) -> RegressionMatrix:
    """Claims (first-seen order) × checkpoints (given order) from each checkpoint's outcomes."""
    rows: dict[str, MatrixRow] = {}
    for run in runs:
        for outcome in run.outcomes:
            row = rows.setdefault(
                outcome.claim_id,
                MatrixRow(outcome.claim_id, outcome.kind, outcome.statistic, outcome.expectation),
            )
            row.cells[str(run.checkpoint)] = MatrixCell(
                outcome.estimate, outcome.ci, outcome.verdict, outcome.reason
            )
    return RegressionMatrix(
        hypothesis_name=name,
        hypothesis_path=path,
        checkpoints=[run.checkpoint for run in runs],
        rows=list(rows.values()),
        report_dirs={str(run.checkpoint): run.report_dir for run in runs},
        axis=axis,
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _cell_text(cell: MatrixCell | None) -> str:
    if cell is None:
        return "-"
    interval = f" [{_number(cell.ci.low)}, {_number(cell.ci.high)}]" if cell.ci else ""
    return f"{cell.verdict} {_number(cell.estimate)}{interval}"


def _cell_lines(cell: MatrixCell | None) -> str:
    """A terminal cell: verdict and estimate, the interval on a second line (narrow columns)."""
    if cell is None:
        return "-"
    interval = f"\n[{_number(cell.ci.low)}, {_number(cell.ci.high)}]" if cell.ci else ""
    return f"{cell.verdict} {_number(cell.estimate)}{interval}"


def render_markdown(matrix: RegressionMatrix) -> str:
    """A Markdown table: one row per claim, one column per checkpoint, ``verdict estimate [CI]``."""
    header = ["claim", "statistic", *[str(c) for c in matrix.checkpoints]]
    lines = [
        f"# {matrix.title}",
        "",
        f"Hypothesis `{matrix.hypothesis_path}` across {matrix.span}. "
        "Each cell: verdict, estimate, [confidence interval].",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in matrix.rows:
        cells = [_cell_text(row.cells.get(str(c))) for c in matrix.checkpoints]
        lines.append("| " + " | ".join([f"`{row.claim_id}`", row.statistic, *cells]) + " |")
    lines.append("")
    lines += appendix_markdown(matrix.appendix)
    for checkpoint in matrix.checkpoints:
        report_dir = matrix.report_dirs.get(str(checkpoint))
        if report_dir:
            lines.append(f"- {matrix.axis} `{checkpoint}`: [{report_dir}/report.md]({report_dir}/report.md)")
    return "\n".join(lines) + "\n"


def appendix_markdown(appendix: list[dict[str, Any]]) -> list[str]:
    """Each appendix table (a title and rows of ``{column: value}``) as Markdown lines."""
    lines: list[str] = []
    for table in appendix:
        columns = list(dict.fromkeys(key for row in table["rows"] for key in row))
        lines += [f"## {table['title']}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in table["rows"]:
            cells = [
                _number(v) if isinstance(v, float) else str(v) for v in (row.get(c, "") for c in columns)
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


_STEP = re.compile(r"^(?:step[_-]?)?0*(\d+)$")


def checkpoint_steps(checkpoints: Sequence[int | str]) -> list[int] | None:
    """Each checkpoint's training step when every one names a number (``100``, ``"step_00100"``),
    else None: then the plot's x-axis is categorical (``"final"``, ``"main"``)."""
    steps = []
    for checkpoint in checkpoints:
        m = _STEP.match(str(checkpoint))
        if isinstance(checkpoint, bool) or m is None:
            return None
        steps.append(int(m[1]))
    return steps


def plot_claim_svg(
    row: MatrixRow, checkpoints: Sequence[int | str], ident: str = "claim", axis: str = "checkpoint"
) -> str:
    """The claim's statistic across checkpoints with its CI band and the expectation's guide, as an
    inline SVG; the x-axis is the training step when every checkpoint is a number."""
    import numpy as np
    from matplotlib.figure import Figure

    from circuitspec.reports.plotdata import expectation_guide
    from circuitspec.reports.svg_inline import figure_svg, svg_style

    cells = [row.cells.get(str(c)) for c in checkpoints]
    steps = checkpoint_steps(checkpoints) if axis == "checkpoint" else None
    x = np.array(steps if steps is not None else range(len(checkpoints)), dtype=float)

    def series(get: Any) -> np.ndarray:
        return np.array([np.nan if c is None or get(c) is None else float(get(c)) for c in cells])

    estimate = series(lambda c: c.estimate)
    low = series(lambda c: c.ci.low if c.ci else None)
    high = series(lambda c: c.ci.high if c.ci else None)
    with svg_style():
        figure = Figure(figsize=(6.4, 3.0), layout="tight")
        axes = figure.add_subplot()
        level = next((c.ci.level for c in cells if c is not None and c.ci is not None), None)
        band = f"{level:.0%} CI" if level is not None else "CI"
        axes.fill_between(x, low, high, color="#1f77b4", alpha=0.2, linewidth=0, label=band)
        axes.plot(x, estimate, color="#1f77b4", linewidth=1.5)
        for i, cell in enumerate(cells):
            if cell is not None and np.isfinite(estimate[i]):
                colour = VERDICT_COLOURS.get(cell.verdict, "grey")
                axes.scatter([x[i]], [estimate[i]], color=colour, zorder=3, s=36)
        guide = expectation_guide(row.expectation, row.statistic) or {}
        if "threshold" in guide:
            axes.axhline(
                guide["threshold"], color="black", linestyle="--", linewidth=1, label=row.expectation
            )
        elif "margin" in guide:
            axes.axhspan(-guide["margin"], guide["margin"], color="grey", alpha=0.15, label=row.expectation)
        if steps is None:
            axes.set_xticks(x, [str(c) for c in checkpoints], rotation=30 if len(checkpoints) > 4 else 0)
        axes.set_xlabel("training step" if steps is not None else axis)
        axes.set_ylabel(row.statistic)
        axes.set_title(row.claim_id, fontsize=10)
        axes.legend(loc="best", fontsize=8)
        return figure_svg(figure, f"{ident}-", f"{row.statistic} of {row.claim_id} across {axis}s")


def render_html(matrix: RegressionMatrix) -> str:
    """A self-contained page (``templates/regression.html.j2``): the matrix, cells coloured by
    verdict, and one plot per claim."""
    from markupsafe import Markup

    from circuitspec.reports.html_report import environment

    rows = [
        {
            "row": row,
            "cells": [(row.cells.get(str(c)), _cell_text(row.cells.get(str(c)))) for c in matrix.checkpoints],
            "plot": Markup(plot_claim_svg(row, matrix.checkpoints, f"m{i}", matrix.axis)),
        }
        for i, row in enumerate(matrix.rows)
    ]
    links = [(c, d) for c in matrix.checkpoints if (d := matrix.report_dirs.get(str(c)))]
    return environment().get_template("regression.html.j2").render(matrix=matrix, rows=rows, links=links)


MATRIX_FILES = {"json": "regression.json", "md": "regression.md", "html": "regression.html"}


def write_matrix(
    matrix: RegressionMatrix,
    out_dir: str | Path,
    *,
    prepared: ReportSet | None = None,
    stem: str = "regression",
) -> dict[str, Path]:
    """``regression.json`` / ``.md`` / ``.html`` in ``out_dir``, rendered first, published as one set
    (:class:`~circuitspec.reports.atomic.ReportSet`; ``prepared``: one already locked before the runs)."""
    texts = {
        "json": json.dumps(matrix.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        "md": render_markdown(matrix),
        "html": render_html(matrix),
    }
    names = {key: f"{stem}.{key}" for key in texts}
    files = {names[key]: text for key, text in texts.items()}
    if prepared is not None:
        written = prepared.publish(files)
    else:
        with ReportSet(out_dir, list(names.values())) as fresh:
            written = fresh.publish(files)
    return {key: written[names[key]] for key in texts}


def print_matrix_table(matrix: RegressionMatrix, console: Any) -> None:
    """The matrix in the terminal: claims × checkpoints, cells coloured by verdict on a TTY."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{matrix.hypothesis_name}: claims × {matrix.axis}s", box=box.SIMPLE_HEAD)
    table.add_column("claim", overflow="fold")
    for checkpoint in matrix.checkpoints:
        table.add_column(str(checkpoint), overflow="fold")
    styles = {"pass": "green", "inconclusive": "yellow", "fail": "red", "error": "magenta"}
    for row in matrix.rows:
        cells = [row.cells.get(str(c)) for c in matrix.checkpoints]
        table.add_row(
            Text(row.claim_id),
            *[Text(_cell_lines(cell), style=styles.get(cell.verdict, "") if cell else "") for cell in cells],
        )
    console.print(table)
