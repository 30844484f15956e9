"""report.md and report.html: verdict table, inline SVG plots with units, hover titles, readable
details, the drawn circuit, and a real browser render at 800 and 1400 px."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from circuitspec.reports import write_reports
from circuitspec.reports.formatting import VERDICT_COLOURS
from circuitspec.reports.html_report import render_html
from tests.helpers.report_sample import sample_report_input

ROOT = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"


def _toy_circuit() -> dict:
    """The toy hypothesis' component graph (what the pipeline stores in ``ReportInput.circuit``)."""
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.graph.components import circuit_dict
    from circuitspec.spec.loader import load_hypothesis

    return circuit_dict(compile_hypothesis(load_hypothesis(ROOT / "hypotheses" / "toy_sentiment.yaml"), None))


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """The sample's three reports (no circuit drawing: the Mermaid fallback), written once."""
    return write_reports(sample_report_input(), tmp_path_factory.mktemp("reports") / "ioi_sample")


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> Path:
    """The sample's report.html with the toy circuit to draw, and the long claim ids and
    expectations of real hypotheses (they made the old verdict table 1078 px wide)."""
    report = sample_report_input()
    report.circuit = _toy_circuit()
    for outcome in report.outcomes[:4]:
        old, new = outcome.claim_id, f"no_head_pushes_against_{outcome.claim_id}_substitution[L10H7]"
        outcome.claim_id = new
        report.measurements[new] = report.measurements.pop(old)
        report.claims[new] = report.claims.pop(old)
    report.outcomes[1].expectation = "success_rate increases with alpha_of_the_value_vector"
    return write_reports(report, tmp_path_factory.mktemp("drawn") / "ioi_sample")["html"]


def _read_png(data: bytes) -> np.ndarray:
    """An RGB(A) array in [0, 1] from PNG bytes, via matplotlib (always installed here)."""
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(data), format="png")


def _distinct_colours(pixels: np.ndarray) -> int:
    """How many different RGB colours an image has (packed into one integer each: fast)."""
    rgb = (pixels[..., :3] * 255).round().astype(np.int64).reshape(-1, 3)
    return int(np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).size)


