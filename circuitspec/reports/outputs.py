"""Writing a finished run's outputs (report set, JUnit) so that a failure never loses the verdicts.

The folder and the JUnit path are checked before the run (:func:`circuitspec.reports.report_set`,
:func:`circuitspec.reports.atomic.check_output_file`); if writing still fails after it (a full
disk), the verdict table is printed anyway, the reports are saved to a fresh folder under the
system temp directory, and a one-line :class:`CircuitSpecError` names both places.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError

from .atomic import ReportSet
from .junit import claim_seconds, write_junit
from .table import print_verdict_table

__all__ = ["save_fallback", "write_run_outputs"]


def save_fallback(report_input: Any, name: str) -> Path:
    """Write the report set into a new folder under the temp directory; returns it."""
    from . import write_reports

    folder = Path(tempfile.mkdtemp(prefix=f"circuitspec-{name}-"))
    write_reports(report_input, folder)
    return folder


def write_run_outputs(
    report_input: Any,
    outcomes: list[Any],
    prepared: ReportSet,
    console: Any,
    *,
    name: str,
    junit: str | Path | None = None,
    allow_inconclusive: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Path]:
    """Publish the report set into ``prepared``, print the verdict table, write JUnit.

    ``progress(done, total)``: called after each plot of the HTML page is drawn (most of the writing
    time); ``html_report.plot_progress()`` prints 'rendering plots i/n' to stderr.

    On an OSError the table is printed without a report link and the reports go to
    :func:`save_fallback`; the raised error says where they are.
    """
    from . import write_reports

    try:
        paths = write_reports(report_input, prepared.out, prepared=prepared, progress=progress)
    except OSError as exc:
        print_verdict_table(outcomes, console, None)
        where = _fallback_note(report_input, name)
        raise CircuitSpecError(
            f"could not write the reports: {exc.strerror or exc}; {where}", file=str(prepared.out)
        ) from None
    print_verdict_table(outcomes, console, paths["html"])
    if junit:
        try:
            seconds = claim_seconds(getattr(report_input, "measurements", {}) or {})
            total = getattr(report_input, "total_seconds", None)
            write_junit(outcomes, Path(junit), name, allow_inconclusive, seconds, total)
        except OSError as exc:
            raise CircuitSpecError(
                f"could not write JUnit XML: {exc.strerror or exc}; the reports are in {prepared.out}",
                file=str(junit),
            ) from None
    return paths


def _fallback_note(report_input: Any, name: str) -> str:
    try:
        return f"saved them in {save_fallback(report_input, name)} instead"
    except (OSError, CircuitSpecError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        return f"they could not be saved anywhere else either ({reason}); the verdicts are printed above"
