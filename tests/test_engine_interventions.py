"""Each intervention against an independent reference: plain TransformerLens hook loops, one
prompt at a time (no padding), on small random models of several shapes, LN and LNPre."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.ablation import ablate
from circuitspec.engine.interventions.ablation_claim import circuit_arrays as ablation_arrays
from circuitspec.engine.interventions.activation_patching import activation_patch, patching_sweep
from circuitspec.engine.interventions.attention import attention_prob
from circuitspec.engine.interventions.attribution import component_attributions, direct_logit_attribution
from circuitspec.engine.interventions.faithfulness import faithfulness
from circuitspec.engine.interventions.faithfulness_claim import circuit_arrays as faithfulness_arrays
from circuitspec.engine.interventions.logit_lens import lens_sites, logit_lens
from circuitspec.engine.interventions.random_circuits import random_baseline, random_node_sets
from circuitspec.engine.interventions.scaling import scale_sweep
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.prompts import derangement
from circuitspec.engine.sites import resolve_site
from circuitspec.spec.nodes import parse_node
from tests.helpers.tiny import make_prompt_set, make_tiny_model

torch.set_num_threads(1)
ATOL = 1e-4

SHAPES = [
    pytest.param(dict(n_layers=2, n_heads=2, d_model=16, normalization_type="LN", seed=0), id="2L2H-LN"),
    pytest.param(
        dict(n_layers=3, n_heads=4, d_model=24, normalization_type="LNPre", seed=1), id="3L4H-LNPre"
    ),
]


@pytest.fixture(scope="module", params=SHAPES)
def setup(request):
    model = make_tiny_model(d_vocab=40, **request.param)
    prompts = make_prompt_set(40, lengths=(6, 8, 5, 7, 8), seed=request.param["seed"] + 3)
    return model, prompts


def ctx_for(model, prompts) -> RunContext:
    return RunContext(model, prompts, metric=logit_diff)


def sites(prompts, *names):
    return [resolve_site(parse_node(n), prompts) for n in names]


# ---------------------------------------------------------------- reference helpers


def one(prompts, i, corrupt=False):
    """Prompt i unpadded, [1, len]."""
    tokens = prompts.corrupt_tokens if corrupt else prompts.tokens
    return tokens[i : i + 1, : int(prompts.lengths[i])]


def ref_ld(logits, prompts, i):
    last = logits[0, -1]
    return float(last[prompts.desired[i]] - last[prompts.undesired[i]])


def run_ref(model, prompts, i, hooks=(), corrupt=False):
    with torch.no_grad():
        return ref_ld(model.run_with_hooks(one(prompts, i, corrupt), fwd_hooks=list(hooks)), prompts, i)


def cache_one(model, prompts, i, corrupt=False):
    with torch.no_grad():
        _, cache = model.run_with_cache(one(prompts, i, corrupt))
    return cache


def pos(prompts, role, i):
    return int(prompts.positions(role)[i])


# ---------------------------------------------------------------------------- tests


def test_batched_metric_equals_unbatched(setup):
    model, prompts = setup
    ctx = ctx_for(model, prompts)
    logits, _ = ctx.clean()
    batched = ctx.metric(logits, prompts)
    for i in range(len(prompts)):
        assert batched[i].item() == pytest.approx(run_ref(model, prompts, i), abs=ATOL)


def test_dla_sums_to_logit_diff_and_matches_transformerlens_stack(setup):
    model, prompts = setup
    ctx = ctx_for(model, prompts)
    table = component_attributions(ctx)
    total = torch.stack(list(table.values())).sum(0)
    clean = ctx.metric(ctx.clean()[0], prompts)
    torch.testing.assert_close(total, clean.float(), atol=ATOL, rtol=0)
    cfg = model.cfg
    for i in range(len(prompts)):
        cache = cache_one(model, prompts, i)
        stack = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)[:, 0]  # [L*H, d]
        direction = (model.W_U[:, prompts.desired[i]] - model.W_U[:, prompts.undesired[i]]).detach()
        if cfg.normalization_type == "LN":
            direction = direction * model.ln_final.w
        ref = stack @ direction
        ours = torch.tensor([table[f"L{l}H{h}"][i] for l in range(cfg.n_layers) for h in range(cfg.n_heads)])
        torch.testing.assert_close(ours, ref.float(), atol=ATOL, rtol=0)
        mlp = cache.apply_ln_to_stack(cache["blocks.1.hook_mlp_out"][:, -1:][None], layer=-1, pos_slice=-1)[
            0, 0, -1
        ]
        assert table["MLP1"][i].item() == pytest.approx(float(mlp @ direction.detach()), abs=ATOL)
    summed = direct_logit_attribution(ctx, sites(prompts, "L0H1", "MLP1", "embed"))
    torch.testing.assert_close(summed, table["L0H1"] + table["MLP1"] + table["embed"])


@torch.no_grad()
def manual_lens(model, resid):
    """Final LayerNorm written out by hand, then the unembedding."""
    x = resid - resid.mean(-1, keepdim=True)
    x = x / (x.pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt()
    if model.cfg.normalization_type == "LN":
        x = x * model.ln_final.w + model.ln_final.b
    return x @ model.W_U + model.b_U


def test_logit_lens_matches_hand_written_layernorm(setup):
    model, prompts = setup
    ctx = ctx_for(model, prompts)
    values = logit_lens(ctx)
    labels = [label for label, _ in lens_sites(model.cfg.n_layers)]
    assert list(values) == labels
    final = ctx.metric(ctx.clean()[0], prompts)
    torch.testing.assert_close(values[labels[-1]], final.float(), atol=ATOL, rtol=0)
    for i in range(len(prompts)):
        cache = cache_one(model, prompts, i)
        for label in labels:
            kind, layer = label.rstrip("0123456789"), label[len(label.rstrip("0123456789")) :]
            logits = manual_lens(model, cache[f"blocks.{layer}.hook_{kind}"][0, -1])
            ref = float(logits[prompts.desired[i]] - logits[prompts.undesired[i]])
            assert values[label][i].item() == pytest.approx(ref, abs=ATOL)


def test_attention_prob_matches_cache(setup):
    model, prompts = setup
    ctx = ctx_for(model, prompts)
    got = attention_prob(ctx, sites(prompts, "L1H1")[0], source="end", destination="a")
    for i in range(len(prompts)):
        pattern = cache_one(model, prompts, i)["blocks.1.attn.hook_pattern"]
        assert got[i].item() == pytest.approx(pattern[0, 1, -1, pos(prompts, "a", i)].item(), abs=1e-6)


@pytest.mark.parametrize("method", ["zero", "mean", "resample", "soft"])
def test_ablation_matches_hook_loop(setup, method):
    model, prompts = setup
    ctx = ctx_for(model, prompts)
    n = len(prompts)
    names = ["L1H0@a", "MLP0", "L0H1.v@b"]
    got = ablate(ctx, sites(prompts, *names), method=method, alpha=-0.5, seed=4)
    caches = [cache_one(model, prompts, i) for i in range(n)]
    perm = derangement(n, 4)

    def role_value(hook, head, role, i):
        """What the method writes at prompt i's role position (references built from per-prompt caches)."""
        rows = [caches[j][hook][0, pos(prompts, role, j), head] for j in range(n)]
        return {
            "zero": torch.zeros_like(rows[0]),
            "mean": torch.stack(rows).mean(0),
            "resample": rows[perm[i]],
        }[method]

    with torch.no_grad():  # another prompt's positions past its own end are its padding tokens
        _, full = model.run_with_cache(prompts.tokens)
    padded_mlp = full["blocks.0.hook_mlp_out"]

    def mlp_value(i, length):
        acts = [caches[j]["blocks.0.hook_mlp_out"][0] for j in range(n)]
        if method == "zero":
            return torch.zeros(length, acts[0].shape[-1])
        if method == "resample":  # the other prompt's activations at the same absolute positions
            return padded_mlp[perm[i]][:length]
        rows = []
        for p in range(length):
            real = [a[p] for a in acts if a.shape[0] > p]
            rows.append(torch.stack(real).mean(0))
        return torch.stack(rows)

    for i in range(n):
        length = int(prompts.lengths[i])

        def head_hook(act, hook, head, role, i=i):
            act = act.clone()
            if method == "soft":
                act[0, pos(prompts, role, i), head] *= -0.5
            else:
                act[0, pos(prompts, role, i), head] = role_value(hook.name, head, role, i)
            return act

        def mlp_hook(act, hook, i=i, length=length):
            return act * -0.5 if method == "soft" else mlp_value(i, length)[None]

        hooks = [
            ("blocks.1.attn.hook_z", lambda a, hook: head_hook(a, hook, 0, "a")),
            ("blocks.0.hook_mlp_out", mlp_hook),
            ("blocks.0.attn.hook_v", lambda a, hook: head_hook(a, hook, 1, "b")),
        ]
        assert got[i].item() == pytest.approx(run_ref(model, prompts, i, hooks), abs=ATOL)