def _plots(page: str) -> list[tuple[str, ET.Element]]:
    """Every plot's inline SVG, parsed, with its aria-label (the plot's title), in page order."""
    roots = [ET.fromstring(s) for s in re.findall(r"<figure>(<svg .*?</svg>)", page, flags=re.S)]
    return [(root.get("aria-label", ""), root) for root in roots]


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_markdown_has_the_verdict_table_first(written):
    text = written["md"].read_text(encoding="utf-8")
    lines = text.splitlines()
    header = lines.index("| claim | kind | statistic | estimate | CI | p (adj.) | verdict |")
    assert header < text.index("## Claims")
    rows = lines[header + 2 : header + 10]
    outcomes = sample_report_input().outcomes
    for row, outcome in zip(rows, outcomes, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == f"`{outcome.claim_id}`" and cells[-1].endswith(f"**{outcome.verdict}**")
    assert "| `faithful` | faithfulness | recovered | 0.62 | [0.5, 0.74] | 0.0396 | ✘ **fail** |" in rows
    assert "**4 passed, 2 failed, 2 inconclusive** of 8 claims." in text
    assert "```mermaid\nflowchart LR" in text  # the circuit, rendered by GitHub
    assert "| alpha | success_rate | CI |\n|---:|---:|---|\n| -4.0 | 0.01799 | [-0.06201, 0.09799] |" in text


def test_html_is_self_contained(written):
    page = written["html"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script" not in page and "<link" not in page and "<img" not in page  # no JS, no files
    for target in re.findall(r'(?:src|href)="([^"]*)"', page):
        # links to claims, references inside an SVG, a heatmap's colour bar (a gradient strip)
        assert target.startswith(("#", "data:image/png;base64,")), target
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "url(" not in page.replace("url(#", "")
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # many inline SVGs, no clashing ids
    for outcome in sample_report_input().outcomes:
        assert f'id="claim-{outcome.claim_id}"' in page and f'href="#claim-{outcome.claim_id}"' in page
    for colour in VERDICT_COLOURS.values():
        assert colour in page


def test_mermaid_text_only_folded_and_only_without_a_drawing(written, drawn):
    page = written["html"].read_text(encoding="utf-8")
    folded = re.search(r"<details><summary>[^<]*</summary><pre>(.*?)</pre></details>", page, flags=re.S)
    assert folded and folded[1].startswith("flowchart LR\n  L7H5[&#34;L7H5 (mover)&#34;] --&gt; logits")
    assert page.count("<pre>") == 1  # that one, inside <details>
    with_circuit = drawn.read_text(encoding="utf-8")
    assert "<pre>" not in with_circuit and "flowchart" not in with_circuit
    circuit = re.search(r'<div class="circuit">(<svg .*?</svg>)</div>', with_circuit, flags=re.S)
    assert circuit is not None
    titles = [t.text for t in ET.fromstring(circuit[1]).iter(f"{SVG}title")]
    assert any(t and t.startswith("L0H0") for t in titles)  # a component of the toy circuit


def test_html_has_one_inline_svg_per_plot(written):
    page = written["html"].read_text(encoding="utf-8")
    plots = [p for c in json.loads(written["json"].read_text())["claims"] for p in c["plots"]]
    found = re.findall(r"<figure><svg ", page)
    assert len(found) == len(plots) == 10
    for _, root in _plots(page):
        assert root.get("viewBox") and root.get("role") == "img"
        rasters = root.findall(f".//{SVG}image")  # vector: no raster but a colour bar's gradient
        assert len(rasters) == (1 if root.find(f".//{SVG}title") is not None else 0)
        assert len(_texts(root)) > 5  # ticks and labels are real text (svg.fonttype none)
    assert written["html"].stat().st_size < 400_000


def test_axes_name_the_quantity_and_its_unit(written):
    plots = _plots(written["html"].read_text(encoding="utf-8"))
    texts = {label: " ".join(_texts(root)) for label, root in plots}
    assert "mean direct logit attribution (desired − undesired), nats" in texts["mean per target"]
    assert "mean logit difference (desired − undesired), nats" in texts["mean metric per run"]
    assert (
        "recovered fraction of (clean − corrupted)"
        in texts["recovered of 100 random circuits vs the hypothesis"]
    )
    distributions = [" ".join(_texts(root)) for label, root in plots if label == "per-prompt value (n=40)"]
    assert "attention probability" in distributions[0]  # name_mover_attends
    assert "Δ logit difference vs clean (ablated − clean), nats" in distributions[1]  # ablate_hurts
    assert "α (scale of the targets' activation)" in texts["success_rate by alpha"]


def test_runs_plot_draws_the_expectation_where_the_intervened_mean_must_be():
    from circuitspec.reports.plotdata import claim_plots

    report = sample_report_input()
    outcome = next(o for o in report.outcomes if o.claim_id == "faithful")
    m = report.measurements["faithful"]
    guide = claim_plots(outcome, m, [], "recovered >= 0.8")[0]["guide"]
    clean, corrupt = np.mean(m.arrays["clean"]), np.mean(m.arrays["corrupt"])
    assert guide["bar"] == 2 and guide["op"] == ">="
    assert guide["threshold"] == pytest.approx(corrupt + 0.8 * (clean - corrupt), rel=1e-12)
    # an ablation: value = intervened − clean, so 'mean < -2' puts the line at mean(clean) − 2
    rng = np.random.default_rng(1)
    clean_v, ablated = rng.normal(3, 1, 50), rng.normal(0.5, 1, 50)
    m.arrays = {
        "clean": clean_v,
        "corrupt": rng.normal(0, 1, 50),
        "intervened": ablated,
        "value": ablated - clean_v,
    }
    outcome.statistic = "mean"
    guide = claim_plots(outcome, m, [], "mean < -2")[0]["guide"]
    assert guide["threshold"] == pytest.approx(clean_v.mean() - 2, rel=1e-12) and guide["bar"] == 2
    # a median is not a difference of means: no line rather than a wrong one
    outcome.statistic = "median"
    assert "guide" not in claim_plots(outcome, m, [], "median < -2")[0]


def test_heatmap_and_attention_cells_show_their_value_on_hover(written):
    report = sample_report_input()
    plots = dict(_plots(written["html"].read_text(encoding="utf-8")))
    grid = np.asarray(report.measurements["lens_rises"].plots[0].values)
    titles = [t.text for t in plots["layer × head"].iter(f"{SVG}title")]
    assert titles == [f"L{i}H{j}: {grid[i, j]:.4g}" for i in range(6) for j in range(4)]
    payload = report.measurements["name_mover_attends"].plots[0]
    titles = [t.text for t in plots["attention pattern"].iter(f"{SVG}title")]
    n = len(payload.tokens)
    assert len(titles) == n * n
    assert titles[2 * n + 1] == f"query ' Mary' → key 'When': {payload.pattern[2][1]:.4g}"


def test_details_read_as_text_not_python_reprs():
    report = sample_report_input()
    report.outcomes[4].details.update(random_baseline={"n": 30, "p_value": 1e-20}, layers=[1, 2, 3])
    page = render_html(report)
    card = page[page.index('id="claim-faithful"') : page.index('id="claim-control_nan"')]
    assert "<th>random baseline</th>" in card and '<table class="nested">' in card
    assert "<th>p value</th><td>&lt; 1e-16</td>" in card and "<th>n</th><td>30</td>" in card
    assert "<td>1, 2, 3</td>" in card and "<th>baseline mean</th><td>0.1</td>" in card
    assert "{" not in card.split("</svg>")[-1] and "[1, 2" not in card  # no dict / list reprs


def test_user_text_is_escaped_everywhere():
    report = sample_report_input()
    evil = "<script>alert(1)</script>"
    report.description = evil
    report.outcomes[0].reason = evil
    report.outcomes[0].details["note"] = {"why": evil}
    report.claims["dla_negative"].description = evil
    report.measurements["name_mover_attends"].plots[0].tokens[1] = evil  # a token: tick label, hover text
    report.graph_text = evil
    page = render_html(report)
    assert "<script" not in page and page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6


def test_rendering_is_deterministic_and_reports_progress():
    calls: list[tuple[int, int]] = []
    first = render_html(sample_report_input(), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 10) for i in range(1, 11)]
    assert render_html(sample_report_input()) == first


def test_plot_progress_lines(tmp_path):
    from circuitspec.reports.html_report import plot_progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    log, terminal = io.StringIO(), Terminal()
    every, in_place = plot_progress(log, every_s=3600), plot_progress(terminal)
    for done in (1, 2, 3):
        every(done, 3)
        in_place(done, 3)
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] rendering plots 3/3\n", log.getvalue())  # CI: the last only
    assert terminal.getvalue() == "\rrendering plots 1/3\rrendering plots 2/3\rrendering plots 3/3\n"
    calls: list[tuple[int, int]] = []
    write_reports(sample_report_input(), tmp_path / "out", progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (10, 10) and len(calls) == 10


def test_regression_x_axis_is_numeric_when_checkpoints_are_steps():
    from circuitspec.regress.matrix import MatrixCell, MatrixRow, checkpoint_steps, plot_claim_svg
    from circuitspec.stats.outcome import Interval

    assert checkpoint_steps([0, "step_00100", "step-500", 2000]) == [0, 100, 500, 2000]
    assert checkpoint_steps(["step_0", "final"]) is None and checkpoint_steps([True]) is None
    row = MatrixRow("dla", "attribution", "mean", "mean < 0")
    for step, estimate in ((0, 0.3), (100, -0.1), (2000, -0.7)):
        row.cells[str(step)] = MatrixCell(
            estimate, Interval(estimate - 0.2, estimate + 0.2, 0.95, "BCa"), "pass"
        )
    numeric = _texts(ET.fromstring(plot_claim_svg(row, [0, 100, 2000])))
    assert "training step" in numeric and "100" not in numeric  # ticks by value (0, 500, …), not names
    named = {str(c): row.cells[str(s)] for c, s in zip(("a", "b", "final"), (0, 100, 2000), strict=True)}
    row.cells = named
    categorical = _texts(ET.fromstring(plot_claim_svg(row, ["a", "b", "final"])))
    assert "checkpoint" in categorical and {"a", "b", "final"} <= set(categorical)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "/usr/bin/chromium"):
        found = shutil.which(name)
        if found:
            return found
    return None


