"""HTML views of what was run: a prompt sample, each claim's extreme prompts, attention over tokens.

- :func:`prompt_sample_html`: the first prompt of each template as ``circuitspec prompts`` prints it
  (tokens as spans, role positions marked, answers, the corrupted twin with its changed tokens).
- :func:`claim_prompts_html`: inside a claim card, the prompts with the largest and the smallest
  per-prompt ``value``, and for attention claims the head's attention from the query role over a
  few prompts' tokens (shaded by probability; hover shows the token and p), as CircuitsVis does.

Prompts are user data: every text goes through :func:`html.escape`. The views never raise (a broken
view must not lose the report): any failure renders as "". Hand-written rather than CircuitsVis
itself because that needs a JavaScript bundle from a CDN, and the report is one offline file.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from circuitspec.errors import printable
from circuitspec.measurement import AttentionRow, Measurement

from .model import ReportInput

__all__ = ["PROMPT_VIEWS_CSS", "claim_prompts_html", "extreme_prompts", "prompt_sample_html"]

PROMPT_VIEWS_CSS = """
.cs-prompt { margin: .5em 0 1em; font-size: .92em; }
.cs-prompt .cs-head { color: #555; margin-bottom: .2em; }
.cs-line { line-height: 2.1; font-family: ui-monospace, Menlo, Consolas, monospace; }
.cs-line .cs-what { display: inline-block; min-width: 6.5em; color: #555; font-family: sans-serif; }
.cs-token { border: 1px solid #d0d4da; border-radius: 3px; padding: 0 2px; margin: 0 1px; white-space: pre; }
.cs-token.cs-role { border-color: #c08a00; background: #fff3bf; }
.cs-token.cs-diff { border-color: #c92a2a; background: #ffe3e3; }
.cs-token.cs-query { outline: 2px solid #1c7ed6; }
.cs-role-label { font-size: .72em; color: #8a6200; vertical-align: sub; margin-right: 2px; }
.cs-answers { color: #333; }
.cs-extremes table { border-collapse: collapse; margin: .3em 0; font-size: .9em; }
.cs-extremes td, .cs-extremes th { border: 1px solid #dde; padding: 1px 6px; text-align: left; }
.cs-extremes td.cs-value { text-align: right; font-family: ui-monospace, monospace; }
.cs-attn { margin: .4em 0; }
.cs-attn .cs-token { border-color: #b6c8e6; }
"""

EXTREMES = 5  # prompts per side of a claim's extremes table
SAMPLE_LIMIT = 5  # prompts shown in the report's sample
_SHADE = "37, 99, 235"  # the attention view's colour (RGB); its alpha is the probability
_BREAK = "<wbr>"  # tokens keep their spaces (white-space: pre), so a long prompt wraps between them


def _esc(text: Any) -> str:
    """User data as HTML text or attribute value (control characters shown as ``\\uXXXX``)."""
    return html.escape(printable(str(text)), quote=True)


def _token_span(text: str, title: str, classes: tuple[str, ...] = (), style: str = "", data: str = "") -> str:
    names = " ".join(("cs-token", *classes))
    styled = f' style="{style}"' if style else ""
    return f'<span class="{names}" title="{_esc(title)}"{styled}{data}>{_esc(text)}</span>'


def _roles_at(roles: dict[str, int]) -> dict[int, list[str]]:
    at: dict[int, list[str]] = {}
    for role, position in roles.items():
        at.setdefault(int(position), []).append(str(role))
    return at


def _role_label(names: list[str]) -> str:
    return f'<sub class="cs-role-label">{_esc(", ".join(names))}</sub>' if names else ""


def _token_line(tokens: list[dict], roles: dict[str, int], other: list[dict] | None = None) -> str:
    """Tokens as spans; a role's token marked (class, label, hover); ``other``: tokens to compare with
    (the corrupted twin marks the ones that differ from the clean prompt)."""
    at = _roles_at(roles)
    parts = []
    for index, token in enumerate(tokens):
        names = at.get(index, [])
        differs = other is not None and index < len(other) and other[index].get("id") != token.get("id")
        classes = (("cs-role",) if names else ()) + (("cs-diff",) if differs else ())
        title = f"{index}: {token.get('text', '')!r}" + (f" · role {', '.join(names)}" if names else "")
        parts.append(_token_span(str(token.get("text", "")), title, classes) + _role_label(names) + _BREAK)
    return "".join(parts)


def _answer_text(answer: dict | None) -> str:
    return "–" if not answer else f"{_esc(repr(answer.get('text', '')))} (id {_esc(answer.get('id', ''))})"


def _pair(record: dict) -> str:
    desired, undesired = _answer_text(record.get("desired")), _answer_text(record.get("undesired"))
    return f"desired {desired} · undesired {undesired}"


def _answers(record: dict) -> str:
    if "reference" in record:
        return f"reference {_esc(repr(record['reference'].get('text', '')))}"
    if record.get("desired") is None and record.get("undesired") is None:
        return "no answers (a template for generation and attention claims)"
    return _pair(record)


def _prompt_block(record: dict) -> str:
    """One prompt of the sample: heading, clean tokens, corrupted tokens, answers."""
    tokens, roles = record.get("tokens") or [], record.get("roles") or {}
    twin = record.get("corrupted") or {}
    row = f" · row {_esc(record['row'])}" if record.get("row") else ""
    answers = _answers(record)
    if "reference" not in record and twin.get("desired") is not None and _pair(twin) != answers:
        answers += f"; corrupted: {_pair(twin)}"
    lines = [
        f'<div class="cs-head">template <b>{_esc(record.get("template", ""))}</b>{row}: '
        f"{_esc(repr(record.get('text', '')))}</div>",
        f'<div class="cs-line"><span class="cs-what">clean</span>{_token_line(tokens, roles)}</div>',
    ]
    if twin.get("tokens"):
        line = _token_line(twin["tokens"], roles, other=tokens)
        lines.append(f'<div class="cs-line"><span class="cs-what">corrupted</span>{line}</div>')
    lines.append(f'<div class="cs-answers">{answers}</div>')
    return '<div class="cs-prompt">' + "".join(lines) + "</div>"


def prompt_sample_html(r: ReportInput, limit: int = SAMPLE_LIMIT) -> str:
    """The report's "what was run" section: up to ``limit`` prompts of the sample ("" when none)."""
    try:
        records = list(getattr(r, "prompt_sample", None) or [])
        if not records:
            return ""
        shown = records[:limit]
        more = len(records) - len(shown)
        note = (
            f"The first prompt of each template ({len(shown)} of {len(records)} templates shown), "
            if more
            else "The first prompt of each template, "
        )
        note += (
            "as the claims ran it: highlighted tokens are role positions (hover for the index and role), "
            "red tokens differ in the corrupted twin. <code>circuitspec prompts FILE</code> prints them all."
        )
        blocks = "".join(_prompt_block(record) for record in shown)
        return f'<div class="cs-prompt-sample"><p>{note}</p>{blocks}</div>'
    except Exception:  # a broken view must not lose the report
        return ""


def extreme_prompts(values: Any, k: int = EXTREMES) -> tuple[list[int], list[int]]:
    """Indices of the ``k`` largest finite values (largest first) and of the ``k`` smallest (smallest
    first), ties to the earlier prompt; with ``2k`` prompts or fewer the two lists split them."""
    x = np.asarray(values, dtype=float).ravel()
    finite = [i for i in range(x.size) if math.isfinite(x[i])]
    largest = sorted(finite, key=lambda i: (-x[i], i))[:k]
    taken = set(largest)
    smallest = [i for i in sorted(finite, key=lambda i: (x[i], i)) if i not in taken][:k]
    return largest, smallest


def _label(m: Measurement, i: int) -> str:
    labels = m.prompt_labels
    return labels[i] if len(labels) == m.arrays["value"].size else f"prompt #{i}"


def _sweep_point(m: Measurement) -> str:
    """``at alpha = 1`` when the per-prompt ``value`` is one point of the claim's sweep, else empty."""
    value = m.arrays["value"]
    x = next((p.x for p in m.sweep if "value" in p.arrays and np.array_equal(p.arrays["value"], value)), None)
    return "" if x is None else f" at {_esc(m.sweep_variable or 'x')} = {_esc(x)}"


def _extremes_table(m: Measurement, k: int) -> str:
    """The claim's ``k`` largest and ``k`` smallest per-prompt values with their prompts."""
    values = np.asarray(m.arrays["value"], dtype=float).ravel()
    largest, smallest = extreme_prompts(values, k)
    if not largest:
        return ""
    finite = values[np.isfinite(values)]
    if finite.min() == finite.max():  # no prompt stands out
        same = f"All {finite.size} prompts have value {finite[0]:.4g}{_sweep_point(m)}."
        return f'<div class="cs-extremes"><p>{same}</p></div>'
    rows = []
    for side, picked in (("largest", largest), ("smallest", smallest)):
        for rank, i in enumerate(picked):
            head = f'<th rowspan="{len(picked)}">{side}</th>' if rank == 0 else ""
            rows.append(
                f'<tr>{head}<td class="cs-value">{values[i]:.4g}</td><td>#{i}</td>'
                f"<td>{_esc(repr(_label(m, i)))}</td></tr>"
            )
    caption = f"Prompts with the largest and smallest per-prompt value{_sweep_point(m)} (of {values.size})"
    return (
        f'<div class="cs-extremes"><table><caption>{caption}</caption>'
        f"<tr><th></th><th>value</th><th>prompt</th><th>text</th></tr>{''.join(rows)}</table></div>"
    )


def _attention_block(row: AttentionRow, m: Measurement) -> str:
    """One prompt's tokens shaded by the head's attention from the query position (hover: token, p)."""
    at = _roles_at(row.roles)
    parts = []
    for index, (token, p) in enumerate(zip(row.tokens, row.probs, strict=True)):
        alpha = min(max(float(p), 0.0), 1.0) if math.isfinite(float(p)) else 0.0
        names = at.get(index, [])
        classes = (("cs-role",) if names else ()) + (("cs-query",) if index == row.query else ())
        title = f"{token!r} · p = {float(p):.3f}" + (f" · role {', '.join(names)}" if names else "")
        style = f"background: rgba({_SHADE}, {alpha:.3f})" + ("; color: #fff" if alpha > 0.6 else "")
        data = f' data-p="{alpha:.4f}"'
        parts.append(_token_span(token, title, classes, style, data) + _role_label(names) + _BREAK)
    values = m.arrays["value"]
    value = f" (value {float(values[row.prompt]):.3g})" if row.prompt < values.size else ""
    query = next((name for name, pos in row.roles.items() if pos == row.query), str(row.query))
    head = f"{_esc(row.head)} from {_esc(query)} · prompt #{row.prompt}{value}"
    tokens = "".join(parts)
    return f'<div class="cs-attn"><div class="cs-head">{head}</div><div class="cs-line">{tokens}</div></div>'


def _guarded(render: Any, *args: Any) -> str:
    """``render(*args)``, or "" when it fails: one broken view must not lose the others or the report."""
    try:
        return str(render(*args))
    except Exception:
        return ""


def claim_prompts_html(r: ReportInput, claim_id: str, k: int = EXTREMES) -> str:
    """A claim card's prompt views: extremes of ``value`` and attention views ("" when not applicable)."""
    try:
        m = (getattr(r, "measurements", None) or {}).get(claim_id)
        if m is None or m.error or m.arrays.get("value") is None:
            return ""
        parts = [_guarded(_extremes_table, m, k)]
        views = [_guarded(_attention_block, row, m) for row in m.attention_rows]
        if any(views):
            parts.append(
                "<p>Attention from the query role over a few prompts' tokens (largest, median and smallest "
                "value): shading is the probability; hover a token for it.</p>"
            )
            parts += views
        return "".join(p for p in parts if p)
    except Exception:  # a broken view must not lose the report
        return ""
