"""report.md and report.html: verdict table, plots, self-contained page, and a real browser render."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from circuitspec.reports import write_reports
from circuitspec.reports.formatting import VERDICT_COLOURS
from tests.helpers.report_sample import sample_report_input


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """The sample's three reports, written once for every test here (plots take a moment)."""
    return write_reports(sample_report_input(), tmp_path_factory.mktemp("reports") / "ioi_sample")


def _read_png(data: bytes) -> np.ndarray:
    """An RGB(A) array in [0, 1] from PNG bytes, via matplotlib (always installed here)."""
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(data), format="png")


def _distinct_colours(pixels: np.ndarray) -> int:
    """How many different RGB colours an image has (packed into one integer each: fast)."""
    rgb = (pixels[..., :3] * 255).round().astype(np.int64).reshape(-1, 3)
    return int(np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).size)


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
    assert "<script" not in page and "<link" not in page  # no JS, no external CSS
    for target in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert target.startswith(("data:image/png;base64,", "#claim-")), target
    assert "http://" not in page and "https://" not in page and "url(" not in page
    # every claim has a section the verdict table links to
    for outcome in sample_report_input().outcomes:
        assert f'id="claim-{outcome.claim_id}"' in page and f'href="#claim-{outcome.claim_id}"' in page
    # the circuit graph is shown as text, HTML-escaped
    assert "<pre>flowchart LR\n  L7H5[&quot;L7H5 (mover)&quot;] --&gt; logits" in page
    for colour in VERDICT_COLOURS.values():
        assert colour in page


def test_html_has_one_png_per_plot(written):
    page = written["html"].read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    plots = [p for c in json.loads(written["json"].read_text())["claims"] for p in c["plots"]]
    assert len(images) == len(plots) == 10
    for encoded in images:
        pixels = _read_png(base64.b64decode(encoded))
        assert pixels.shape[0] >= 250 and pixels.shape[1] >= 350
        assert _distinct_colours(pixels) > 20  # not blank


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "/usr/bin/chromium"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.slow  # a browser start: a few seconds
def test_html_renders_in_headless_chromium(written, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (run `make browser` or `apt-get install -y chromium`)")
    shot = tmp_path / "report.png"
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,1600",
        written["html"].resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(command, capture_output=True, timeout=600, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    pixels = _read_png(shot.read_bytes())[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    flat = (pixels * 255).round().astype(np.int16).reshape(-1, 3)
    assert _distinct_colours(pixels) > 200  # text, tables and a plot, not a blank page
    # "ink": pixels far from both the page background and the white cards (a blank page has none)
    ink = np.ones(len(flat), dtype=bool)
    for paper in ([246, 247, 249], [255, 255, 255]):
        ink &= np.abs(flat - np.array(paper)).sum(axis=1) > 30
    assert ink.mean() > 0.03, ink.mean()
    # the verdict pills in their colours: green pass and red fail are on the first screen
    for colour in ("#1e7d36", "#b3261e"):
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(flat - rgb).sum(axis=1) < 12).sum() > 300, colour
