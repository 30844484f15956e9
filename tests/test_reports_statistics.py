"""Reports render the statistics' new outcomes: the 'error' verdict, tiny p-values, effective levels."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from rich.console import Console

from circuitspec.pipeline import exit_code
from circuitspec.reports import print_verdict_table, write_junit
from circuitspec.reports.formatting import fmt_detail, fmt_pvalue
from circuitspec.reports.html_report import render_html
from circuitspec.reports.markdown import render_markdown
from circuitspec.stats.outcome import Interval
from tests.helpers.report_sample import sample_report_input


def _with_statistics():
    """The sample report with claim 0 at a Holm level, claim 1 an error, claim 2 a p of 9.13e-153."""
    report = sample_report_input()
    first, broken, tiny = report.outcomes[0], report.outcomes[1], report.outcomes[2]
    first.ci = Interval(-2.9, -1.7, 1 - 0.05 / 33, "bootstrap-t")
    first.details.update(family="holm", family_size=33, level=1 - 0.05 / 33)
    broken.verdict, broken.reason, broken.ci, broken.estimate = (
        "error",
        "the claim could not be measured: boom",
        None,
        None,
    )
    tiny.p_value = tiny.p_adjusted = 9.13e-153
    tiny.details["tost_p"] = 9.13e-153
    return report


def test_tiny_p_values_print_as_below_the_floor() -> None:
    assert fmt_pvalue(9.13e-153) == "< 1e-16" and fmt_pvalue(0.0) == "< 1e-16"
    assert fmt_pvalue(0.0312) == "0.0312" and fmt_pvalue(None) == "—"
    assert fmt_detail("tost_p", 9.13e-153) == "< 1e-16"
    assert fmt_detail("random_baseline", {"p_value": 1e-20, "n": 30}) == "{p_value = < 1e-16; n = 30}"
    report = _with_statistics()
    markdown, html = render_markdown(report), render_html(report)
    assert "9.13e-153" not in markdown and "< 1e-16" in markdown
    assert "9.13e-153" not in html and "&lt; 1e-16" in html


def test_effective_level_is_shown_per_claim() -> None:
    report = _with_statistics()
    markdown, html = render_markdown(report), render_html(report)
    assert "| interval level (family-wise) | 99.85% (holm, 33 claims) |" in markdown
    assert "(99.85% bootstrap-t)" in markdown
    assert "99.85% (holm, 33 claims)" in html


def test_error_renders_distinctly_everywhere(tmp_path) -> None:
    report = _with_statistics()
    markdown, html = render_markdown(report), render_html(report)
    assert "! **error**" in markdown and "could not be measured (error)" in markdown
    assert 'class="card error"' in html and "#6f42c1" in html
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_verdict_table(report.outcomes, console, None)
    printed = console.file.getvalue()
    assert "! error" in printed and "1 could not be measured (error)" in printed
    root = ET.parse(write_junit(report.outcomes, tmp_path / "j.xml", "s")).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
    case = next(c for c in root.iter("testcase") if c.get("name") == report.outcomes[1].claim_id)
    assert case.find("error") is not None and case.find("failure") is None


def test_exit_code_two_on_an_error_unless_allowed() -> None:
    outcomes = _with_statistics().outcomes
    assert exit_code(outcomes) == 2
    assert exit_code(outcomes, allow_errors=True) == 1  # the sample also has fails
    passing = [o for o in outcomes if o.verdict in ("pass", "error")]
    assert exit_code(passing) == 2 and exit_code(passing, allow_errors=True) == 0
    assert exit_code([o for o in outcomes if o.verdict == "pass"]) == 0


def test_verify_offers_allow_errors() -> None:
    from typer.testing import CliRunner

    from circuitspec.cli.main import app

    result = CliRunner().invoke(app, ["verify", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0 and "--allow-errors" in result.output