@pytest.mark.parametrize("direction", ["denoising", "noising"])
def test_activation_patching_matches_hook_loop(setup, direction):
    model, prompts = setup
    ctx = ctx_for(model, prompts)
    got = activation_patch(ctx, sites(prompts, "L1H1@end", "resid_pre1@a"), direction)
    for i in range(len(prompts)):
        source = cache_one(model, prompts, i, corrupt=direction == "noising")

        def patch(act, hook, role, head=None, source=source, i=i):
            act = act.clone()
            where = (0, pos(prompts, role, i)) if head is None else (0, pos(prompts, role, i), head)
            act[where] = source[hook.name][where]
            return act

        hooks = [
            ("blocks.1.attn.hook_z", lambda a, hook: patch(a, hook, "end", 1)),
            ("blocks.1.hook_resid_pre", lambda a, hook: patch(a, hook, "a")),
        ]
        ref = run_ref(model, prompts, i, hooks, corrupt=direction == "denoising")
        assert got[i].item() == pytest.approx(ref, abs=ATOL)


def test_patching_clean_into_clean_changes_nothing(setup):
    model, prompts = setup
    twin = make_prompt_set(40, lengths=tuple(prompts.lengths.tolist()), seed=3)
    twin.tokens = prompts.tokens
    twin.corrupt_tokens = prompts.tokens.clone()
    twin.desired, twin.undesired = prompts.desired, prompts.undesired
    ctx = ctx_for(model, twin)
    clean = ctx.metric(ctx.clean()[0], twin)
    got = activation_patch(ctx, sites(twin, "L0H0", "MLP1", "resid_mid1@b"), "denoising")
    torch.testing.assert_close(got, clean, atol=1e-5, rtol=0)