_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip

# test-only: measures the laid-out page and writes the numbers into the DOM (a copy of the report)
_MEASURE = """<script>
(() => {
  const box = (el) => el ? el.getBoundingClientRect() : {width: 0, height: 0, right: 0};
  const table = document.querySelector('table.verdicts'), main = document.querySelector('main');
  const circuit = box(document.querySelector('.circuit svg'));
  const pres = [...document.querySelectorAll('pre')].filter(p => /flowchart|-->/.test(p.textContent));
  const out = {viewport: document.documentElement.clientWidth, page: document.documentElement.scrollWidth,
    table: box(table).width, tableRight: box(table).right, mainRight: box(main).right - 24,
    overflowing: [...table.querySelectorAll('td, th')]
      .filter(c => getComputedStyle(c).display !== 'none' && c.scrollWidth > c.clientWidth + 1)
      .map(c => c.className + ': ' + c.textContent),
    circuitWidth: circuit.width, circuitHeight: circuit.height, mermaidPres: pres.length};
  const el = document.createElement('div'); el.id = 'measured'; el.textContent = JSON.stringify(out);
  document.body.appendChild(el);
})();
</script>"""


def _measure(browser: str, page: Path, width: int, tmp: Path) -> dict:
    copy = tmp / f"measure-{width}.html"
    copy.write_text(
        page.read_text(encoding="utf-8").replace("</body>", _MEASURE + "</body>"), encoding="utf-8"
    )
    command = [
        browser,
        *_FLAGS,
        f"--user-data-dir={tmp / 'profile'}",
        f"--window-size={width},1200",
        "--dump-dom",
    ]
    dom = subprocess.run([*command, copy.as_uri()], capture_output=True, text=True, timeout=300, check=False)
    found = re.search(r'<div id="measured">(.*?)</div>', dom.stdout)
    assert found, dom.stderr[-2000:]
    return json.loads(found[1].replace("&quot;", '"'))


