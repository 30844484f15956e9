"""HTML view of a ``generation`` claim's texts: a few prompts, the control continuation and the
intervened one at each α, with their scores (contrastive-sentiment-mechanisms §7 reads flips and edit
distances off such examples).

The engine keeps the texts in ``Measurement.extra["generated"]`` (``"control"`` and ``"alpha=<α>"``,
one text per prompt, aligned with the sweep's per-prompt arrays: ``clean`` is the control's score,
``intervened`` the intervened text's, ``value`` their difference or the flip). The table shows the
prompts whose ``value`` at the verdict's α (the last listed) is largest in size, so changed texts
come first. Prompts and generations are user and model data: every text is escaped. The view never
raises (a broken view must not lose the report): any failure renders as "". The sweep's plot of the
statistic against α is the report's ordinary sweep plot.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from circuitspec.errors import printable
from circuitspec.measurement import Measurement, SweepPoint

__all__ = ["GENERATION_VIEWS_CSS", "MAX_ALPHAS", "MAX_PROMPTS", "generation_html", "shown_alphas"]

GENERATION_VIEWS_CSS = """
.cs-gen table { border-collapse: collapse; margin: .3em 0; font-size: .9em; }
.cs-gen td, .cs-gen th { border: 1px solid #dde; padding: 2px 6px; text-align: left; vertical-align: top; }
.cs-gen tr.cs-gen-prompt th { background: #f3f5f8; font-weight: normal; }
.cs-gen td.cs-gen-what { white-space: nowrap; color: #555; }
.cs-gen td.cs-gen-score { text-align: right; font-family: ui-monospace, monospace; white-space: nowrap; }
.cs-gen .cs-gen-text { white-space: pre-wrap; font-family: ui-monospace, Menlo, Consolas, monospace; }
.cs-gen .cs-gen-empty { color: #888; font-style: italic; }
.cs-gen tr.cs-gen-changed td.cs-gen-text { background: #fff8e1; }
"""

MAX_PROMPTS = 5  # prompts per claim's table
MAX_ALPHAS = 6  # α rows per prompt; longer sweeps show evenly spaced ones, always the last
_SCORE_NAMES = {
    "sentiment": "VADER sentiment",
    "flip": "has the target sentiment",
    "levenshtein": "token distance to the original",
    "keywords": "keyword share",
}


def _esc(text: Any) -> str:
    """User or model text as HTML (control characters shown as ``\\uXXXX``)."""
    return html.escape(printable(str(text)), quote=True)


def _number(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "NaN" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _score(score: str | None, x: Any) -> str:
    """One score as text: ``flip`` scores are 0/1 (the text has the target sentiment or not)."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return "—"
    if score == "flip" and value in (0.0, 1.0):
        return "yes" if value else "no"
    return _number(value)


def _change(score: str | None, x: Any) -> str:
    """The per-prompt ``value``: the flip indicator, else the score's change against the control."""
    value = float(x)
    if score == "flip" and value in (0.0, 1.0):
        return "flipped" if value else "—"
    return ("+" if value > 0 else "") + _number(value)


def shown_alphas(points: list[SweepPoint], limit: int = MAX_ALPHAS) -> list[SweepPoint]:
    """The sweep points shown: all up to ``limit``, else ``limit`` evenly spaced ones ending with the
    last (the α the verdict reads)."""
    if len(points) <= limit:
        return list(points)
    picks = np.linspace(0, len(points) - 1, limit).round().astype(int)
    return [points[int(i)] for i in sorted(set(picks.tolist()))]


def _text_cell(text: str) -> str:
    if not text:
        return '<td class="cs-gen-text"><span class="cs-gen-empty">(nothing generated)</span></td>'
    return f'<td class="cs-gen-text">{_esc(text)}</td>'


def _cell(render: Any, score: str | None, values: Any, i: int) -> str:
    """One right-aligned number cell (``render``: :func:`_score` or :func:`_change`; "—" when absent)."""
    text = render(score, values[i]) if values is not None and i < len(values) else "—"
    return f'<td class="cs-gen-score">{text}</td>'


def _prompt_rows(
    m: Measurement, i: int, generated: dict[str, list[str]], points: list[SweepPoint], score: str | None
) -> str:
    """One prompt: its text, the control continuation, then one row per α shown."""
    labels = m.prompt_labels
    prompt = labels[i] if len(labels) == m.n_prompts else f"prompt #{i}"
    control = generated["control"][i]
    clean = points[-1].arrays.get("clean") if points else None
    rows = [
        f'<tr class="cs-gen-prompt"><th colspan="4">#{i}: '
        f'<span class="cs-gen-text">{_esc(prompt)}</span></th></tr>',
        f'<tr><td class="cs-gen-what">control</td>{_text_cell(control)}{_cell(_score, score, clean, i)}'
        "<td></td></tr>",
    ]
    for point in points:
        texts = generated.get(f"alpha={float(point.x):g}")
        if texts is None:
            continue
        changed = ' class="cs-gen-changed"' if texts[i] != control else ""
        rows.append(
            f'<tr{changed}><td class="cs-gen-what">α = {_esc(f"{float(point.x):g}")}</td>'
            f"{_text_cell(texts[i])}{_cell(_score, score, point.arrays.get('intervened'), i)}"
            f"{_cell(_change, score, point.arrays.get('value'), i)}</tr>"
        )
    return "".join(rows)


def _picked(m: Measurement, points: list[SweepPoint], k: int) -> list[int]:
    """The ``k`` prompts whose ``value`` at the last α is largest in size (ties: the earlier prompt)."""
    value = points[-1].arrays.get("value") if points else None
    if value is None:
        return list(range(min(k, m.n_prompts)))
    size = np.abs(np.nan_to_num(np.asarray(value, dtype=float), nan=0.0))
    return sorted(range(size.size), key=lambda i: (-size[i], i))[:k]


def _table(m: Measurement, spec: Any, k: int) -> str:
    generated = m.extra.get("generated")
    if not isinstance(generated, dict) or not generated.get("control"):
        return ""
    n = len(generated["control"])
    if any(len(texts) != n for texts in generated.values()) or n != m.n_prompts:
        return ""
    score = getattr(spec, "score", None)
    points = shown_alphas(list(m.sweep))
    picked = _picked(m, points, k)
    name = _SCORE_NAMES.get(str(score), "score")
    alphas = f"{len(points)} of {len(m.sweep)} alphas" if len(points) < len(m.sweep) else "each alpha"
    last = f"{float(points[-1].x):g}" if points else "?"
    caption = (
        f"Generated text of {len(picked)} of {n} prompts (those changed most at α = {_esc(last)}): "
        f"the control continuation and the intervened one at {alphas}; each text's score ({_esc(name)}) "
        "and its change against the control"
    )
    head = f"<tr><th></th><th>continuation</th><th>{_esc(name)}</th><th>change</th></tr>"
    body = "".join(_prompt_rows(m, i, generated, points, score) for i in picked)
    table = f"<table><caption>{caption}</caption>{head}{body}</table>"
    return f'<div class="cs-gen">{table}{_distance_changes(m)}</div>'


def _distance_changes(m: Measurement) -> str:
    """``levenshtein``: each α's % change of the mean distance against the control (the paper's Fig. 7)."""
    changes = m.extra.get("distance_change_pct")
    if not isinstance(changes, dict) or not changes:
        return ""
    try:
        parts = [f"α = {_esc(alpha)}: {float(pct):+.3g}%" for alpha, pct in changes.items()]
    except (TypeError, ValueError):
        return ""
    return f"<p>Mean token distance to the original, change against the control: {', '.join(parts)}.</p>"


def generation_html(r: Any, claim_id: str, k: int = MAX_PROMPTS) -> str:
    """A generation claim card's table of texts ("" for other kinds, errors and runs without texts)."""
    try:
        m = (getattr(r, "measurements", None) or {}).get(claim_id)
        if m is None or m.error or m.kind not in ("generation", "steering"):  # steering: with a text score
            return ""
        return _table(m, (getattr(r, "claims", None) or {}).get(claim_id), k)
    except Exception:  # a broken view must not lose the report
        return ""
