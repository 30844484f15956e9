"""Edited passes start at the first edited block from the shared run's cached residual stream.

Each case is checked against one plain TransformerLens hooked *full* pass over the same padded batch
(the reference), on a pre-LN decoder and on the tiny post-LN encoder, for a head, an MLP, a neuron,
residual sites (the last block's ``resid_post`` included) and the embeddings; the pass counter shows
the edited pass really ran only the blocks from the first edited one.
"""

from __future__ import annotations

import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.edits import edits_for, run_edits, start_hooks
from circuitspec.engine.interventions.ablation import ablate
from circuitspec.engine.interventions.activation_patching import activation_patch
from circuitspec.engine.interventions.scaling import scale_sweep
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.sites import resolve_site
from circuitspec.spec.nodes import parse_node
from tests.helpers.tiny import make_prompt_set, make_tiny_encoder, make_tiny_model

torch.set_num_threads(1)
ATOL = 1e-4
N_LAYERS = 3

# node, its hook, head, neuron, role, the block its edited pass starts at on (decoder, encoder)
CASES = [
    ("L1H0@a", "blocks.1.attn.hook_z", 0, None, "a", (1, 1)),
    ("L2H1", "blocks.2.attn.hook_z", 1, None, None, (2, 2)),
    ("MLP1", "blocks.1.hook_mlp_out", None, None, None, (1, 1)),
    ("MLP1.post[3]@end", "blocks.1.mlp.hook_post", None, 3, "end", (1, 1)),
    ("resid_pre2@b", "blocks.2.hook_resid_pre", None, None, "b", (2, 2)),
    ("resid_mid1@a", "blocks.1.hook_resid_mid", None, None, "a", (1, 1)),
    ("resid_post0@b", "blocks.0.hook_resid_post", None, None, "b", (1, 0)),
    ("resid_post2", "blocks.2.hook_resid_post", None, None, None, (3, 2)),
    ("embed@a", "hook_embed", None, None, "a", (0, 0)),
    ("pos_embed", "hook_pos_embed", None, None, None, (0, 0)),
]
IDS = [case[0] for case in CASES]


def _decoder():
    model = make_tiny_model(n_layers=N_LAYERS, n_heads=2, d_model=16, d_vocab=40, seed=5)
    return model, make_prompt_set(40, lengths=(6, 8, 5, 7, 8, 6), seed=11)


def _encoder():
    model = make_tiny_encoder(n_layers=N_LAYERS, n_heads=2, d_model=16, d_vocab=40, seed=6)
    return model, make_prompt_set(40, lengths=(6, 8, 5, 7, 8, 6), seed=12)


DIRECTION = torch.randn(16, generator=torch.Generator().manual_seed(0))


def _embedding_metric(embeddings, prompts, corrupt=False):
    """Encoders: the sentence embedding along one fixed direction."""
    return embeddings.float() @ DIRECTION


@pytest.fixture(scope="module", params=["decoder", "encoder"])
def setup(request):
    model, prompts = _decoder() if request.param == "decoder" else _encoder()
    metric = logit_diff if request.param == "decoder" else _embedding_metric
    return request.param, model, prompts, metric


def _slice(act, head, neuron, positions):
    """Index tuple of a node's slice of ``act`` (every position when ``positions`` is None)."""
    rows = torch.arange(act.shape[0])
    pos = positions if positions is not None else slice(None)
    index: tuple = (rows, pos) if positions is not None else (slice(None), pos)
    if head is not None:
        index = (*index, head)
    if neuron is not None:
        index = (*index, neuron)
    return index


def _reference(model, prompts, metric, tokens, hook, write):
    """One plain hooked full pass over the padded batch: ``write(act)`` edits ``hook`` in place."""

    def edit(act, hook):
        act = act.clone()
        write(act)
        return act

    with torch.no_grad():
        return metric(model.run_with_hooks(tokens, fwd_hooks=[(hook, edit)]), prompts)


