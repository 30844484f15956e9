"""Path patching caches only what its paths read where the stream is a sum, and the planner still
collects everything every claim reads up front: causal scrubbing, which reads every component, re-runs
nothing after the first claim's clean run."""

from __future__ import annotations

from pathlib import Path

import yaml

from circuitspec.claims.hooks import path_hooks, path_run_hooks
from circuitspec.engine.adapter import adapt
from circuitspec.engine.planner import run_claims
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.pipeline import load_hypothesis_model
from circuitspec.spec.loader import load_hypothesis, load_rows

CLAIMS = ("label_path_through_value", "scrub_label_and_word")


def test_path_claims_cache_a_few_hooks_and_nothing_reruns(tmp_path):
    root = Path("hypotheses")
    (tmp_path / "data").mkdir()
    pairs = "data/toy_sentiment_pairs.jsonl"
    (tmp_path / pairs).write_text((root / pairs).read_text(encoding="utf-8"), encoding="utf-8")
    spec = yaml.safe_load((root / "toy_sentiment.yaml").read_text(encoding="utf-8"))
    first = {"id": "dla_all", "kind": "attribution", "targets": ["L0H0"], "expect": "mean > -1000"}
    spec["claims"] = [first] + [dict(c, require=[]) for c in spec["claims"] if c["id"] in CLAIMS]
    path = tmp_path / "h.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    hypothesis = load_hypothesis(path)
    loaded = load_hypothesis_model(hypothesis.spec.model, hypothesis.base_dir)
    graph = compile_hypothesis(hypothesis, shape=loaded.shape)
    arch = adapt(loaded.model).arch
    _, path_claim, scrub_claim = graph.claims
    assert path_claim.kind == "path_patching" and scrub_claim.kind == "causal_scrubbing"
    assert path_hooks(path_claim, graph, arch) < set(path_run_hooks(arch))  # a few, not every block's
    rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)
    results = run_claims(graph, loaded, rows, tmp_path, progress=False)
    assert not any(m.error for m in results.values())
    # the first claim's clean run (all prompts) cached what every later claim reads: no claim re-runs it
    n = results["dla_all"].n_prompts
    assert results["dla_all"].cost.forward_passes == n
    assert results[scrub_claim.id].cost.forward_passes == 0
