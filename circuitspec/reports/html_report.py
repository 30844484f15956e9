"""``report.html``: one self-contained page (inline CSS and SVG, no scripts, no network).

The page is a set of Jinja2 templates (``templates/report.html.j2`` and the partials it includes;
autoescaped, so every user string is escaped); this module gathers what they show. Plots are
inline SVG (``plots.render_svg``), the circuit is drawn by ``circuit_svg`` (its Mermaid text
appears only, folded, when there is no drawing), and the prompt views come from
``prompt_views`` (a generation claim's texts from ``generation_views``) when that module is present.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TextIO

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from .formatting import (
    VERDICT_COLOURS,
    VERDICT_SYMBOLS,
    VERDICTS,
    detail_value,
    fmt,
    fmt_ci,
    fmt_level,
    fmt_p,
    fmt_pvalue,
    tally,
)
from .json_report import claim_spec_fields
from .lens_views import LENS_VIEWS_CSS, lens_html
from .model import ReportInput
from .plotdata import claim_plots, point_statistic
from .plots import render_svg

__all__ = ["PlotProgress", "anchor", "plot_progress", "render_html"]

PlotProgress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each plot is drawn (plots are most of the time)."""


def plot_progress(stream: TextIO | None = None, every_s: float = 2.0) -> PlotProgress:
    """A :data:`PlotProgress` printing 'rendering plots i/n' to ``stream`` (stderr): one line
    rewritten in place on a terminal; elsewhere (CI logs) a line every ``every_s`` seconds and the last."""
    out = stream if stream is not None else sys.stderr
    tty, last = out.isatty(), [time.perf_counter()]

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        if tty:
            print(
                f"\rrendering plots {done}/{total}", end="\n" if done == total else "", file=out, flush=True
            )
        elif done == total or now - last[0] >= every_s:
            last[0] = now
            print(f"[{time.strftime('%H:%M:%S')}] rendering plots {done}/{total}", file=out, flush=True)

    return report


def anchor(claim_id: str) -> str:
    """The id of a claim's card (the verdict table links to it)."""
    return "claim-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in claim_id)


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The templates' environment (autoescape on, undefined names are errors)."""
    env = Environment(
        loader=PackageLoader("circuitspec.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals.update(
        fmt=fmt,
        fmt_ci=fmt_ci,
        fmt_level=fmt_level,
        fmt_p=fmt_p,
        fmt_pvalue=fmt_pvalue,
        anchor=anchor,
        colours=VERDICT_COLOURS,
        symbols=VERDICT_SYMBOLS,
    )
    return env


def _optional(module: str) -> Any:
    """A sibling module that may not be installed yet (prompt views, circuit drawing), else None."""
    try:
        return importlib.import_module(f"{__package__}.{module}")
    except ImportError:
        return None


def _plot_data(r: ReportInput) -> list[list[dict[str, Any]]]:
    """Every claim's plots, as data (cheap); drawing them is what takes time."""
    out = []
    for o in r.outcomes:
        spec = r.claims.get(o.claim_id)
        fields = claim_spec_fields(spec)
        out.append(
            claim_plots(
                o, r.measurements.get(o.claim_id), fields["targets"], fields["expect"] or o.expectation, spec
            )
        )
    return out


def _draw(plots: list[list[dict[str, Any]]], progress: PlotProgress | None) -> list[list[Markup]]:
    """Every plot as inline SVG. Identical plots (claims made by ``each`` share their head grid) are
    drawn once; each copy gets its own id prefix so the page's ids stay unique."""
    total, done, drawn = sum(map(len, plots)), 0, []
    cache: dict[str, tuple[str, str]] = {}
    for i, claim in enumerate(plots):
        svgs = []
        for j, plot in enumerate(claim):
            key = json.dumps(plot, sort_keys=True, default=str)
            if key not in cache:
                cache[key] = (f"d{len(cache)}", render_svg(plot, f"d{len(cache)}"))
            first, svg = cache[key]
            ident = f"c{i}p{j}"
            svgs.append(
                Markup(svg.replace(f'id="{first}-', f'id="{ident}-').replace(f"#{first}-", f"#{ident}-"))
            )
            done += 1
            if progress is not None:
                progress(done, total)
        drawn.append(svgs)
    return drawn


def _card(r: ReportInput, index: int, plots: list[Markup], views: Any) -> dict[str, Any]:
    o = r.outcomes[index]
    fields = claim_spec_fields(r.claims.get(o.claim_id))
    measurement = r.measurements.get(o.claim_id)
    error = measurement.error if measurement is not None else None
    prompts = views.claim_prompts_html(r, o.claim_id) if views is not None else ""
    generation = _optional("generation_views")
    generated = generation.generation_html(r, o.claim_id) if generation is not None else ""
    generated += lens_html(r, o.claim_id)  # a logit lens claim's top-token tables (top_tokens: k)
    return {
        "outcome": o,
        "anchor": anchor(o.claim_id),
        "description": fields["description"],
        "targets": fields["targets"],
        "error": error if error and error not in o.reason else None,
        "plots": plots,
        "prompts": Markup(prompts),
        "generated": Markup(generated),
        "variable": (measurement.sweep_variable if measurement else None) or "x",
        "point_statistic": point_statistic(o, o.expectation),
        "details": [(str(k), detail_value(str(k), v)) for k, v in sorted(o.details.items())],
    }


def _run_rows(r: ReportInput) -> list[tuple[str, str, bool]]:
    """The run table: (label, text, shown as code)."""
    return [
        ("hypothesis", r.hypothesis_path, True),
        ("sha256", r.hypothesis_sha256, True),
        *(
            (f"model {k}", fmt(v) if isinstance(v, float) else str(v), False)
            for k, v in sorted(r.model.items())
        ),
        ("seed", str(r.seed), False),
        ("family-wise error control", r.multiple_comparisons, False),
        ("packages", ", ".join(f"{k} {v or '—'}" for k, v in sorted(r.versions().items())), False),
    ]


def render_html(report_input: ReportInput, progress: PlotProgress | None = None) -> str:
    """The whole ``report.html`` text; ``progress(done, total)`` is called after each plot."""
    r = report_input
    counts = tally([o.verdict for o in r.outcomes])
    views, drawing = _optional("prompt_views"), _optional("circuit_svg")
    drawn = _draw(_plot_data(r), progress)
    circuit = drawing.circuit_svg(getattr(r, "circuit", None)) if drawing is not None else None
    costs = [(o.claim_id, m.cost) for o in r.outcomes if (m := r.measurements.get(o.claim_id)) is not None]
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            r=r,
            model=str(r.model.get("source") or r.model.get("name") or ""),
            tiles=[(v, counts[v]) for v in VERDICTS if v != "error" or counts[v]],
            circuit_svg=Markup(circuit) if circuit else None,
            sample=Markup(views.prompt_sample_html(r)) if views is not None else "",
            extra_css=Markup(
                getattr(views, "PROMPT_VIEWS_CSS", "")
                + getattr(_optional("generation_views"), "GENERATION_VIEWS_CSS", "")
                + LENS_VIEWS_CSS
            ),
            cards=[_card(r, i, drawn[i], views) for i in range(len(r.outcomes))],
            run_rows=_run_rows(r),
            costs=costs,
        )
    )
