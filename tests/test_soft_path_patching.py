"""Soft path patching (``alpha``: the senders send α × their own activation) against the plain-hook reference.

Reference: ``tests/references/path_patching.naive_path_patch`` given, as the run senders take their value
from, the clean run's cache with each sender's own activation scaled by α by hand (so the reference
knows nothing of ``alpha``); α = 1 changes nothing.
"""

from __future__ import annotations

import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.path_patching import PathJob, path_patch_jobs
from circuitspec.engine.interventions.path_patching import measure as measure_path_patching
from circuitspec.engine.metrics import logit_diff
from circuitspec.spec.geometry import sender_hook
from circuitspec.spec.nodes import parse_node
from circuitspec.spec.schema import PathPatchingClaim
from tests.helpers.tiny import make_prompt_set, make_tiny_model
from tests.references.path_patching import naive_path_patch, run_cache_names

EDGES = [("L0H1", "L2H0.q"), ("L0H0@a", "L1H1.v"), ("MLP0", "L1H0.k"), ("L1H1", "logits"), ("embed", "MLP1")]


def _scaled_cache(model, tokens, senders, alpha: float) -> tuple[dict, dict]:
    """The clean cache, and a copy where each sender's own activation is multiplied by ``alpha``."""
    with torch.inference_mode():
        clean = dict(model.run_with_cache(tokens, names_filter=run_cache_names(model))[1].cache_dict)
    scaled = {name: act.clone() for name, act in clean.items()}
    for node in senders:
        act = scaled[sender_hook(node)]
        if node.head is not None:
            act[:, :, node.head] *= alpha
        elif node.index is not None:
            act[..., node.index] *= alpha
        else:
            act *= alpha
    return clean, scaled


@pytest.mark.parametrize("alpha", [-1.0, 0.5])
@pytest.mark.parametrize("mlps", ["frozen", "recomputed"])
def test_soft_path_patching_matches_the_reference_with_scaled_senders(alpha: float, mlps: str):
    model = make_tiny_model(n_layers=3, n_heads=2, d_model=16, seed=5)
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(5, 8, 6, 7), seed=5)
    ctx = RunContext(model, prompts, metric=logit_diff)
    edges = [(parse_node(a), parse_node(b)) for a, b in EDGES]
    patched, clean, _ = path_patch_jobs(ctx, [PathJob.joint([e]) for e in edges], mlps=mlps, alpha=alpha)
    positions = {role: prompts.positions(role) for role in [*prompts.role_positions, "end"]}
    moved = 0
    for row, edge in enumerate(edges):
        caches = _scaled_cache(model, prompts.tokens, [edge[0]], alpha)
        corrupt = prompts.corrupt_tokens  # unused: the source cache is given
        logits = naive_path_patch(
            model, prompts.tokens, corrupt, list(edge), positions=positions, mlps=mlps, caches=caches
        )
        expected = logit_diff(logits, prompts)
        torch.testing.assert_close(patched[row], expected, atol=1e-4, rtol=1e-4, msg=f"edge {edge}")
        moved += int((expected - clean).abs().max() > 1e-3)
    assert moved >= len(edges) - 1  # not vacuous: scaling the senders changes the metric


def test_alpha_one_is_the_clean_run_and_the_claim_reads_alpha():
    model = make_tiny_model(n_layers=2, n_heads=2, d_model=16, seed=6)
    prompts = make_prompt_set(model.cfg.d_vocab, seed=6)
    ctx = RunContext(model, prompts, metric=logit_diff)
    job = PathJob.joint([(parse_node("L0H0"), parse_node("logits"))])
    patched, clean, _ = path_patch_jobs(ctx, [job], alpha=1.0)
    torch.testing.assert_close(patched[0], clean, atol=1e-5, rtol=1e-5)
    claim = PathPatchingClaim.model_validate(
        {"id": "p", "kind": "path_patching", "targets": "L0H0 -> logits", "alpha": -1, "expect": "mean < 0"}
    )
    graph = type("G", (), {"chains": staticmethod(lambda _id: [[parse_node("L0H0"), parse_node("logits")]])})
    m = measure_path_patching(ctx, claim, graph, seed=0)
    expected, _, _ = path_patch_jobs(ctx, [job], alpha=-1.0)
    intervened = torch.tensor(m.arrays["intervened"]).float()
    torch.testing.assert_close(intervened, expected[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        PathPatchingClaim.model_validate({**claim.model_dump(), "alpha": float("nan")})
