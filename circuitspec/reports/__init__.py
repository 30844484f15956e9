"""Reports of a verification: report.json (versioned, deterministic), report.md, report.html, JUnit, table.

No torch here: reports read numpy arrays and statistics outcomes only.
"""

from __future__ import annotations

from pathlib import Path

from .atomic import atomic_write_bytes, atomic_write_text
from .html_report import render_html
from .json_report import REPORT_SCHEMA_VERSION, build_report_dict, render_json
from .junit import junit_xml, write_junit
from .markdown import render_markdown
from .model import ReportInput, build_report_input, package_versions
from .table import print_verdict_table, verdict_table

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "ReportInput",
    "atomic_write_bytes",
    "atomic_write_text",
    "build_report_dict",
    "build_report_input",
    "junit_xml",
    "package_versions",
    "print_verdict_table",
    "render_html",
    "render_json",
    "render_markdown",
    "verdict_table",
    "write_junit",
    "write_reports",
]

REPORT_FILES = {"json": "report.json", "md": "report.md", "html": "report.html"}


def write_reports(report_input: ReportInput, out_dir: str | Path) -> dict[str, Path]:
    """Render all three reports, then write each atomically under ``out_dir``.

    Everything is rendered before anything is written, so a rendering error leaves the previous
    reports as they were. Returns ``{"json": ..., "md": ..., "html": ...}``.
    """
    out = Path(out_dir)
    texts = {
        "json": render_json(report_input),
        "md": render_markdown(report_input),
        "html": render_html(report_input),
    }
    out.mkdir(parents=True, exist_ok=True)
    return {key: atomic_write_text(out / REPORT_FILES[key], text) for key, text in texts.items()}
