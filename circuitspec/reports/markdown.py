"""``report.md``: the verdict table and each claim's numbers, readable in a terminal or on GitHub."""

from __future__ import annotations

from typing import Any

from .formatting import VERDICT_SYMBOLS, fmt, fmt_ci, fmt_p
from .json_report import claim_spec_fields
from .model import ReportInput
from .plotdata import point_statistic

__all__ = ["render_markdown"]


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _verdict_table(report_input: ReportInput) -> list[str]:
    lines = [
        "| claim | kind | statistic | estimate | CI | p (adj.) | verdict |",
        "|---|---|---|---:|---|---:|---|",
    ]
    for o in report_input.outcomes:
        lines.append(
            f"| `{_cell(o.claim_id)}` | {o.kind} | {_cell(o.statistic)} | {fmt(o.estimate)} | {fmt_ci(o.ci)} "
            f"| {fmt_p(o)} | {VERDICT_SYMBOLS.get(o.verdict, '')} **{o.verdict}** |"
        )
    return lines


def _claim_section(report_input: ReportInput, index: int) -> list[str]:
    o = report_input.outcomes[index]
    fields = claim_spec_fields(report_input.claims.get(o.claim_id))
    measurement = report_input.measurements.get(o.claim_id)
    lines = [f"### {VERDICT_SYMBOLS.get(o.verdict, '')} `{o.claim_id}` — {o.verdict}", ""]
    if fields["description"]:
        lines += [fields["description"], ""]
    lines += [f"> {o.reason}", ""]
    ci_note = f" ({o.ci.level:.0%} {o.ci.method})" if o.ci else ""
    rows = [
        ("kind", o.kind),
        ("targets", ", ".join(f"`{t}`" for t in fields["targets"]) or "—"),
        ("expectation", f"`{o.expectation}`"),
        ("statistic", o.statistic),
        ("estimate", fmt(o.estimate)),
        ("CI", fmt_ci(o.ci) + ci_note),
        ("p (raw / adjusted)", f"{fmt(o.p_value, 3)} / {fmt(o.p_adjusted, 3)}"),
        ("percentile among random circuits", fmt(o.percentile)),
        ("prompts", o.n_prompts),
    ]
    if measurement is not None and measurement.error:
        rows.append(("error", measurement.error))
    lines += ["| | |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in rows] + [""]
    if o.points:
        variable = (measurement.sweep_variable if measurement else None) or "x"
        lines += [f"| {variable} | {point_statistic(o, o.expectation)} | CI |", "|---:|---:|---|"]
        lines += [f"| {_cell(p.x)} | {fmt(p.estimate)} | {fmt_ci(p.ci)} |" for p in o.points]
        lines.append("")
    if o.details:
        lines.append("Details: " + ", ".join(f"{k} = {_fmt_any(v)}" for k, v in sorted(o.details.items())))
        lines.append("")
    return lines


def _fmt_any(value: Any) -> str:
    return fmt(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def render_markdown(report_input: ReportInput) -> str:
    """The whole ``report.md`` text."""
    r = report_input
    verdicts = [o.verdict for o in r.outcomes]
    versions = r.versions()
    lines = [
        f"# circuitspec report: {r.hypothesis_name}",
        "",
        f"**{verdicts.count('pass')} passed, {verdicts.count('fail')} failed, "
        f"{verdicts.count('inconclusive')} inconclusive** of {len(verdicts)} claims.",
        "",
    ]
    if r.description:
        lines += [r.description, ""]
    lines += [*_verdict_table(r), ""]
    lines += [
        "## Run",
        "",
        "| | |",
        "|---|---|",
        f"| hypothesis | `{_cell(r.hypothesis_path)}` |",
        f"| sha256 | `{r.hypothesis_sha256}` |",
        *(f"| model {k} | {_cell(v)} |" for k, v in sorted(r.model.items())),
        f"| seed | {r.seed} |",
        f"| multiple comparisons | {r.multiple_comparisons} |",
        "| packages | " + ", ".join(f"{k} {v or '—'}" for k, v in sorted(versions.items())) + " |",
        "",
        "## Claims",
        "",
    ]
    for i in range(len(r.outcomes)):
        lines += _claim_section(r, i)
    if r.graph_text:
        fence = "mermaid" if r.graph_format == "mermaid" else "dot"
        lines += ["## Circuit", "", f"```{fence}", r.graph_text.rstrip(), "```", ""]
    lines += ["## Cost", "", "| claim | forward passes | tokens | seconds |", "|---|---:|---:|---:|"]
    for o in r.outcomes:
        m = r.measurements.get(o.claim_id)
        if m is not None:
            lines.append(
                f"| `{_cell(o.claim_id)}` | {m.cost.forward_passes} | {m.cost.tokens} "
                f"| {m.cost.seconds:.2f} |"
            )
    if r.total_seconds is not None:
        lines.append(f"| **total** | | | {r.total_seconds:.2f} |")
    return "\n".join(lines) + "\n"
