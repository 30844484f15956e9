"""``report.html``: one self-contained page (inline CSS, plots as base64 PNG, no scripts, no network)."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from .formatting import (
    VERDICT_COLOURS,
    VERDICT_SYMBOLS,
    VERDICTS,
    fmt,
    fmt_ci,
    fmt_detail,
    fmt_level,
    fmt_p,
    fmt_pvalue,
    tally,
)
from .json_report import claim_spec_fields
from .model import ReportInput
from .plotdata import claim_plots, point_statistic
from .plots import render_plot

__all__ = ["render_html"]

_CSS = """
*{box-sizing:border-box}
body{font:15px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;
background:#f6f7f9;margin:0}
main{max-width:1100px;margin:0 auto;padding:28px 24px 60px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:34px 0 12px;border-bottom:1px solid #d8dbe0;padding-bottom:4px}
h3{font-size:17px;margin:0;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
.sub{color:#57606a;margin:0 0 16px}
.summary{display:flex;gap:12px;margin:16px 0 20px;flex-wrap:wrap}
.tile{background:#fff;border:1px solid #d8dbe0;border-radius:8px;padding:10px 18px;min-width:120px}
.tile b{display:block;font-size:26px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d8dbe0;
border-radius:8px;overflow:hidden}
th,td{padding:7px 10px;border-bottom:1px solid #eceef1;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600;font-size:13px;color:#424a53}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.pass td:first-child{border-left:5px solid #1e7d36}
tr.fail td:first-child{border-left:5px solid #b3261e}
tr.inconclusive td:first-child{border-left:5px solid #a86b00}
tr.error td:first-child{border-left:5px dashed #6f42c1}
.pill{display:inline-block;border-radius:999px;padding:1px 11px;color:#fff;font-weight:600;font-size:13px}
.card{background:#fff;border:1px solid #d8dbe0;border-radius:10px;padding:16px 20px;margin:0 0 18px}
.card.fail{border-left:6px solid #b3261e}
.card.pass{border-left:6px solid #1e7d36}
.card.inconclusive{border-left:6px solid #a86b00}
.card.error{border-left:6px dashed #6f42c1}
.reason{font-size:15px;margin:10px 0;padding:8px 12px;background:#f6f7f9;border-radius:6px}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:6px 18px;margin:10px 0}
.facts div{font-size:13px;color:#57606a}
.facts span{display:block;color:#1f2328;font-size:15px}
.plots{display:flex;flex-wrap:wrap;gap:12px;margin-top:10px}
.plots img{max-width:100%;border:1px solid #eceef1;border-radius:6px}
.error{color:#b3261e;font-weight:600}
pre{background:#fff;border:1px solid #d8dbe0;border-radius:8px;padding:12px;overflow:auto}
details{margin-top:8px}
summary{cursor:pointer;color:#424a53}
a{color:#0b5cad;text-decoration:none}
"""


def _pill(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#57606a")
    symbol = VERDICT_SYMBOLS.get(verdict, "")
    return f'<span class="pill" style="background:{colour}">{symbol} {escape(verdict)}</span>'


def _anchor(claim_id: str) -> str:
    return "claim-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in claim_id)


def _verdict_table(r: ReportInput) -> str:
    rows = []
    for o in r.outcomes:
        rows.append(
            f'<tr class="{escape(o.verdict)}"><td><a href="#{_anchor(o.claim_id)}">'
            f"<code>{escape(o.claim_id)}</code></a></td><td>{escape(o.kind)}</td><td><code>{escape(o.expectation)}</code></td>"
            f'<td class="num">{escape(fmt(o.estimate))}</td><td class="num">{escape(fmt_ci(o.ci))}</td>'
            f'<td class="num">{escape(fmt_p(o))}</td><td>{_pill(o.verdict)}</td></tr>'
        )
    head = (
        "<tr><th>claim</th><th>kind</th><th>expectation</th><th>estimate</th><th>CI</th>"
        "<th>p (adj.)</th><th>verdict</th></tr>"
    )
    return f'<table class="verdicts">{head}{"".join(rows)}</table>'


def _image(plot: dict[str, Any]) -> str:
    data = base64.b64encode(render_plot(plot)).decode("ascii")
    return f'<img alt="{escape(plot.get("title", plot["type"]))}" src="data:image/png;base64,{data}">'


def _fact(label: str, value: str) -> str:
    return f"<div>{escape(label)}<span>{value}</span></div>"


def _claim_card(r: ReportInput, index: int) -> str:
    o = r.outcomes[index]
    fields = claim_spec_fields(r.claims.get(o.claim_id))
    measurement = r.measurements.get(o.claim_id)
    ci_note = f" <small>{o.ci.level * 100:.4g}% {escape(o.ci.method)}</small>" if o.ci else ""
    facts = [
        _fact("expectation", f"<code>{escape(o.expectation)}</code>"),
        _fact("statistic", escape(o.statistic)),
        _fact("estimate", escape(fmt(o.estimate))),
        _fact("confidence interval", escape(fmt_ci(o.ci)) + ci_note),
        _fact("interval level (family-wise)", escape(fmt_level(o))),
        _fact("p raw / adjusted", f"{escape(fmt_pvalue(o.p_value))} / {escape(fmt_pvalue(o.p_adjusted))}"),
        _fact("prompts", str(o.n_prompts)),
    ]
    if o.percentile is not None:
        facts.append(_fact("percentile vs random", escape(fmt(o.percentile))))
    if fields["targets"]:
        facts.append(_fact("targets", ", ".join(f"<code>{escape(t)}</code>" for t in fields["targets"])))
    parts = [
        f'<section class="card {escape(o.verdict)}" id="{_anchor(o.claim_id)}">',
        f"<h3><code>{escape(o.claim_id)}</code> {_pill(o.verdict)} <small>{escape(o.kind)}</small></h3>",
    ]
    if fields["description"]:
        parts.append(f"<p>{escape(fields['description'])}</p>")
    parts.append(f'<p class="reason">{escape(o.reason)}</p>')
    if measurement is not None and measurement.error and measurement.error not in o.reason:
        parts.append(f'<p class="error">could not measure: {escape(measurement.error)}</p>')
    parts.append(f'<div class="facts">{"".join(facts)}</div>')
    plots = claim_plots(o, measurement, fields["targets"], fields["expect"] or o.expectation)
    if plots:
        parts.append(f'<div class="plots">{"".join(_image(p) for p in plots)}</div>')
    if o.points:
        variable = (measurement.sweep_variable if measurement else None) or "x"
        rows = "".join(
            f'<tr><td class="num">{escape(str(p.x))}</td><td class="num">{escape(fmt(p.estimate))}</td>'
            f'<td class="num">{escape(fmt_ci(p.ci))}</td></tr>'
            for p in o.points
        )
        parts.append(
            f"<details><summary>{len(o.points)} sweep points</summary><table><tr><th>{escape(variable)}</th>"
            f"<th>{escape(point_statistic(o, o.expectation))}</th><th>CI</th></tr>{rows}</table></details>"
        )
    if o.details:
        rows = "".join(
            f"<tr><td>{escape(str(k))}</td><td>{escape(fmt_detail(k, v))}</td></tr>"
            for k, v in sorted(o.details.items())
        )
        parts.append(f"<details><summary>details</summary><table>{rows}</table></details>")
    parts.append("</section>")
    return "".join(parts)


def _run_table(r: ReportInput) -> str:
    rows = [
        ("hypothesis", f"<code>{escape(r.hypothesis_path)}</code>"),
        ("sha256", f"<code>{escape(r.hypothesis_sha256)}</code>"),
        *((f"model {k}", escape(str(v))) for k, v in sorted(r.model.items())),
        ("seed", str(r.seed)),
        ("family-wise error control", escape(r.multiple_comparisons)),
        ("packages", escape(", ".join(f"{k} {v or '—'}" for k, v in sorted(r.versions().items())))),
    ]
    return "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _cost_table(r: ReportInput) -> str:
    rows = []
    for o in r.outcomes:
        m = r.measurements.get(o.claim_id)
        if m is not None:
            rows.append(
                f'<tr><td><code>{escape(o.claim_id)}</code></td><td class="num">{m.cost.forward_passes}</td>'
                f'<td class="num">{m.cost.tokens}</td><td class="num">{m.cost.seconds:.2f}</td></tr>'
            )
    if r.total_seconds is not None:
        rows.append(
            f'<tr><th>total (whole run)</th><td></td><td></td><td class="num">{r.total_seconds:.2f}</td></tr>'
        )
    head = "<tr><th>claim</th><th>forward passes</th><th>tokens</th><th>seconds</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def render_html(report_input: ReportInput) -> str:
    """The whole ``report.html`` text."""
    r = report_input
    verdicts = [o.verdict for o in r.outcomes]
    counts = tally(verdicts)
    tiles = "".join(
        f'<div class="tile" style="border-top:4px solid {VERDICT_COLOURS[v]}"><b>{counts[v]}</b>{v}</div>'
        for v in VERDICTS
        if v != "error" or counts[v]
    )
    model = escape(str(r.model.get("source") or r.model.get("name") or ""))
    body = [
        f"<h1>{escape(r.hypothesis_name)}</h1>",
        f'<p class="sub">circuitspec report · model {model} · seed {r.seed} · '
        f"{escape(r.multiple_comparisons)} correction · {len(verdicts)} claims</p>",
    ]
    if r.description:
        body.append(f"<p>{escape(r.description)}</p>")
    body += [f'<div class="summary">{tiles}</div>', _verdict_table(r), "<h2>Claims</h2>"]
    body += [_claim_card(r, i) for i in range(len(r.outcomes))]
    if r.graph_text:
        body += [f"<h2>Circuit ({escape(r.graph_format)})</h2>", f"<pre>{escape(r.graph_text)}</pre>"]
    body += ["<h2>Run</h2>", _run_table(r), "<h2>Cost</h2>", _cost_table(r)]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(r.hypothesis_name)} — circuitspec report</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
