"""Templates without answers (for generation claims) and a generation claim's texts in the report.

An answerless template with a ``generation`` claim validates and verifies on the toy model; a claim that
compares answer logits on such a template is one located line at ``validate``; the report's generation
table shows each prompt's control and intervened continuations with their VADER scores (recomputed
here with ``vaderSentiment`` itself), escaped, and never raises.
"""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from circuitspec.cli.main import app
from circuitspec.errors import CircuitSpecError
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.measurement import Measurement, SweepPoint
from circuitspec.reports.generation_views import generation_html, shown_alphas
from circuitspec.spec.loader import load_hypothesis

LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>[^\n]+)$")

ROWS = """\
  rows:
    - {s_ori: Positive, s_con: Negative, w_ori: good}
    - {s_ori: Negative, s_con: Positive, w_ori: bad}
    - {s_ori: Positive, s_con: Negative, w_ori: great}
    - {s_ori: Negative, s_con: Positive, w_ori: awful}
"""

GENERATION = f"""\
name: rewrite_without_answers
model: {{bundled: toy_sentiment}}
data:
{ROWS}  templates:
    - id: rewrite  # the paper's section 7 prompt: no single answer token
      text: "{{s_ori}}: {{w_ori}}. {{s_con}}:"
claims:
  - id: sentiment_moves
    kind: generation
    targets: [L0H0.v@s_con]
    alphas: [1, 8]
    score: sentiment
    max_new_tokens: 3
    min_n: 2
    expect: mean > 0
  - id: flips_to_the_label
    kind: generation
    targets: [L0H0.v@s_con]
    alphas: [8]
    score: flip
    target_sentiment: "{{s_con}}"
    max_new_tokens: 3
    min_n: 2
    expect: mean > 0
  - id: stays_close
    kind: generation
    targets: [L0H0.v@s_con]
    alphas: [8]
    score: levenshtein
    original: "{{w_ori}} {{w_ori}}"
    max_new_tokens: 3
    min_n: 2
    expect: mean < 3
  - id: reads_the_label
    kind: attention
    targets: L0H0
    destination: s_con
    min_n: 2
    expect: mean > 0
"""


def _vader(text: str) -> float:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return float(SentimentIntensityAnalyzer().polarity_scores(text)["compound"])


@pytest.fixture(scope="module")
def run(toy, tmp_path_factory):
    """The answerless hypothesis verified on the toy model (4 prompts, 3 tokens) and its report input."""
    from circuitspec.pipeline import run_verification
    from circuitspec.reports.model import build_report_input

    path = tmp_path_factory.mktemp("gen") / "rewrite.yaml"
    path.write_text(GENERATION, encoding="utf-8")
    verification = run_verification(path, progress=False, loaded_model=toy[1])
    return path, verification, build_report_input(verification)


def test_answerless_template_validates_and_verifies(run):
    path, verification, _ = run
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 0
    shown = CliRunner().invoke(app, ["prompts", str(path), "-n", "1"])  # plain text: not a terminal
    assert shown.exit_code == 0, shown.output
    assert "answers:    none (a template for generation and attention claims)" in shown.stdout
    for claim_id in ("sentiment_moves", "flips_to_the_label", "stays_close", "reads_the_label"):
        m = verification.measurements[claim_id]
        assert m.error is None and m.n_prompts == 4, (claim_id, m.error)
    m = verification.measurements["sentiment_moves"]
    generated = m.extra["generated"]
    assert set(generated) == {"control", "alpha=1", "alpha=8"}
    assert generated["alpha=1"] == generated["control"]  # α = 1 is the control itself
    assert m.arrays["intervened"].tolist() == pytest.approx([_vader(t) for t in generated["alpha=8"]])
    assert all(0 < len(t.split()) <= 3 for t in generated["alpha=8"])  # three tokens at most
    assert {o.claim_id: o.verdict for o in verification.outcomes}["reads_the_label"] != "error"


