"""Reports of a verification: report.json (versioned, deterministic), report.md, report.html, JUnit, table.

No torch here: reports read numpy arrays and statistics outcomes only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from circuitspec.lazy_exports import lazy_exports

from .atomic import ReportSet, atomic_write_bytes, atomic_write_text, check_output_file

if TYPE_CHECKING:  # imported on first use (see __getattr__): rendering pulls in matplotlib and scipy
    from .html_report import render_html
    from .json_report import REPORT_SCHEMA_VERSION, build_report_dict, render_json
    from .junit import junit_xml, write_junit
    from .markdown import render_markdown
    from .model import ReportInput, build_report_input, package_versions
    from .table import print_verdict_table, verdict_table

__all__ = [
    "REPORT_FILES",
    "REPORT_SCHEMA_VERSION",
    "ReportInput",
    "ReportSet",
    "atomic_write_bytes",
    "atomic_write_text",
    "build_report_dict",
    "build_report_input",
    "check_output_file",
    "junit_xml",
    "package_versions",
    "print_verdict_table",
    "render_html",
    "render_json",
    "render_markdown",
    "render_reports",
    "report_set",
    "verdict_table",
    "write_junit",
    "write_reports",
]

REPORT_FILES = {"json": "report.json", "md": "report.md", "html": "report.html"}


def report_set(out_dir: str | Path) -> ReportSet:
    """The report set of ``out_dir`` (``report.json`` / ``.md`` / ``.html``); prepare it before a run."""
    return ReportSet(out_dir, list(REPORT_FILES.values()))


def write_reports(
    report_input: ReportInput,
    out_dir: str | Path,
    *,
    prepared: ReportSet | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Path]:
    """Render all three reports, then publish them under ``out_dir`` as one set (see :mod:`.atomic`).

    Everything is rendered before anything is written, so a rendering error leaves the previous
    reports as they were; an interruption or a full disk leaves the previous *set*. ``prepared``: a
    :func:`report_set` already prepared (folder checked, lock held) before the run; it stays open.
    Returns ``{"json": ..., "md": ..., "html": ...}`` (stable paths ``<out_dir>/report.*``).
    ``progress(done, total)``: called after each plot of the HTML page (``html_report.plot_progress``).
    """
    files = render_reports(report_input, progress=progress)
    if prepared is not None:
        written = prepared.publish(files)
    else:
        with report_set(out_dir) as reports:
            written = reports.publish(files)
    return {key: written[name] for key, name in REPORT_FILES.items()}


def render_reports(
    report_input: ReportInput, progress: Callable[[int, int], None] | None = None
) -> dict[str, str]:
    """The three report texts by file name (``report.json`` / ``.md`` / ``.html``), nothing written."""
    this = sys.modules[__name__]  # the renderers through __getattr__: imported on first use, patchable
    html = this.render_html(report_input, progress=progress) if progress else this.render_html(report_input)
    texts = {
        "json": this.render_json(report_input),
        "md": this.render_markdown(report_input),
        "html": html,
    }
    return {REPORT_FILES[key]: text for key, text in texts.items()}


_EXPORTS = {
    "render_html": "html_report",
    "REPORT_SCHEMA_VERSION": "json_report",
    "build_report_dict": "json_report",
    "render_json": "json_report",
    "junit_xml": "junit",
    "write_junit": "junit",
    "render_markdown": "markdown",
    "ReportInput": "model",
    "build_report_input": "model",
    "package_versions": "model",
    "print_verdict_table": "table",
    "verdict_table": "table",
}


# the names above, imported on first use: `circuitspec diff` (which reads reports) then imports
# neither matplotlib nor scipy.stats
__getattr__ = lazy_exports(__name__, _EXPORTS)
