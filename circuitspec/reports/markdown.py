"""``report.md``: the verdict table and each claim's numbers, readable in a terminal or on GitHub."""

from __future__ import annotations

import html
from typing import Any

from .formatting import VERDICT_SYMBOLS, fmt, fmt_ci, fmt_detail, fmt_level, fmt_p, fmt_pvalue, tally
from .json_report import claim_spec_fields
from .model import ReportInput
from .plotdata import point_statistic

__all__ = ["render_markdown"]


def _text(text: Any) -> str:
    """User text (descriptions, reasons, paths) with ``<`` / ``>`` / ``&`` escaped: a ``<script>`` in a
    hypothesis must not become HTML where report.md is rendered."""
    return html.escape(str(text), quote=False)


def _cell(text: Any) -> str:
    return _text(text).replace("|", "\\|").replace("\n", " ")


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
        lines += [_text(fields["description"]), ""]
    lines += [f"> {_text(o.reason)}", ""]
    ci_note = f" ({o.ci.level * 100:.4g}% {o.ci.method})" if o.ci else ""
    rows = [
        ("kind", o.kind),
        ("targets", ", ".join(f"`{t}`" for t in fields["targets"]) or "—"),
        ("expectation", f"`{o.expectation}`"),
        ("statistic", o.statistic),
        ("estimate", fmt(o.estimate)),
        ("CI", fmt_ci(o.ci) + ci_note),
        ("interval level (family-wise)", fmt_level(o)),
        ("p (raw / adjusted)", f"{fmt_pvalue(o.p_value)} / {fmt_pvalue(o.p_adjusted)}"),
        ("p family", o.details.get("p_family", "—")),
        (f"percentile among random {_controls(o.kind)}", fmt(o.percentile)),
        ("prompts", o.n_prompts),
        ("rows (split)", o.details.get("split", "all")),
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
        details = ", ".join(f"{k} = {fmt_detail(k, v)}" for k, v in sorted(o.details.items()))
        lines += ["Details: " + details, ""]
    return lines


def _split_line(split: dict[str, Any]) -> str:
    """Which rows the verdicts used, e.g. 'test split (thresholds set on explore; 240 explore / 240 test)'."""
    if not split:
        return "all"
    rows = split.get("rows", {})
    line = f"{split.get('used', 'all')} split"
    notes = [f"thresholds set on {split['thresholds_set_on']}"] if split.get("thresholds_set_on") else []
    if "explore" in rows:
        notes.append(f"{rows['explore']} explore / {rows['test']} test rows")
    if split.get("claims"):
        own = ", ".join(f"{claim} {name}" for claim, name in split["claims"].items())
        notes.append(f"claims choosing their own: {own}")
    return line + (f" ({'; '.join(notes)})" if notes else "")


def render_markdown(report_input: ReportInput) -> str:
    """The whole ``report.md`` text."""
    r = report_input
    counts = tally([o.verdict for o in r.outcomes])
    errors = f", {counts['error']} could not be measured (error)" if counts["error"] else ""
    versions = r.versions()
    lines = [
        f"# circuitspec report: {r.hypothesis_name}",
        "",
        f"**{counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['inconclusive']} inconclusive{errors}** of {len(r.outcomes)} claims.",
        "",
    ]
    if r.description:
        lines += [_text(r.description), ""]
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
        f"| rows | {_cell(_split_line(r.split))} |",
        f"| family-wise error control | {r.multiple_comparisons} (interval levels; p-value families) |",
        "| packages | " + ", ".join(f"{k} {v or '—'}" for k, v in sorted(versions.items())) + " |",
        "",
        "## Claims",
        "",
    ]
    for i in range(len(r.outcomes)):
        lines += _claim_section(r, i)
    lines += _prompt_sample(r.prompt_sample)
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


def _answer(answer: Any) -> str:
    return "–" if not isinstance(answer, dict) else _cell(repr(answer.get("text", "")))


def _prompt_sample(records: list[dict[str, Any]], limit: int = 8) -> list[str]:
    """ "What was run": the first prompt of each template with its corrupted twin and answers, as the HTML
    report shows them (``[]`` when the run recorded none)."""
    records = [record for record in records or [] if isinstance(record, dict)]
    if not records:
        return []
    shown = records[:limit]
    more = f" ({len(shown)} of {len(records)} templates shown)" if len(records) > len(shown) else ""
    lines = [
        "## Prompts",
        "",
        f"The first prompt of each template{more}; `circuitspec prompts FILE` prints them all.",
        "",
        "| template | prompt | corrupted | desired | undesired |",
        "|---|---|---|---|---|",
    ]
    for record in shown:
        twin = record.get("corrupted")
        text = twin.get("text") if isinstance(twin, dict) else None
        corrupted = _cell(repr(text)) if text is not None else "–"
        lines.append(
            f"| {_cell(record.get('template', ''))} | {_cell(repr(record.get('text', '')))} | {corrupted} "
            f"| {_answer(record.get('desired'))} | {_answer(record.get('undesired'))} |"
        )
    return [*lines, ""]


def _controls(kind: str) -> str:
    """What a claim's random baseline draws: directions of the same norm (steering), else circuits."""
    return "directions" if kind == "steering" else "circuits"
