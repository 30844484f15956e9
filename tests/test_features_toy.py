"""The bundled toy transcoders: they reconstruct the toy MLPs, splice without changing the output,
and the toy hypothesis' feature claim passes on the final checkpoint (measured with the planner)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"
CLAIM = "answer_features_write_the_answer"


@pytest.fixture(scope="module")
def toy():
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.pipeline import load_hypothesis_model
    from circuitspec.spec.loader import load_hypothesis, load_rows

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    hypothesis = load_hypothesis(TOY)
    loaded = load_hypothesis_model(hypothesis.spec.model, hypothesis.base_dir)
    rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)
    return hypothesis, compile_hypothesis(hypothesis), loaded, rows


def test_bundled_transcoders_are_small_and_reconstruct_the_mlp(toy):
    from circuitspec.engine.models import load_model
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.features.loading import bundled_dictionary_dir
    from circuitspec.spec.schema import ModelSpec

    hypothesis, _, loaded, rows = toy
    folder = bundled_dictionary_dir("toy_sentiment", "MLP1.tc").parent
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) < 1_000_000
    plain = load_model(ModelSpec(bundled="toy_sentiment"), hypothesis.base_dir).model
    prompts = build_prompt_set(hypothesis.spec.data, rows, loaded.tokenizer, seed=1, n=32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(prompts.tokens), plain(prompts.tokens), atol=1e-4, rtol=0)
        _, cache = plain.run_with_cache(prompts.tokens)
    transcoder = loaded.model.acts_to_saes["blocks.1.ln2.hook_normalized"]
    real = torch.arange(prompts.tokens.shape[1])[None, :] < prompts.lengths[:, None]
    x, y = cache["blocks.1.ln2.hook_normalized"][real], cache["blocks.1.hook_mlp_out"][real]
    with torch.no_grad():
        unexplained = (transcoder(x) - y).pow(2).sum() / (y - y.mean(0)).pow(2).sum()
        l0 = (transcoder.encode(x) > 0).float().sum(-1).mean()
    assert float(unexplained) < 0.05 and float(l0) < 32  # faithful and sparse (128 features)


def test_feature_claim_passes_on_the_final_checkpoint(toy):
    from circuitspec.engine.planner import measure_claim
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.stats import evaluate_claim

    hypothesis, graph, loaded, rows = toy
    claim = graph.claim(CLAIM)
    data = hypothesis.spec.data
    prompts = build_prompt_set(data, rows, loaded.tokenizer, graph.templates(CLAIM), seed=data.seed, n=data.n)
    measurement = measure_claim(graph, claim, loaded, prompts, seed=hypothesis.spec.seed)
    assert measurement.error is None
    outcome = evaluate_claim(measurement, claim.expectation, confidence=claim.confidence, seed=0)
    assert outcome.verdict == "pass", outcome
    assert 0.5 < measurement.arrays["value"].mean() < float(measurement.arrays["clean"].mean())


def test_feature_claim_without_dictionary_is_one_line_error(toy):
    from circuitspec.engine.models import load_model
    from circuitspec.engine.planner import measure_claim
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.spec.schema import ModelSpec

    hypothesis, graph, _, rows = toy
    plain = load_model(ModelSpec(bundled="toy_sentiment"), hypothesis.base_dir)
    prompts = build_prompt_set(hypothesis.spec.data, rows, plain.tokenizer, seed=0, n=4)
    measurement = measure_claim(graph, graph.claim(CLAIM), plain, prompts)
    assert measurement.error and "\n" not in measurement.error
    assert "needs dictionary 'MLP1.tc' spliced in" in measurement.error
