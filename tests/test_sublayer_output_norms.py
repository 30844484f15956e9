"""Gemma 2/3-style blocks that normalise each sublayer's output again (``ln1_post`` / ``ln2_post``):
direct logit attribution maps every head through its block's output norm with the clean run's scale,
so the heads of a layer sum to that layer's attention output; a head's own stream write is refused."""

from __future__ import annotations

import warnings

import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.logit_attribution import answer_direction, component_attributions
from circuitspec.engine.metrics import logit_diff
from circuitspec.errors import CircuitSpecError
from tests.helpers.tiny import _randomise, make_prompt_set

VOCAB = 40


@pytest.fixture(scope="module")
def gemma_like():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=3, n_heads=2, d_model=16, d_head=8, d_mlp=32, d_vocab=VOCAB, n_ctx=32, act_fn="gelu_new",
        normalization_type="RMS", use_normalization_before_and_after=True, seed=5, device="cpu",
        dtype=torch.float32,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HookedTransformer(cfg)
    _randomise(model, 5)
    return model, make_prompt_set(VOCAB, lengths=(6, 8, 5, 7), seed=2)


def test_components_sum_to_the_logit_difference(gemma_like):
    model, prompts = gemma_like
    ctx = RunContext(model, prompts, metric=logit_diff)
    table = component_attributions(ctx)
    total = torch.stack(list(table.values())).sum(0)
    clean = logit_diff(ctx.clean()[0], prompts).float()
    # float32 sums of ~20 terms of size ~1: a few ulps of the largest term
    torch.testing.assert_close(total, clean, atol=1e-4, rtol=1e-5)


def test_heads_of_a_layer_sum_to_its_normalised_attention_output(gemma_like):
    model, prompts = gemma_like
    ctx = RunContext(model, prompts, metric=logit_diff)
    table = component_attributions(ctx)
    rows, ends = torch.arange(len(prompts)), prompts.lengths - 1
    with torch.inference_mode():
        _, cache = model.run_with_cache(prompts.tokens)
        direction = answer_direction(ctx) * model.ln_final.w
        read = direction / cache["ln_final.hook_scale"][rows, ends]
        for layer in range(model.cfg.n_layers):
            attn_out = cache[f"blocks.{layer}.hook_attn_out"][rows, ends]  # after ln1_post
            expected = (attn_out * read).sum(-1)
            heads = sum(table[f"L{layer}H{h}"] for h in range(model.cfg.n_heads)) + table[f"L{layer}.b_O"]
            torch.testing.assert_close(heads, expected.float(), atol=1e-4, rtol=1e-5)
    # the norm's weights are not all 1 here, so a reader that skipped ln1_post could not pass the check
    assert not torch.allclose(model.blocks[0].ln1_post.w, torch.ones_like(model.blocks[0].ln1_post.w))


def test_a_heads_own_stream_write_is_refused(gemma_like):
    model, prompts = gemma_like
    ctx = RunContext(model, prompts, metric=logit_diff)
    z = torch.zeros(1, 1, model.cfg.d_head)
    with pytest.raises(CircuitSpecError, match="normalises the sum of its heads"):
        ctx.adapter.head_write(1, 0, z)