def _positions(prompts, role):
    return None if role is None else prompts.positions(role)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_zero_ablation_equals_full_hooked_pass(setup, case):
    kind, model, prompts, metric = setup
    node, hook, head, neuron, role, starts = case
    ctx = RunContext(model, prompts, metric=metric)
    ctx.need([hook, *start_hooks([hook], ctx.adapter.arch)])  # as the planner asks, before the shared run
    ctx.clean()
    before = (ctx.counter.forward_passes, ctx.counter.layer_passes)
    got = ablate(ctx, [resolve_site(parse_node(node), prompts)], "zero")
    start = starts[0 if kind == "decoder" else 1]
    n = len(prompts)
    assert ctx.counter.forward_passes - before[0] == n
    assert ctx.counter.layer_passes - before[1] == pytest.approx(n * (N_LAYERS - start) / N_LAYERS)
    positions = _positions(prompts, role)

    def zero(act):
        act[_slice(act, head, neuron, positions)] = 0.0

    expected = _reference(model, prompts, metric, prompts.tokens, hook, zero)
    torch.testing.assert_close(got.float(), expected.float(), atol=ATOL, rtol=0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("direction", ["denoising", "noising"])
def test_patch_equals_full_hooked_pass(setup, case, direction):
    _, model, prompts, metric = setup
    node, hook, head, neuron, role, _ = case
    ctx = RunContext(model, prompts, metric=metric)
    got = activation_patch(ctx, [resolve_site(parse_node(node), prompts)], direction)
    source_tokens, base = (
        (prompts.tokens, prompts.corrupt_tokens)
        if direction == "denoising"
        else (prompts.corrupt_tokens, prompts.tokens)
    )
    with torch.no_grad():
        _, cache = model.run_with_cache(source_tokens, names_filter=[hook])
    source = cache[hook]
    positions = _positions(prompts, role)

    def patch(act):
        index = _slice(act, head, neuron, positions)
        act[index] = source[index]

    expected = _reference(model, prompts, metric, base, hook, patch)
    torch.testing.assert_close(got.float(), expected.float(), atol=ATOL, rtol=0)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[7]], ids=[IDS[0], IDS[3], IDS[7]])
def test_scaling_copies_equal_full_hooked_passes(setup, case):
    _, model, prompts, metric = setup
    node, hook, head, neuron, role, _ = case
    ctx = RunContext(model, prompts, metric=metric)
    alphas = [-1.0, 0.5, 2.0]
    grid = scale_sweep(ctx, [resolve_site(parse_node(node), prompts)], alphas)
    positions = _positions(prompts, role)
    for a, alpha in enumerate(alphas):

        def scale(act, alpha=alpha):
            index = _slice(act, head, neuron, positions)
            act[index] = act[index] * alpha

        expected = _reference(model, prompts, metric, prompts.tokens, hook, scale)
        torch.testing.assert_close(grid[a], expected.float(), atol=ATOL, rtol=0)


def test_forward_counts_rows_tokens_and_layer_share():
    model, prompts = _decoder()
    ctx = RunContext(model, prompts, metric=logit_diff)
    _, cache = ctx.clean(["blocks.1.hook_resid_pre"])
    n, real = len(prompts), int(prompts.lengths.sum())
    resid = cache["blocks.1.hook_resid_pre"].repeat(2, 1, 1)
    logits = ctx.forward(resid, start_at_layer=1)
    assert logits.shape == (2 * n, model.cfg.d_vocab)  # read at each prompt's last real token only
    ends = ctx.clean()[0]  # the shared run keeps logits at each prompt's last real token
    torch.testing.assert_close(logits[:n], ends, atol=ATOL, rtol=0)
    assert ctx.counter.forward_passes == 3 * n
    assert ctx.counter.tokens == 3 * real
    assert ctx.counter.layer_passes == pytest.approx(n + 2 * n * (N_LAYERS - 1) / N_LAYERS)
    mid = ctx.forward(prompts.tokens, stop_at_layer=1)
    torch.testing.assert_close(mid, cache["blocks.1.hook_resid_pre"], atol=0, rtol=0)
    assert ctx.counter.layer_passes == pytest.approx(n + 2 * n * 2 / 3 + n / 3)


