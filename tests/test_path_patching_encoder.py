"""Path patching on post-LN encoders (BERT): the batched engine against the plain-hook IOI reference.

A post-LN residual stream is not a sum, so the engine reads each receiver's input from a frozen pass
instead of adding sender deltas; the reference (``naive_path_patch``) runs the three IOI steps with
ordinary hooks through ``model.run_with_hooks``, padding masked out by the model itself.
"""

from __future__ import annotations

import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.activation_patching import activation_patch
from circuitspec.engine.interventions.path_patching import (
    PathJob,
    path_patch_edges,
    path_patch_jobs,
)
from circuitspec.engine.metrics import cosine_to_reference
from circuitspec.engine.sites import resolve_site
from circuitspec.spec.nodes import parse_node
from tests.helpers.tiny import make_prompt_set, make_tiny_encoder
from tests.references.path_patching import naive_path_patch
from tests.test_path_patching import EDGES as DECODER_EDGES

torch.set_num_threads(1)

# the decoder tests' edges (every sender and receiver kind), plus two that only a post-LN stream
# makes interesting: an embedding straight into the output, and resid_post inside a block
EDGES = [*DECODER_EDGES, ("embed@a", "logits"), ("L0H1", "resid_post1")]


def _setup(seed: int = 0, pooling: str = "mean"):
    model = make_tiny_encoder(n_layers=3, n_heads=2, d_model=16, seed=seed, pooling=pooling)
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(5, 8, 6, 7, 5), seed=seed, n_corrupted=2)
    reference = torch.randn(len(prompts), model.cfg.d_model, generator=torch.Generator().manual_seed(seed))
    metric = cosine_to_reference(reference)
    return model, prompts, RunContext(model=model, prompts=prompts, metric=metric), metric


def _naive(model, prompts, metric, job, **kwargs) -> torch.Tensor:
    positions = {role: prompts.positions(role) for role in [*prompts.role_positions, "end"]}
    embedding = naive_path_patch(
        model, prompts.tokens, prompts.corrupt_tokens, job, positions=positions, **kwargs
    )
    return metric(embedding, prompts)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("mlps", ["frozen", "recomputed"])
def test_encoder_edges_match_naive_reference(mlps, pooling):
    model, prompts, ctx, metric = _setup(seed=1 if pooling == "cls" else 0, pooling=pooling)
    edges = [(parse_node(a), parse_node(b)) for a, b in EDGES]
    patched, clean, _ = path_patch_edges(ctx, edges, mlps=mlps)
    # exactly zero by construction: clean and corrupted prompts share their positions; and with every
    # head frozen a change at role `a` (never position 0) cannot reach the [CLS] token the model pools
    silent = {("pos_embed", "MLP0")} | ({("embed@a", "logits")} if pooling == "cls" else set())
    for row, edge in enumerate(edges):
        expected = _naive(model, prompts, metric, list(edge), mlps=mlps)
        torch.testing.assert_close(patched[row], expected, atol=1e-5, rtol=1e-4, msg=f"edge {edge}")
        moved = float((expected - clean).abs().max())
        if EDGES[row] in silent:
            assert moved < 1e-6, EDGES[row]
        else:  # the comparison is not vacuous
            assert moved > 1e-4, EDGES[row]
    assert not model.cfg.use_hook_mlp_in and not model.cfg.use_split_qkv_input  # settings restored


@pytest.mark.parametrize("mlps", ["frozen", "recomputed"])
@pytest.mark.parametrize("direction", ["noising", "denoising"])
def test_encoder_chains_and_joint_jobs_match_naive(mlps, direction):
    model, prompts, ctx, metric = _setup(seed=2)
    n = {
        name: parse_node(name) for name in ["L0H0", "L1H1.v", "L2H0.q", "logits", "L0H1@a", "MLP1", "L2H1.k"]
    }
    jobs = [
        PathJob.chain([n["L0H0"], n["L1H1.v"], n["L2H0.q"], n["logits"]]),
        PathJob.chain([n["L0H1@a"], n["MLP1"], n["L2H1.k"]]),
        PathJob.joint([(n["L0H0"], n["L2H0.q"]), (n["L0H1@a"], n["L2H0.q"]), (n["MLP1"], n["L2H1.k"])]),
    ]
    patched, base, _ = path_patch_jobs(ctx, jobs, mlps=mlps, direction=direction)
    for row, job in enumerate(jobs):
        expected = _naive(model, prompts, metric, job, mlps=mlps, direction=direction)
        torch.testing.assert_close(patched[row], expected, atol=1e-5, rtol=1e-4, msg=f"job {row}")
        assert (expected - base).abs().max() > 1e-3


def test_last_layer_head_to_the_embedding_equals_activation_patching():
    """Nothing sits between a last-layer head and the output but its own block's MLP and LayerNorms:
    with MLPs recomputed, patching L2H0 -> logits is exactly activation patching of L2H0."""
    _, prompts, ctx, _ = _setup(seed=3)
    patched, _, _ = path_patch_edges(ctx, [(parse_node("L2H0"), parse_node("logits"))], mlps="recomputed")
    expected = activation_patch(ctx, [resolve_site(parse_node("L2H0"), prompts)], "noising")
    torch.testing.assert_close(patched[0], expected, atol=1e-5, rtol=1e-4)


def test_a_sender_that_does_not_change_writes_nothing():
    """Clean and corrupted prompts identical: every path-patched metric equals the clean metric."""
    model, prompts, _, metric = _setup(seed=4)
    prompts.corrupt_tokens = prompts.tokens.clone()
    ctx = RunContext(model=model, prompts=prompts, metric=metric)
    edges = [(parse_node(a), parse_node(b)) for a, b in EDGES]
    patched, clean, _ = path_patch_edges(ctx, edges)
    torch.testing.assert_close(patched, clean.expand_as(patched), atol=1e-6, rtol=0)


def test_partial_passes_equal_the_full_encoder():
    """``start_at_layer`` / ``stop_at_layer`` from the cached stream reproduce the full forward pass."""
    model, prompts, _, _ = _setup(seed=5)
    mask = (prompts.tokens != 0).long()
    with torch.no_grad():
        full, cache = model.run_with_cache(prompts.tokens)
        for layer in range(model.cfg.n_layers):
            resid = cache[f"blocks.{layer}.hook_resid_pre"]
            torch.testing.assert_close(
                model(resid, start_at_layer=layer, one_zero_attention_mask=mask), full, atol=1e-6, rtol=1e-5
            )
        stopped = model(prompts.tokens, stop_at_layer=2)
        torch.testing.assert_close(stopped, cache["blocks.2.hook_resid_pre"])
    with pytest.raises(ValueError, match="one_zero_attention_mask"):
        model(cache["blocks.1.hook_resid_pre"], start_at_layer=1)