def test_patching_sweep_matches_single_patches(setup):
    model, prompts = setup
    ctx = ctx_for(model, prompts)
    grid, roles = patching_sweep(ctx, "resid_pre", direction="denoising")
    assert roles == ["a", "b", "end"]
    assert grid.shape == (model.cfg.n_layers, 3, len(prompts))
    for layer in range(model.cfg.n_layers):
        for r, role in enumerate(roles):
            single = activation_patch(ctx, sites(prompts, f"resid_pre{layer}@{role}"), "denoising")
            torch.testing.assert_close(grid[layer, r], single, atol=ATOL, rtol=0)
    # patching the whole residual stream at layer 0 everywhere recovers the clean run exactly
    everywhere = activation_patch(ctx, sites(prompts, "resid_pre0"), "denoising")
    torch.testing.assert_close(everywhere, ctx.metric(ctx.clean()[0], prompts), atol=ATOL, rtol=0)


def test_scaling_matches_hook_loop_and_metamorphic(setup):
    model, prompts = setup
    ctx = ctx_for(model, prompts)
    alphas = [-2.0, 0.0, 1.0, 4.0]
    target = sites(prompts, "L1H0.v@a", "MLP0@b")
    grid = scale_sweep(ctx, target, alphas, signs=[1.0, -1.0])
    clean = ctx.metric(ctx.clean()[0], prompts)
    for a, alpha in enumerate(alphas):
        for i in range(len(prompts)):

            def v_hook(act, hook, i=i, alpha=alpha):
                act = act.clone()
                act[0, pos(prompts, "a", i), 0] *= alpha
                return act

            def mlp_hook(act, hook, i=i, alpha=alpha):
                act = act.clone()
                act[0, pos(prompts, "b", i)] *= -alpha
                return act

            hooks = [("blocks.1.attn.hook_v", v_hook), ("blocks.0.hook_mlp_out", mlp_hook)]
            assert grid[a, i].item() == pytest.approx(run_ref(model, prompts, i, hooks), abs=ATOL)
    one_site = sites(prompts, "L1H0.v@a")
    identity, zero = scale_sweep(ctx, one_site, [1.0, 0.0])
    torch.testing.assert_close(identity, clean.float(), atol=1e-5, rtol=0)
    torch.testing.assert_close(zero, ablate(ctx, one_site, "zero").float(), atol=1e-5, rtol=0)