def test_report_shows_each_prompts_texts_and_scores(run):
    from circuitspec.reports.html_report import render_html

    _, verification, report = run
    page = render_html(report)
    m = verification.measurements["sentiment_moves"]
    generated = m.extra["generated"]
    view = generation_html(report, "sentiment_moves")
    assert view and view in page and ".cs-gen table" in page  # the table and its CSS
    for i, prompt in enumerate(m.prompt_labels):  # 4 prompts: all shown, scores recomputed here
        assert f'#{i}: <span class="cs-gen-text">{html.escape(prompt)}</span>' in view
        for text in (generated["control"][i], generated["alpha=8"][i]):
            score = f'<td class="cs-gen-score">{_vader(text):.3g}</td>'
            assert f'<td class="cs-gen-text">{html.escape(text)}</td>{score}' in view
    changes = np.abs(m.sweep[-1].arrays["value"])
    order = [int(i) for i in re.findall(r"<th colspan=\"4\">#(\d+):", view)]
    assert changes[order].tolist() == sorted(changes, reverse=True)  # most changed first
    flips = generation_html(report, "flips_to_the_label")
    flipped = verification.measurements["flips_to_the_label"].arrays["value"]
    assert flips.count(">flipped<") == int(flipped.sum()) and flipped.sum() > 0
    assert generation_html(report, "reads_the_label") == ""  # not a generation claim
    point = verification.measurements["stays_close"].sweep[-1].arrays
    control = point["clean"].mean()
    change = 100 * (point["intervened"].mean() - control) / control
    assert f"change against the control: α = 8: {change:+.3g}%." in generation_html(report, "stays_close")
    assert "no answers (a template for generation and attention claims)" in page  # the prompt sample


def test_generated_texts_are_escaped_and_the_view_never_raises(run):
    from circuitspec.reports.html_report import render_html

    _, verification, report = run
    report = copy.copy(report)
    m = copy.deepcopy(verification.measurements["sentiment_moves"])
    m.prompt_labels[0] = "<b>Positive</b>: good. Negative:"
    m.extra["generated"]["control"][0] = "bad <script>alert(1)</script> & \x07"
    report.measurements = {**report.measurements, "sentiment_moves": m}
    page = render_html(report)
    assert "&lt;b&gt;Positive&lt;/b&gt;: good. Negative:" in page
    assert "bad &lt;script&gt;alert(1)&lt;/script&gt; &amp; \\u0007" in page
    assert "<b>Positive" not in page and "<script>" not in page
    for broken in ("junk", {"control": None}, {"control": ["one"]}, {"control": [1, 2, 3, 4], "alpha=8": 5}):
        m.extra["generated"] = broken
        assert generation_html(report, "sentiment_moves") == ""
    m.extra.pop("generated")
    assert generation_html(report, "sentiment_moves") == ""
    assert generation_html(report, "no_such_claim") == "" and generation_html(None, "x") == ""


def test_long_sweeps_show_evenly_spaced_alphas_ending_with_the_verdicts():
    points = [SweepPoint(float(2**k), {}) for k in range(11)]  # the paper's α = 2^0 … 2^10
    shown = [p.x for p in shown_alphas(points, limit=6)]
    assert shown == [1.0, 4.0, 16.0, 64.0, 256.0, 1024.0]
    assert shown_alphas(points[:3], limit=6) == points[:3]
    m = Measurement("c", "generation", 1, sweep=[SweepPoint(2.0, {"value": np.array([0.0])})])
    m.extra["generated"] = {"control": [""], "alpha=2": ["x"]}
    view = generation_html(type("R", (), {"measurements": {"c": m}, "claims": {}})(), "c")
    assert "(nothing generated)" in view and '<td class="cs-gen-text">x</td>' in view


# ------------------------------------------------------------------------ claims that need answers

CHECKED = f"""\
name: mixed
model: {{bundled: toy_sentiment}}
data:
{ROWS}  templates:
    - id: rewrite
      text: "{{s_ori}}: {{w_ori}}. {{s_con}}:"
      tags: [open]
    - id: sub
      text: "{{s_ori}}: {{w_ori}}. {{s_con}}: not"
      desired: " {{w_ori}}"
      undesired: " good"
claims:
  - id: look
    kind: attention
    targets: L0H0
    destination: s_con
    expect: mean > 0
  - id: CLAIM
    kind: KIND
    METRIC
    data: DATA
    expect: mean > 0
"""


