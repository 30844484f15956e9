"""The one intervention contract on the toy hypothesis: seed, shared passes, typed plots in the report."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np

from circuitspec.engine.architecture import Architecture
from circuitspec.engine.context import PassCounter
from circuitspec.engine.planner import measure_claim, needed_hooks
from circuitspec.engine.prompts import build_prompt_set
from circuitspec.pipeline import verify

TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"


def _prompts(toy, claim_id: str):
    graph, loaded, rows = toy
    data = graph.hypothesis.data
    return build_prompt_set(data, rows, loaded.tokenizer, graph.templates(claim_id), seed=data.seed, n=data.n)


def test_the_seed_reaches_causal_scrubbing(toy):
    graph, loaded, _ = toy
    claim = graph.claim("scrub_label_and_word")
    prompts = _prompts(toy, claim.id)
    runs = [measure_claim(graph, claim, loaded, prompts, seed=seed) for seed in (0, 12345)]
    assert all(m.error is None for m in runs), [m.error for m in runs]
    assert [m.seed for m in runs] == [0, 12345]
    np.testing.assert_array_equal(runs[0].arrays["clean"], runs[1].arrays["clean"])
    assert not np.array_equal(runs[0].arrays["intervened"], runs[1].arrays["intervened"])


def test_path_patching_after_another_claim_adds_no_clean_or_corrupted_pass(toy):
    graph, loaded, _ = toy
    first, path = graph.claim("label_reader_is_restores"), graph.claim("label_path_through_value")
    assert graph.templates(first.id) == graph.templates(path.id)
    prompts = _prompts(toy, path.id)
    # as the planner runs them: one cache per prompt set, asked up front for every claim's hooks
    arch = Architecture.of(loaded.model)
    counter, cache = PassCounter(), {"_needed": needed_hooks(graph, [first.id, path.id], arch)}
    assert measure_claim(graph, first, loaded, prompts, counter, cache).error is None
    clean, corrupt = cache["clean"], cache["corrupt"]  # activation patching ran both shared runs
    shared = measure_claim(graph, path, loaded, prompts, counter, cache)
    assert shared.error is None and cache["clean"] is clean and cache["corrupt"] is corrupt
    # the same claim measured a second time on its own context costs only its own passes
    alone_counter, alone = PassCounter(), {"_needed": needed_hooks(graph, [path.id], arch)}
    assert measure_claim(graph, path, loaded, prompts, alone_counter, alone).error is None
    cold = alone_counter.forward_passes  # includes the clean and corrupted runs
    again = measure_claim(graph, path, loaded, prompts, alone_counter, alone)
    assert again.cost.forward_passes == shared.cost.forward_passes == cold - 2 * len(prompts)
    np.testing.assert_allclose(shared.arrays["value"], again.arrays["value"], atol=1e-6)


def test_toy_report_shows_head_heatmaps_and_attention_patterns(tmp_path):
    verify(TOY, out=tmp_path, progress=False)
    report = json.loads((tmp_path / "report.json").read_text())
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    cards = dict(re.findall(r'id="claim-([^"]+)"(.*?)(?=id="claim-|\Z)', page, flags=re.S))
    wanted = {"attribution": "heatmap", "attention": "attention"}
    seen = set()
    for claim in report["claims"]:
        if claim["kind"] not in wanted:
            continue
        assert claim["error"] is None, claim["error"]
        plot = next(p for p in claim["plots"] if p["type"] == wanted[claim["kind"]])
        card = cards[re.sub(r"[^0-9A-Za-z_-]", "-", claim["id"])]
        assert f'role="img" aria-label="{html.escape(plot["title"], quote=False)}"' in card  # inline SVG
        seen.add(claim["kind"])
    assert seen == set(wanted)
