"""HTML view of a ``logit_lens`` claim's top tokens: a site × position table per prompt (Fig. 20 of the
circuits report).

The engine keeps, with ``top_tokens: k``, a plain table per shown prompt in
``Measurement.extra["lens_top_tokens"]`` (``tokens``, ``sites``, and ``top`` / ``logits`` as
``[site][position][rank]``). Each cell shows the likeliest token with its logit; the others of the k
are in the cell's tooltip. The last row is the token that actually comes next, so a reader sees where
the lens starts predicting it. Prompts and tokens are user and model data: every text is escaped. The
view never raises (a broken view must not lose the report): any failure renders as "".
"""

from __future__ import annotations

import html
from typing import Any

from circuitspec.errors import printable

__all__ = ["LENS_VIEWS_CSS", "lens_html"]

LENS_VIEWS_CSS = """
.cs-lens table { border-collapse: collapse; margin: .3em 0; font-size: .85em; }
.cs-lens td, .cs-lens th { border: 1px solid #dde; padding: 1px 4px; white-space: nowrap; }
.cs-lens th { background: #f3f5f8; font-weight: normal; }
.cs-lens td small { color: #777; }
.cs-lens tr.cs-lens-next td { background: #eef7ee; font-style: italic; }
.cs-lens .cs-lens-tok { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: pre; }
"""


def _esc(text: Any) -> str:
    """User or model text as HTML (control characters shown as ``\\uXXXX``)."""
    return html.escape(printable(str(text)), quote=True)


def _token(text: str) -> str:
    return f'<span class="cs-lens-tok">{_esc(text)}</span>'


def _cell(tops: list[str], logits: list[float]) -> str:
    """The likeliest token and its logit; the rest of the top k as the tooltip."""
    rest = "; ".join(f"{printable(t)!r} {v:.3g}" for t, v in zip(tops[1:], logits[1:], strict=False))
    title = f' title="{_esc(rest)}"' if rest else ""
    return f"<td{title}>{_token(tops[0])} <small>{logits[0]:.3g}</small></td>"


def _prompt_table(entry: dict[str, Any]) -> str:
    tokens: list[str] = entry["tokens"]
    head = "".join(f"<th>{_token(t)}</th>" for t in tokens)
    rows = [f"<tr><th>site \\ token</th>{head}</tr>"]
    for label, tops, logits in zip(entry["sites"], entry["top"], entry["logits"], strict=True):
        cells = "".join(_cell(t, v) for t, v in zip(tops, logits, strict=True))
        rows.append(f"<tr><th>{_esc(label)}</th>{cells}</tr>")
    following = "".join(f"<td>{_token(t)}</td>" for t in tokens[1:]) + "<td></td>"
    rows.append(f'<tr class="cs-lens-next"><th>next token</th>{following}</tr>')
    return f"<p>prompt {int(entry['prompt'])}</p><table>{''.join(rows)}</table>"


def lens_html(r: Any, claim_id: str) -> str:
    """A logit lens claim card's top-token tables ("" for other kinds, errors and claims without them)."""
    try:
        m = (getattr(r, "measurements", None) or {}).get(claim_id)
        if m is None or m.error or m.kind != "logit_lens" or not m.extra.get("lens_top_tokens"):
            return ""
        tables = "".join(_prompt_table(entry) for entry in m.extra["lens_top_tokens"])
        return f'<div class="cs-lens"><p>Top tokens at each residual site (logit lens)</p>{tables}</div>'
    except Exception:  # a broken view must not lose the report
        return ""
