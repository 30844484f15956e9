"""The rich verdict table printed after a run."""

from __future__ import annotations

from rich.console import Console

from circuitspec.reports import print_verdict_table
from tests.helpers.report_sample import sample_report_input


def test_table_lists_every_claim_and_the_report_path():
    console = Console(record=True, width=160, force_terminal=True, color_system="truecolor")
    outcomes = sample_report_input().outcomes
    print_verdict_table(outcomes, console, "reports/ioi_sample/report.html")
    text = console.export_text(clear=False)
    for outcome in outcomes:
        assert outcome.claim_id in text and outcome.verdict in text
    assert "[0.5, 0.74]" in text and "0.0396" in text  # CI and adjusted p of 'faithful'
    assert "4 passed, 2 failed, 2 inconclusive" in text
    assert text.rstrip().splitlines()[-1] == "report: reports/ioi_sample/report.html"
    styled = console.export_text(styles=True)
    assert "\x1b[1;32m" in styled and "\x1b[1;31m" in styled  # pass green, fail red


def test_table_without_colours_or_path():
    console = Console(record=True, width=120, no_color=True)
    print_verdict_table(sample_report_input().outcomes[:1], console, None)
    text = console.export_text()
    assert "dla_negative" in text and "report:" not in text