@pytest.mark.slow  # four browser starts: a few seconds each
@pytest.mark.parametrize("width", [800, 1400])
def test_report_in_headless_chromium_fits_and_draws_the_circuit(drawn, tmp_path, width):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (run `make browser` or `apt-get install -y chromium`)")
    got = _measure(browser, drawn, width, tmp_path)
    assert abs(got["viewport"] - width) <= 20, got  # the window size took effect
    assert got["page"] <= got["viewport"], got  # no horizontal scroll of the page
    assert got["tableRight"] <= got["mainRight"] + 1 and got["overflowing"] == [], got  # every cell fits
    assert got["circuitWidth"] > 200 and got["circuitHeight"] > 60, got  # the drawing, visible
    assert got["mermaidPres"] == 0, got
    shot = tmp_path / f"report-{width}.png"
    command = [browser, *_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},1600"]
    subprocess.run(
        [*command, f"--screenshot={shot}", drawn.as_uri()], capture_output=True, timeout=300, check=False
    )
    assert shot.is_file(), "chromium wrote no screenshot"
    pixels = _read_png(shot.read_bytes())[..., :3]
    assert pixels.shape[:2] == (1600, width)
    assert _distinct_colours(pixels) > 200  # text, tables and plots, not a blank page
    flat = (pixels * 255).round().astype(np.int16).reshape(-1, 3)
    ink = np.ones(len(flat), dtype=bool)  # pixels far from both the page background and white cards
    for paper in ([246, 247, 249], [255, 255, 255]):
        ink &= np.abs(flat - np.array(paper)).sum(axis=1) > 30
    assert ink.mean() > 0.03, ink.mean()
    for colour in ("#1e7d36", "#b3261e"):  # the verdict pills in their colours, on the first screen
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(flat - rgb).sum(axis=1) < 12).sum() > 300, colour