def test_a_pass_starts_at_the_tokens_when_the_shared_run_lacks_the_stream():
    model, prompts = _decoder()
    ctx = RunContext(model, prompts, metric=logit_diff)
    _, cache = ctx.clean(["blocks.1.attn.hook_z"])
    del cache["blocks.1.hook_resid_pre"]  # as when a spliced dictionary replaces the hook
    before = ctx.counter.layer_passes
    got = ablate(ctx, [resolve_site(parse_node("L1H0"), prompts)], "zero")
    assert ctx.counter.layer_passes - before == len(prompts)  # one full pass, no rerun of the clean run

    def zero(act):
        act[:, :, 0] = 0.0

    expected = _reference(model, prompts, logit_diff, prompts.tokens, "blocks.1.attn.hook_z", zero)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("group", [True, False])
@pytest.mark.parametrize("embedding", [True, False])
def test_copies_start_at_their_own_first_edited_block(setup, group, embedding):
    """Circuits stacked in one batch: each copy's pass starts at its own first edited block (``group``),
    or all start at the earliest one."""
    _, model, prompts, metric = setup
    ctx = RunContext(model, prompts, metric=metric)
    third = ["embed@a", "L1H1"] if embedding else ["L1H1"]
    circuits = [["L2H1"], ["MLP1", "L2H0@a"], [], third, ["L2H0", "MLP2"]]
    sites = [[resolve_site(parse_node(node), prompts) for node in circuit] for circuit in circuits]
    names = sorted({s.hook_name for circuit in sites for s in circuit})
    _, cache = ctx.clean(names)
    sources = {id(s): torch.zeros_like(cache[s.hook_name]) for circuit in sites for s in circuit}
    edits = edits_for(sites, sources, {name: cache[name].shape for name in names})
    before = ctx.counter.layer_passes
    out = run_edits(ctx, prompts.tokens, edits, copies=len(circuits), group=group)
    n = len(prompts)
    first = 0 if embedding else 1
    starts = [2, 1, first, first, 2] if group else [first] * 5  # the unedited copy joins the earliest
    shares = sum(N_LAYERS - s for s in starts) / N_LAYERS
    assert ctx.counter.layer_passes - before == pytest.approx(n * shares)
    for c, circuit in enumerate(sites):
        hooks = []
        for site in circuit:

            def zero(act, hook, site=site):
                act = act.clone()
                index = _slice(act, site.head, site.index, site.positions)
                act[index] = 0.0
                return act

            hooks.append((site.hook_name, zero))
        with torch.no_grad():
            expected = metric(model.run_with_hooks(prompts.tokens, fwd_hooks=hooks), prompts)
        torch.testing.assert_close(metric(out[c * n : (c + 1) * n], prompts), expected, atol=ATOL, rtol=0)


def test_identical_copies_run_once():
    """Copies with the same edits (e.g. a random circuit drawn twice) cost one copy's pass."""
    model, prompts = _decoder()
    ctx = RunContext(model, prompts, metric=logit_diff)
    circuits = [["L1H0"], ["MLP2"], ["L1H0"], ["L2H1", "MLP0"], ["MLP2"]]
    sites = [[resolve_site(parse_node(node), prompts) for node in circuit] for circuit in circuits]
    names = sorted({s.hook_name for circuit in sites for s in circuit})
    _, cache = ctx.clean(names)
    sources = {id(s): torch.zeros_like(cache[s.hook_name]) for circuit in sites for s in circuit}
    edits = edits_for(sites, sources, {name: cache[name].shape for name in names})
    before = ctx.counter.forward_passes
    out = run_edits(ctx, prompts.tokens, edits, copies=len(circuits))
    n = len(prompts)
    assert ctx.counter.forward_passes - before == 3 * n
    shapes = {name: cache[name].shape for name in names}
    single = run_edits(ctx, prompts.tokens, edits_for(sites[3:4], sources, shapes))
    torch.testing.assert_close(out[3 * n : 4 * n], single, atol=ATOL, rtol=0)
    torch.testing.assert_close(out[:n], out[2 * n : 3 * n], atol=0, rtol=0)
    torch.testing.assert_close(out[n : 2 * n], out[4 * n :], atol=0, rtol=0)