def test_faithfulness_full_and_empty_circuits_and_reference(setup):
    model, prompts = setup
    cfg = model.cfg
    ctx = ctx_for(model, prompts)
    everything = [f"L{l}H{h}" for l in range(cfg.n_layers) for h in range(cfg.n_heads)]
    everything += [f"MLP{l}" for l in range(cfg.n_layers)]
    full = faithfulness(ctx, sites(prompts, *everything), "mean")
    torch.testing.assert_close(full.circuit, full.clean, atol=ATOL, rtol=0)
    torch.testing.assert_close(full.recovery, torch.ones(len(prompts)), atol=1e-3, rtol=0)
    empty = faithfulness(ctx, [], "mean")
    torch.testing.assert_close(empty.circuit, empty.baseline, atol=ATOL, rtol=0)

    # reference: zero every head and MLP except L1H1 (all positions) and MLP0 at role b
    got = faithfulness(ctx, sites(prompts, "L1H1", "MLP0@b"), "zero")
    for i in range(len(prompts)):

        def z_hook(act, hook):
            keep = torch.zeros_like(act)
            if hook.name == "blocks.1.attn.hook_z":
                keep[:, :, 1] = act[:, :, 1]
            return keep

        def mlp_hook(act, hook, i=i):
            keep = torch.zeros_like(act)
            if hook.name == "blocks.0.hook_mlp_out":
                keep[:, pos(prompts, "b", i)] = act[:, pos(prompts, "b", i)]
            return keep

        hooks = [(f"blocks.{l}.attn.hook_z", z_hook) for l in range(cfg.n_layers)]
        hooks += [(f"blocks.{l}.hook_mlp_out", mlp_hook) for l in range(cfg.n_layers)]
        assert got.circuit[i].item() == pytest.approx(run_ref(model, prompts, i, hooks), abs=ATOL)


def test_random_circuits_seeded_same_kind_and_batched_equals_single(setup):
    model, prompts = setup
    targets = [parse_node(t) for t in ("L1H0@a", "MLP0", "L0H1.v@b")]
    sets = random_node_sets(targets, model.cfg, 5, seed=11)
    assert sets == random_node_sets(targets, model.cfg, 5, seed=11)
    for nodes in sets:
        assert [n.kind for n in nodes] == [t.kind for t in targets]
        assert [n.role for n in nodes] == [t.role for t in targets]
    ctx = ctx_for(model, prompts)
    clean = ctx.metric(ctx.clean()[0], prompts)
    ablation = SimpleNamespace(method="mean", alpha=None)
    batched = random_baseline(ctx, sets, "mean", lambda c: ablation_arrays(ctx, c, ablation, 2))
    for value, nodes in zip(batched, sets, strict=True):
        single = ablate(ctx, [resolve_site(n, prompts) for n in nodes], "mean", seed=2)
        assert value == pytest.approx(float((single - clean).mean()), abs=ATOL)
    kept = SimpleNamespace(method="mean")
    recovered = random_baseline(ctx, sets[:2], "recovered", lambda c: faithfulness_arrays(ctx, c, kept, 0))
    for value, nodes in zip(recovered, sets[:2], strict=True):
        f = faithfulness(ctx, [resolve_site(n, prompts) for n in nodes], "mean")
        expected = (f.circuit.mean() - f.baseline.mean()) / (f.clean.mean() - f.baseline.mean())
        assert value == pytest.approx(float(expected), abs=1e-3)
    assert np.isfinite(batched).all()
