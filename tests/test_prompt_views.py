"""What a report shows of what was run: the prompt sample, each claim's extreme prompts, attention views."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from circuitspec.measurement import AttentionRow, Measurement, SweepPoint
from circuitspec.reports.model import ReportInput
from circuitspec.reports.prompt_views import (
    PROMPT_VIEWS_CSS,
    claim_prompts_html,
    extreme_prompts,
    prompt_sample_html,
)

TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"
EVIL = "<script>alert(1)</script>"


class _Spans(HTMLParser):
    """Every ``<span class="cs-token …">``: its classes, attributes and text, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[dict] = []
        self._open: dict | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        found = dict(attrs)
        if tag == "span" and "cs-token" in (found.get("class") or "").split():
            self._open = {"classes": found["class"].split(), "attrs": found, "text": ""}

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._open is not None:
            self.spans.append(self._open)
            self._open = None


def _spans(markup: str) -> list[dict]:
    parser = _Spans()
    parser.feed(markup)
    return parser.spans


def _report(**fields) -> ReportInput:
    return ReportInput("h", "h.yaml", "", {}, 0, "holm", [], **fields)


def _record(text: str = "Positive: good", token_text: str = " good") -> dict:
    tokens = [{"index": 0, "id": 1, "text": "<bos>"}, {"index": 1, "id": 7, "text": token_text}]
    return {
        "template": "t1",
        "row": "rows.jsonl:3",
        "text": text,
        "tokens": tokens,
        "roles": {"w": 1, "end": 1},
        "desired": {"id": 8, "text": " bad"},
        "undesired": {"id": 7, "text": " good"},
        "corrupted": {
            "text": "Positive: bad",
            "tokens": [tokens[0], {"index": 1, "id": 8, "text": " bad"}],
            "desired": {"id": 8, "text": " bad"},
            "undesired": {"id": 7, "text": " good"},
        },
    }


def _measurement(values, labels=None, rows=()) -> Measurement:
    values = np.asarray(values, dtype=float)
    labels = [f"prompt text {i}" for i in range(values.size)] if labels is None else labels
    return Measurement(
        "c", "attention", values.size, {"value": values}, prompt_labels=labels, attention_rows=list(rows)
    )


def test_user_text_is_escaped_everywhere() -> None:
    sample = prompt_sample_html(_report(prompt_sample=[_record(f"say {EVIL}", f" {EVIL}")]))
    row = AttentionRow(0, "L0H0", 1, ["<bos>", EVIL], [0.25, 0.75], {f"r{EVIL}": 1})
    claim = claim_prompts_html(
        _report(measurements={"c": _measurement([1.0, 2.0], [f"a {EVIL}", "b"], [row])}), "c"
    )
    for markup in (sample, claim):
        assert EVIL not in markup and "<script" not in markup
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    tokens = [span["text"] for span in _spans(sample)]
    assert f" {EVIL}" in tokens  # the token text survives, as text
    assert "<script" not in PROMPT_VIEWS_CSS and "http" not in PROMPT_VIEWS_CSS


def test_extremes_are_the_largest_and_smallest_with_ties_to_the_earlier_prompt() -> None:
    values = [3.0, 7.0, 1.0, 7.0, -2.0, 3.0, np.nan, 5.0, 1.0, 0.0, 9.0, -2.0]
    largest, smallest = extreme_prompts(values, k=3)
    assert largest == [10, 1, 3]  # 9, then the two 7s in prompt order
    assert smallest == [4, 11, 9]  # the two -2s in prompt order, then 0; the NaN is never picked
    assert extreme_prompts(values, k=3) == (largest, smallest)  # deterministic
    few_largest, few_smallest = extreme_prompts([2.0, 1.0, 3.0], k=5)  # 2k or fewer: split, no repeats
    assert few_largest == [2, 0, 1] and few_smallest == []
    assert extreme_prompts([], k=5) == ([], [])


def test_the_claim_table_lists_extremes_in_order_with_their_prompt_texts() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=40)
    markup = claim_prompts_html(_report(measurements={"c": _measurement(values)}), "c")
    shown = [int(i) for i in re.findall(r"<td>#(\d+)</td>", markup)]
    order = np.argsort(-values, kind="stable")
    assert shown == [*order[:5].tolist(), *order[::-1][:5].tolist()]
    for i in shown:
        assert f"&#x27;prompt text {i}&#x27;" in markup
    shown_values = [float(v) for v in re.findall(r'<td class="cs-value">([^<]+)</td>', markup)]
    np.testing.assert_allclose(shown_values, values[shown], rtol=1e-3)


def test_labels_out_of_step_with_the_values_fall_back_to_prompt_numbers() -> None:
    markup = claim_prompts_html(_report(measurements={"c": _measurement([1.0, 2.0, 3.0], ["only one"])}), "c")
    assert "only one" not in markup and "prompt #2" in markup


