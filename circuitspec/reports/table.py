"""The verdict table printed after a run (rich), with where the full report is."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from circuitspec.stats.outcome import ClaimOutcome

from .formatting import VERDICT_SYMBOLS, fmt, fmt_ci, fmt_p, tally

__all__ = ["make_console", "print_verdict_table", "verdict_table"]


def make_console() -> Console:
    """A rich console; CI logs are not terminals, so give tables room instead of rich's 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=150)


_STYLES = {"pass": "bold green", "fail": "bold red", "inconclusive": "bold yellow", "error": "bold magenta"}


def verdict_table(outcomes: list[ClaimOutcome], title: str | None = None) -> Table:
    """A rich table: id, kind, statistic, estimate, CI, p (adj.), verdict (coloured)."""
    table = Table(title=title, header_style="bold", show_lines=False)
    for name, justify in (
        ("claim", "left"),
        ("kind", "left"),
        ("statistic", "left"),
        ("estimate", "right"),
        ("CI", "right"),
        ("p (adj.)", "right"),
        ("verdict", "left"),
    ):
        # claim ids fold rather than truncate: they are what a person greps the report for
        table.add_column(name, justify=justify, overflow="fold", no_wrap=name in ("verdict", "p (adj.)"))  # type: ignore[arg-type]
    for o in outcomes:
        style = _STYLES.get(o.verdict, "")
        table.add_row(
            escape(o.claim_id),  # ids like 'pp[embed@s_con -> L0H0.v]' are not rich markup
            o.kind,
            o.statistic,
            fmt(o.estimate),
            fmt_ci(o.ci),
            fmt_p(o),
            f"[{style}]{VERDICT_SYMBOLS.get(o.verdict, '')} {o.verdict}[/{style}]" if style else o.verdict,
        )
    return table


def print_verdict_table(
    outcomes: list[ClaimOutcome], console: Console, report_path: str | Path | None
) -> None:
    """Print the verdict table, a one-line tally, and the report path underneath."""
    console.print(verdict_table(outcomes))
    counts = tally([o.verdict for o in outcomes])
    line = (
        f"[green]{counts['pass']} passed[/green], [red]{counts['fail']} failed[/red], "
        f"[yellow]{counts['inconclusive']} inconclusive[/yellow]"
    )
    if counts["error"]:
        line += f", [magenta]{counts['error']} could not be measured (error)[/magenta]"
    console.print(line, highlight=False)
    if report_path is not None:
        console.print(f"report: {report_path}", highlight=False, soft_wrap=True)
