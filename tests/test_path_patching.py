"""Path patching: the batched engine against the plain-hook IOI reference, plus metamorphic checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.path_patching import (
    PathJob,
    path_patch_edges,
    path_patch_jobs,
)
from circuitspec.engine.interventions.path_patching import measure as measure_path_patching
from circuitspec.engine.metrics import logit_diff
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.nodes import parse_node
from circuitspec.spec.schema import PathPatchingClaim
from tests.helpers.tiny import make_prompt_set, make_tiny_model
from tests.references.path_patching import naive_path_patch

torch.set_num_threads(1)

SHAPES = [
    dict(n_layers=3, n_heads=2, d_model=16, normalization_type="LN", seed=0),
    dict(n_layers=3, n_heads=3, d_model=12, normalization_type="LNPre", seed=1),
    dict(n_layers=2, n_heads=2, d_model=16, normalization_type=None, seed=2),
]

EDGES = [
    ("L0H1", "L2H0.q"),
    ("L0H0", "L1H1.k"),
    ("L0H1@a", "L2H1.v"),
    ("L1H0", "L2H1.v@end"),
    ("MLP0", "L1H0.q"),
    ("embed", "L1H1.v"),
    ("L1H1", "logits"),
    ("L0H0", "MLP1"),
    ("MLP0", "resid_pre2"),
    ("L0H0", "resid_mid1"),
    ("L1H0@b", "L2H0"),
    ("pos_embed", "MLP0"),
]


def _ctx(model, prompts) -> RunContext:
    return RunContext(model=model, prompts=prompts, metric=logit_diff)


def _fit(edges, n_layers):
    """Keep the edges that exist in a model with ``n_layers`` layers."""
    kept = []
    for sender, receiver in edges:
        a, b = parse_node(sender), parse_node(receiver)
        if all(x.layer is None or x.layer < n_layers for x in (a, b)):
            kept.append((a, b))
    return kept


def _naive_metric(model, prompts, job, **kwargs) -> torch.Tensor:
    positions = {role: prompts.positions(role) for role in [*prompts.role_positions, "end"]}
    logits = naive_path_patch(
        model, prompts.tokens, prompts.corrupt_tokens, job, positions=positions, **kwargs
    )
    return logit_diff(logits, prompts)


@pytest.mark.parametrize(
    "shape", SHAPES, ids=lambda s: f"{s['normalization_type']}-{s['n_layers']}x{s['n_heads']}"
)
@pytest.mark.parametrize("mlps", ["frozen", "recomputed"])
def test_batched_edges_match_naive_reference(shape, mlps):
    model = make_tiny_model(**shape)
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(5, 8, 6, 7, 5), seed=shape["seed"], n_corrupted=2)
    edges = _fit(EDGES, model.cfg.n_layers)
    ctx = _ctx(model, prompts)
    patched, clean, _ = path_patch_edges(ctx, edges, mlps=mlps)
    assert not model.cfg.use_hook_mlp_in and not model.cfg.use_split_qkv_input  # settings restored
    moved = 0
    for row, edge in enumerate(edges):
        expected = _naive_metric(model, prompts, list(edge), mlps=mlps)
        torch.testing.assert_close(patched[row], expected, atol=1e-4, rtol=1e-4, msg=f"edge {edge}")
        moved += int((expected - clean).abs().max() > 1e-3)
    assert moved >= len(edges) // 2  # the comparison is not vacuous: most edges change the metric
    assert not model.cfg.use_hook_mlp_in and not model.cfg.use_split_qkv_input


@pytest.mark.parametrize("mlps", ["frozen", "recomputed"])
@pytest.mark.parametrize("direction", ["noising", "denoising"])
def test_chains_and_joint_jobs_match_naive(mlps, direction):
    model = make_tiny_model(n_layers=4, n_heads=2, d_model=16, seed=3)
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(6, 8, 7), seed=3, n_corrupted=2)
    n = {
        name: parse_node(name)
        for name in ["L0H0", "L1H1.v", "L2H0.q", "L3H1.k", "MLP1", "logits", "L0H1@a", "L2H1"]
    }
    jobs = [
        PathJob.chain([n["L0H0"], n["L1H1.v"], n["L2H0.q"], n["logits"]]),
        PathJob.chain([n["L0H1@a"], n["MLP1"], n["L3H1.k"]]),
        PathJob.joint([(n["L0H0"], n["L2H0.q"]), (n["L0H1@a"], n["L2H0.q"]), (n["MLP1"], n["L3H1.k"])]),
        PathJob.joint([(n["L0H0"], n["L1H1.v"]), (n["L1H1.v"], n["L2H1"])]),
    ]
    ctx = _ctx(model, prompts)
    patched, base, _ = path_patch_jobs(ctx, jobs, mlps=mlps, direction=direction)
    for row, job in enumerate(jobs):
        expected = _naive_metric(model, prompts, job, mlps=mlps, direction=direction)
        torch.testing.assert_close(patched[row], expected, atol=1e-4, rtol=1e-4, msg=f"job {row}")
        assert (expected - base).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("attn_only", "mlps", "senders"),
    [
        (False, "recomputed", ["L1H0", "L1H1", "MLP1"]),  # last-layer heads reach the logits also via MLP1
        (False, "frozen", ["MLP1"]),
        (True, "frozen", ["L1H0", "L1H1"]),
    ],
)
def test_last_layer_sender_to_logits_equals_activation_patching(attn_only, mlps, senders):
    model = make_tiny_model(n_layers=2, n_heads=2, d_model=16, seed=4, attn_only=attn_only)
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(5, 7, 6), seed=4, n_corrupted=2)
    ctx = _ctx(model, prompts)
    for sender in senders:
        patched, clean, _ = path_patch_edges(ctx, [(parse_node(sender), parse_node("logits"))], mlps=mlps)
        node = parse_node(sender)
        _, corrupt_cache = model.run_with_cache(prompts.corrupt_tokens)

        def patch(act, hook, node=node, corrupt_cache=corrupt_cache):
            act = act.clone()
            if node.head is not None:
                act[:, :, node.head] = corrupt_cache[hook.name][:, :, node.head]
                return act
            return corrupt_cache[hook.name]

        hook = "blocks.1.attn.hook_z" if node.head is not None else "blocks.1.hook_mlp_out"
        expected = logit_diff(model.run_with_hooks(prompts.tokens, fwd_hooks=[(hook, patch)]), prompts)
        torch.testing.assert_close(patched[0], expected, atol=1e-5, rtol=1e-5)
        assert (expected - clean).abs().max() > 1e-3


def test_receiver_reading_only_before_the_sender_position_has_no_effect():
    model = make_tiny_model(n_layers=3, n_heads=2, d_model=16, seed=5)
    prompts = make_prompt_set(
        model.cfg.d_vocab, lengths=(7, 8, 6, 7), seed=5, roles=("a", "b"), n_corrupted=3
    )
    # put role a after role b in every prompt: the receiver at b cannot see a sender pinned at a
    a, b = prompts.role_positions["a"], prompts.role_positions["b"]
    prompts.role_positions["a"], prompts.role_positions["b"] = torch.maximum(a, b), torch.minimum(a, b)
    prompts.corrupt_tokens[:, 1] = 3 + (prompts.tokens[:, 1] - 2) % (
        model.cfg.d_vocab - 3
    )  # every sender sees it
    ctx = _ctx(model, prompts)
    edges = [
        (parse_node("L0H1@a"), parse_node("L2H0.q@b")),
        (parse_node("L0H1@a"), parse_node("L1H1.k@b")),
        (parse_node("MLP0@a"), parse_node("L2H1.v@b")),
    ]
    patched, clean, _ = path_patch_edges(ctx, edges)
    # zero in exact arithmetic; the patched copies recompute the blocks after the edit in another batch
    # layout, so float32 may round differently: ~eps x (terms summed: d_model per layer) x |metric|
    scale = model.cfg.d_model * model.cfg.n_layers * float(clean.abs().max())
    rounding = torch.finfo(patched.dtype).eps * scale
    torch.testing.assert_close(patched, clean.expand_as(patched), atol=rounding, rtol=0)
    moved, _, _ = path_patch_edges(ctx, [(parse_node("L0H1@a"), parse_node("L2H0.v"))])
    assert (moved[0] - clean).abs().max() > 1e-4  # the same sender reaches values read at a


def test_clean_to_clean_changes_nothing():
    model = make_tiny_model(n_layers=3, n_heads=2, d_model=16, seed=6)
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(5, 6, 7), seed=6)
    prompts.corrupt_tokens = prompts.tokens.clone()
    ctx = _ctx(model, prompts)
    for mlps in ("frozen", "recomputed"):
        patched, clean, _ = path_patch_edges(ctx, _fit(EDGES, 3), mlps=mlps)
        torch.testing.assert_close(patched, clean.expand_as(patched), atol=1e-5, rtol=0)


def test_batched_engine_uses_few_passes():
    model = make_tiny_model(n_layers=3, n_heads=2, d_model=16, seed=7)
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(5, 6, 7, 6), seed=7)
    ctx = _ctx(model, prompts)
    edges = [
        (parse_node(f"L0H{h}"), parse_node(f"L2H{g}.{c}")) for h in range(2) for g in range(2) for c in "qkv"
    ]
    path_patch_edges(ctx, edges)
    n = len(prompts)
    # clean + corrupted caches, then one partial pass batched over all 12 edges (all start at layer 2)
    assert ctx.counter.forward_passes == 2 * n + len(edges) * n


def test_bad_edges_are_one_line_errors():
    model = make_tiny_model(n_layers=2, n_heads=2, d_model=16, seed=8)
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(5, 6), seed=8)
    ctx = _ctx(model, prompts)
    for sender, receiver in [("L1H0", "L1H1.q"), ("L1H0", "L0H0.q"), ("L0H0", "L1H1.pattern")]:
        with pytest.raises(CircuitSpecError) as err:
            path_patch_edges(ctx, [(parse_node(sender), parse_node(receiver))])
        assert "\n" not in str(err.value) and (sender in str(err.value) or receiver in str(err.value))


class _Graph:
    """The one CircuitGraph method the entry point uses."""

    def __init__(self, chains: dict[str, list[str]]):
        self._chains = {
            k: [[parse_node(p.strip()) for p in c.split("->")] for c in v] for k, v in chains.items()
        }

    def chains(self, claim_id: str) -> list[list]:
        return self._chains.get(claim_id, [])


@pytest.mark.parametrize("direction", ["noising", "denoising"])
def test_measure_path_patching_entry_point(direction):
    model = make_tiny_model(n_layers=3, n_heads=2, d_model=16, seed=9)
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(5, 7, 6), seed=9, n_corrupted=2)
    graph = _Graph({"one": ["L0H1 -> L1H0.v -> logits"], "joint": ["L0H1 -> L2H0.q", "MLP0 -> L2H1.k"]})
    for claim_id in ("one", "joint"):
        claim = PathPatchingClaim(id=claim_id, kind="path_patching", expect="mean < 0", direction=direction)
        ctx = _ctx(model, prompts)
        m = measure_path_patching(ctx, claim, graph, 0)
        chains = graph.chains(claim_id)
        job = PathJob.chain(chains[0]) if len(chains) == 1 else PathJob.joint([(c[0], c[1]) for c in chains])
        expected = _naive_metric(model, prompts, job, direction=direction)
        np.testing.assert_allclose(m.arrays["intervened"], expected.numpy(), atol=1e-4)
        with torch.no_grad():
            clean = logit_diff(model(prompts.tokens), prompts).numpy()
            corrupt = logit_diff(model(prompts.corrupt_tokens), prompts).numpy()
        np.testing.assert_allclose(m.arrays["clean"], clean, atol=1e-5)
        np.testing.assert_allclose(m.arrays["corrupt"], corrupt, atol=1e-5)
        base = clean if direction == "noising" else corrupt
        np.testing.assert_allclose(m.arrays["value"], m.arrays["intervened"] - base, atol=1e-6)
        assert m.cost.forward_passes > 0 and m.n_prompts == len(prompts)


def test_several_multi_hop_paths_in_one_claim_are_refused():
    model = make_tiny_model(n_layers=3, n_heads=2, d_model=16, seed=9)
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(5, 6), seed=9)
    graph = _Graph({"c": ["L0H1 -> L1H0.v -> logits", "L0H0 -> L2H1.q"]})
    claim = PathPatchingClaim(id="c", kind="path_patching", expect="mean < 0")
    with pytest.raises(CircuitSpecError, match="each: true"):
        measure_path_patching(_ctx(model, prompts), claim, graph, 0)


@pytest.mark.parametrize("channel", ["v", "k"])
def test_head_reached_through_key_or_value_at_a_role_sends_from_its_query_positions(channel):
    """``A@a -> L1H0.v@a -> MLP2@end``: the head reads the value at a and writes at the end token.

    Pinning the head's *output* to a as well would make the edge into MLP2@end exactly zero whenever
    a is not the end token; the engine and the naive reference must both carry the effect through.
    """
    model = make_tiny_model(n_layers=3, n_heads=2, d_model=16, seed=7)
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(7, 8, 6, 7), seed=7, roles=("a",), n_corrupted=3)
    assert bool((prompts.role_positions["a"] < prompts.lengths - 1).all())
    job = PathJob.chain([parse_node("L0H1@a"), parse_node(f"L1H0.{channel}@a"), parse_node("MLP2@end")])
    ctx = _ctx(model, prompts)
    patched, base, _ = path_patch_jobs(ctx, [job])
    expected = _naive_metric(model, prompts, job)
    torch.testing.assert_close(patched[0], expected, atol=1e-4, rtol=1e-4)
    assert (patched[0] - base).abs().max() > 1e-4


def test_path_patching_after_another_claim_adds_no_clean_or_corrupted_pass():
    """The shared clean / corrupted runs, cached with the hooks the claim registry declares for path
    methods, serve path patching: only its own partial passes are counted."""
    from circuitspec.claims.hooks import path_run_hooks

    model = make_tiny_model(n_layers=3, n_heads=2, d_model=16, seed=7)
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(5, 6, 7, 6), seed=7)
    ctx = _ctx(model, prompts)
    ctx.need(path_run_hooks(model.cfg))  # what the planner asks for before any claim runs
    ctx.clean(["blocks.0.attn.hook_pattern"])  # another claim's runs
    ctx.corrupted()
    before = ctx.counter.forward_passes
    edges = [(parse_node("L0H0"), parse_node("L2H1.q")), (parse_node("MLP0"), parse_node("L2H0.k"))]
    path_patch_edges(ctx, edges)
    assert ctx.counter.forward_passes - before == len(edges) * len(prompts)