def test_a_sweep_claim_says_which_point_its_values_are_and_equal_values_say_so() -> None:
    m = _measurement([0.0, 0.0, 0.0])
    m.sweep, m.sweep_variable = (
        [SweepPoint(0.5, {"value": np.ones(3)}), SweepPoint(1.0, {"value": np.zeros(3)})],
        "alpha",
    )
    markup = claim_prompts_html(_report(measurements={"c": m}), "c")
    assert "All 3 prompts have value 0 at alpha = 1.0." in markup and "<table" not in markup


def test_attention_shading_and_hover_match_the_given_probabilities() -> None:
    probs = [0.0, 0.05, 0.6, 0.35]
    row = AttentionRow(2, "L1H3", 3, ["<bos>", " This", " film", " is"], probs, {"noun": 2, "end": 3})
    markup = claim_prompts_html(_report(measurements={"c": _measurement([0.1, 0.2, 0.6], rows=[row])}), "c")
    spans = [span for span in _spans(markup.split('class="cs-attn"', 1)[1])]
    assert [span["text"] for span in spans] == row.tokens
    for span, token, p in zip(spans, row.tokens, probs, strict=True):
        alpha = float(re.search(r"rgba\([^)]*,\s*([0-9.]+)\)", span["attrs"]["style"]).group(1))
        assert alpha == pytest.approx(p, abs=1e-3) and float(span["attrs"]["data-p"]) == pytest.approx(p)
        assert span["attrs"]["title"].startswith(f"{token!r} · p = {p:.3f}")
    assert ["cs-query" in span["classes"] for span in spans] == [False, False, False, True]
    assert ["cs-role" in span["classes"] for span in spans] == [False, False, True, True]
    assert "L1H3 from end · prompt #2 (value 0.6)" in markup


@pytest.mark.parametrize(
    "report",
    [
        _report(),
        _report(measurements={"c": Measurement("c", "ablation", 0, error="boom")}),
        _report(measurements={"c": Measurement("c", "scaling", 3, {"clean": np.ones(3)})}),
        _report(measurements={"c": _measurement([])}),
        _report(measurements={"c": _measurement([np.nan, np.nan])}),
        _report(prompt_sample=[None, {"tokens": 3}]),  # not records: nothing to show, nothing raised
    ],
)
def test_missing_or_broken_data_gives_empty_strings_not_exceptions(report: ReportInput) -> None:
    assert prompt_sample_html(report) == ""
    assert claim_prompts_html(report, "c") == ""
    assert claim_prompts_html(report, "no such claim") == ""
    assert claim_prompts_html(None, "c") == prompt_sample_html(None) == ""  # type: ignore[arg-type]


def test_a_broken_attention_row_loses_only_its_own_view() -> None:
    broken = AttentionRow(0, "L0H0", 0, ["a"], [0.1, 0.9])  # one token, two probabilities
    fine = AttentionRow(1, "L0H0", 1, ["a", "b"], [0.3, 0.7])
    markup = claim_prompts_html(
        _report(measurements={"c": _measurement([1.0, 2.0], rows=[broken, fine])}), "c"
    )
    assert "<table" in markup and markup.count('class="cs-attn"') == 1 and "prompt #1" in markup


def test_the_toy_sample_shows_the_role_positions_circuitspec_prompts_prints() -> None:
    from circuitspec.cli.prompt_commands import collect_prompts, prompt_tokenizer
    from circuitspec.pipeline import _prompt_sample
    from circuitspec.spec.loader import load_hypothesis, load_rows

    loaded = load_hypothesis(TOY)
    spec = loaded.spec
    rows = load_rows(spec.data, loaded.base_dir)
    sample = _prompt_sample(spec, rows, prompt_tokenizer(spec.model, loaded.base_dir), None)
    printed = collect_prompts(TOY, n=1)["prompts"]
    assert (
        [r["template"] for r in sample]
        == [t.id for t in spec.data.templates]
        == [p["template"] for p in printed]
    )
    for record, shown in zip(sample, printed, strict=True):
        assert record["roles"] == shown["roles"] and record["tokens"] == shown["tokens"]
        assert record["text"] == shown["text"] and record["corrupted"] == shown["corrupted"]
        assert record["row"] == Path(shown["row"]).name  # the file and line, not the absolute path
    markup = prompt_sample_html(_report(prompt_sample=sample), limit=len(sample))
    blocks = markup.split('<div class="cs-prompt">')[1:]
    assert len(blocks) == len(sample)
    for block, record in zip(blocks, sample, strict=True):
        clean = _spans(block.split('<span class="cs-what">corrupted</span>')[0])
        assert [span["text"] for span in clean] == [t["text"] for t in record["tokens"]]
        marked = {i for i, span in enumerate(clean) if "cs-role" in span["classes"]}
        assert marked == set(record["roles"].values())
        for role, position in record["roles"].items():
            title = clean[position]["attrs"]["title"]
            assert title.startswith(f"{position}: ") and role in title.split(" · role ")[1].split(", ")
        twin = _spans(block.split('<span class="cs-what">corrupted</span>')[1])
        changed = [i for i, span in enumerate(twin) if "cs-diff" in span["classes"]]
        ids = zip(record["tokens"], record["corrupted"]["tokens"], strict=True)
        assert changed == [i for i, (a, b) in enumerate(ids) if a["id"] != b["id"]] and changed
    assert f"{5} of {len(sample)} templates shown" in prompt_sample_html(_report(prompt_sample=sample))