def _checked(tmp_path: Path, kind: str, data: str, metric: str = "logit_diff") -> tuple[Path, str]:
    text = (
        CHECKED.replace("CLAIM", f"{kind}_claim")
        .replace("KIND", kind)
        .replace("METRIC", f"metric: {metric}")
        .replace("DATA", data)
    )
    if kind in ("ablation", "attribution", "scaling"):
        text = text.replace("    metric:", "    targets: [L0H1]\n    metric:")
    if kind == "scaling":
        text = text.replace("    metric:", "    alphas: [0, 2]\n    metric:")
    if data == "ALL":
        text = text.replace("    data: ALL\n", "")
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text


@pytest.mark.parametrize(
    ("kind", "data", "metric", "marker"),
    [
        ("ablation", "[open]", "logit_diff", "data: [open]"),  # selected by tag: points at the tag
        ("behaviour", "ALL", "prob_diff", "- id: behaviour_claim"),  # every template: points at the claim
        ("scaling", "[sub, rewrite]", "desired_prob", "data: [sub, rewrite]"),
        ("attribution", "[rewrite]", "kl", "data: [rewrite]"),  # DLA reads the answers whatever the metric
    ],
)
def test_a_claim_comparing_answers_on_an_answerless_template_is_one_located_line(
    tmp_path, kind, data, metric, marker
):
    path, text = _checked(tmp_path, kind, data, metric)
    with pytest.raises(CircuitSpecError) as info:
        compile_hypothesis(load_hypothesis(path))
    message = str(info.value)
    match = LOCATED.match(message)
    assert match, message
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if marker in row)
    assert int(match["line"]) == line, message
    assert f"claim '{kind}_claim' ({kind}) compares answer logits" in match["msg"]
    assert "template 'rewrite' has no 'desired' / 'undesired' answers" in match["msg"]
    assert "(valid: sub)" in match["msg"]
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and result.stderr.strip() == message
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("kind", "data", "metric"),
    [
        ("ablation", "[sub]", "logit_diff"),
        ("ablation", "[rewrite]", "kl"),  # KL compares whole distributions
        ("behaviour", "[sub]", "logit_diff"),
    ],
)
def test_claims_that_need_no_answers_from_the_template_validate(tmp_path, kind, data, metric):
    path, _ = _checked(tmp_path, kind, data, metric)
    graph = compile_hypothesis(load_hypothesis(path))
    assert graph.claim_templates[f"{kind}_claim"] == data.strip("[]").split(", ")


def test_the_sweep_plot_names_the_text_score_not_a_logit_difference(run):
    from circuitspec.reports.plotdata import claim_plots

    _, verification, report = run
    axes = {}
    for claim_id in ("sentiment_moves", "flips_to_the_label"):
        outcome = next(o for o in verification.outcomes if o.claim_id == claim_id)
        plots = claim_plots(
            outcome, verification.measurements[claim_id], [], outcome.expectation, report.claims[claim_id]
        )
        axes[claim_id] = [p.get("y_axis") or p.get("x_axis") for p in plots]
    assert "mean Δ VADER sentiment (intervened − control text)" in axes["sentiment_moves"]
    assert "flip rate" in str(axes["flips_to_the_label"])
    assert not any("logit" in str(a) for labels in axes.values() for a in labels)


def test_a_log_alpha_axis_reads_plain_numbers():
    from circuitspec.reports.plots import render_svg

    alphas = [float(2**k) for k in range(11)]  # the paper's sweep: drawn on a log axis
    zeros = [0.0] * len(alphas)
    plot = {"type": "sweep", "x": alphas, "estimates": zeros, "low": zeros, "high": zeros, "log_x": True}
    svg = render_svg({**plot, "xlabel": "alpha", "ylabel": "mean"})
    ticks = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert not any("$" in t or "mathdefault" in t for t in ticks), ticks
    assert {"1", "10", "100", "1000"} <= set(ticks), ticks