@pytest.mark.slow
def test_attention_rows_are_the_heads_pattern_and_cost_no_pass(toy, monkeypatch) -> None:
    import torch

    from circuitspec.engine.interventions import attention
    from circuitspec.engine.planner import measure_claim
    from circuitspec.engine.prompts import build_prompt_set

    graph, loaded, rows = toy
    claim = graph.claim("label_reader_is_attends_label")  # L0H0 from end to s_con
    data = graph.hypothesis.data
    prompts = build_prompt_set(
        data, rows, loaded.tokenizer, graph.templates(claim.id), seed=data.seed, n=data.n
    )
    m = measure_claim(graph, claim, loaded, prompts)
    assert m.error is None and m.prompt_labels == prompts.texts and len(m.prompt_labels) == m.n_prompts
    value = m.arrays["value"]
    picked = [row.prompt for row in m.attention_rows]
    assert picked == [
        int(np.argmax(value)),
        int(np.argsort(-value, kind="stable")[len(value) // 2]),
        int(np.argmin(value)),
    ]
    for row in m.attention_rows:
        length = int(prompts.lengths[row.prompt])
        ids = prompts.tokens[row.prompt, :length]
        with torch.no_grad():  # reference: the prompt alone, unpadded, through TransformerLens' own cache
            _, cache = loaded.model.run_with_cache(ids[None], names_filter="blocks.0.attn.hook_pattern")
        reference = cache["blocks.0.attn.hook_pattern"][0, 0, length - 1, :length].double().numpy()
        assert row.head == "L0H0" and row.query == length - 1 == row.roles["end"]
        np.testing.assert_allclose(row.probs, reference, atol=1e-5)
        assert row.probs[row.roles["s_con"]] == pytest.approx(value[row.prompt], abs=1e-6)
        assert [loaded.tokenizer.decode([int(i)]) for i in ids] == row.tokens
    monkeypatch.setattr(attention, "view_prompts", lambda value, k=3: [])
    without = measure_claim(graph, claim, loaded, prompts)
    assert without.attention_rows == [] and without.cost.forward_passes == m.cost.forward_passes


def test_the_sample_travels_from_the_verification_into_report_json() -> None:
    import json
    from types import SimpleNamespace

    from circuitspec.reports.json_report import render_json
    from circuitspec.reports.model import build_report_input

    sample = [_record(f"say {EVIL}")]
    verification = SimpleNamespace(
        hypothesis=SimpleNamespace(spec=SimpleNamespace(name="h", claims=[]), path=""),
        graph=None, model_identity={}, measurements={}, outcomes=[], correction="holm", seed=0,
        prompt_sample=sample,
    )  # fmt: skip
    report_input = build_report_input(verification)
    assert report_input.prompt_sample == sample
    text = render_json(report_input)
    assert json.loads(text)["prompt_sample"] == sample
    assert json.loads(render_json(_report()))["prompt_sample"] == []  # a run without one: an empty list


def test_attention_views_show_the_largest_median_and_smallest_prompt_ties_to_the_earliest() -> None:
    import torch

    from circuitspec.engine.interventions.attention import view_prompts

    assert view_prompts(torch.tensor([0.2, 0.9, 0.1, 0.9, 0.5, 0.1])) == [1, 0, 2]  # sorted: 1 3 4 0 2 5
    assert view_prompts(torch.tensor([0.3, 0.3])) == [0, 1]  # the smallest is the largest: shown once
    assert view_prompts(torch.tensor([0.7])) == [0] and view_prompts(torch.tensor([])) == []


def test_report_md_lists_the_prompt_sample_with_user_text_escaped() -> None:
    from circuitspec.reports import render_markdown

    record = _record(f"say {EVIL}", f" {EVIL}")
    text = render_markdown(_report(prompt_sample=[record, None]))
    section = text.split("## Prompts", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith(f"| {record['template']} |"))
    assert row.endswith("| 'Positive: bad' | ' bad' | ' good' |")  # corrupted twin, desired, undesired
    assert repr(f"say {EVIL}").replace("<", "&lt;").replace(">", "&gt;") in row
    assert "<script>" not in text
    assert render_markdown(_report()).count("## Prompts") == 0  # no sample, no section
