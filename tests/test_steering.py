"""Steering (circuitspec.engine.steering) on the bundled toy model, against plain TransformerLens hooks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from circuitspec.directions.geometry import mean_difference
from circuitspec.directions.store import save_direction
from circuitspec.engine.context import RunContext
from circuitspec.engine.edits import chain_edits, run_edits
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.models import load_model
from circuitspec.engine.prompts import build_prompt_set
from circuitspec.engine.steering import (
    Push,
    Shift,
    collect,
    group_direction,
    layer_directions,
    load_for,
    provenance_for,
    random_direction,
    steer,
    steering_sweep,
)
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.loader import load_hypothesis, load_rows

torch.set_num_threads(1)


TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"


@pytest.fixture(scope="module")
def groups():
    """Two prompt groups on the bundled toy model (substitution and negation prompts, eight each), in
    float64 and without its transcoder, so float comparisons hold on any CPU."""
    hypothesis = load_hypothesis(TOY)
    spec = hypothesis.spec.model.model_copy(update={"dictionaries": {}, "dtype": "float64"})
    loaded = load_model(spec, hypothesis.base_dir)
    rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)

    def ctx(template: str) -> RunContext:
        data = hypothesis.spec.data
        prompts = build_prompt_set(data, rows, loaded.tokenizer, [template], seed=0, n=8)
        return RunContext(loaded.model, prompts, metric=logit_diff)

    return ctx("sub_minimal"), ctx("neg_minimal")


def _ends(prompts) -> torch.Tensor:
    return prompts.lengths - 1


def _reference(ctx: RunContext, hook: str, head: int | None, role: str, vector, alpha: float) -> torch.Tensor:
    """End-token logits of a plain hooked pass adding ``alpha · vector`` at ``hook`` (a head's or a neuron's
    slice ``head``) and each prompt's ``role`` position: the reference the batched edit must equal."""
    prompts = ctx.prompts
    pos = prompts.positions(role)
    rows = torch.arange(len(prompts))
    add = torch.as_tensor(np.asarray(vector) * alpha, dtype=torch.float64)

    def hook_fn(act, hook):
        act = act.clone()
        if head is None:
            act[rows, pos] += add
        else:
            act[rows, pos, head] += add
        return act

    with torch.no_grad():
        logits = ctx.model.run_with_hooks(prompts.tokens, fwd_hooks=[(hook, hook_fn)])
    return logits[rows, _ends(prompts)]


def test_a_zero_direction_changes_nothing(groups):
    ctx, _ = groups
    arch = ctx.adapter.arch
    with torch.no_grad():  # the clean logits from a plain forward pass, not the engine's shared run
        plain = ctx.model(ctx.prompts.tokens)[torch.arange(len(ctx.prompts)), _ends(ctx.prompts)]
    direction = group_direction(*groups, "resid_pre1@end").unit  # the groups differ at the end
    pushes = [
        Push("resid_pre1@s_con", np.zeros(arch.d_model), 3.0),
        Push("L0H1@end", np.zeros(arch.d_head), -2.0),
        Push("MLP0@w_ori", np.zeros(arch.d_model), 1.0),
        Push("embed@s_con", np.zeros(arch.d_model), 5.0),
        Push("resid_pre1@s_con", direction, 0.0),
    ]
    out = steer(ctx, pushes)
    assert out.shape == (len(pushes), len(ctx.prompts), plain.shape[-1])
    for logits in out:
        torch.testing.assert_close(logits, plain, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("node", "hook", "head", "role"),
    [
        ("resid_pre1@s_con", "blocks.1.hook_resid_pre", None, "s_con"),
        ("L0H1@w_ori", "blocks.0.attn.hook_z", 1, "w_ori"),
        ("MLP0@end", "blocks.0.hook_mlp_out", None, "end"),
        ("resid_post1@end", "blocks.1.hook_resid_post", None, "end"),
        ("embed@s_ori", "hook_embed", None, "s_ori"),
        ("MLP0.post[3]@s_con", "blocks.0.mlp.hook_post", 3, "s_con"),  # one neuron: width 1
    ],
)
def test_steering_equals_a_hand_written_hook(groups, node, hook, head, role):
    ctx, _ = groups
    width = collect(ctx, node).shape[1]
    vector = random_direction(width, 2.0, seed=7)
    alphas = [-1.5, 0.5, 2.0]
    out = steer(ctx, [Push(node, vector, a) for a in alphas])  # one batched call, a copy per α
    for logits, alpha in zip(out, alphas, strict=True):
        expected = _reference(ctx, hook, head, role, vector, alpha)
        torch.testing.assert_close(logits, expected, atol=1e-9, rtol=0)
    assert not torch.allclose(out[0], out[2], atol=1e-3)  # the push does something


def test_shifts_compose_with_other_edits(groups):
    ctx, _ = groups
    (plus,) = _shift(ctx, "resid_pre1@s_con", 1.0).values()
    (minus,) = _shift(ctx, "resid_pre1@s_con", -1.0).values()
    both = run_edits(ctx, ctx.prompts.tokens, {"blocks.1.hook_resid_pre": chain_edits([plus, minus])})
    torch.testing.assert_close(both, ctx.clean()[0], atol=1e-9, rtol=0)


def _shift(ctx, node, alpha):
    from circuitspec.engine.steering import _checked_sites, _shifts

    push = Push(node, random_direction(ctx.adapter.arch.d_model, 3.0, seed=1), alpha)
    sites, cache = _checked_sites(ctx, [push])
    edits = _shifts(sites, [push], cache, len(ctx.prompts))
    assert all(isinstance(e, Shift) for e in edits.values())
    return edits


def test_token_level_and_sentence_final_readings(groups):
    ctx, _ = groups
    with torch.no_grad():
        _, cache = ctx.model.run_with_cache(ctx.prompts.tokens)
    stream = cache["blocks.1.hook_resid_pre"]
    rows = torch.arange(len(ctx.prompts))
    token = collect(ctx, "resid_pre1@w_ori", "token")
    final = collect(ctx, "resid_pre1@w_ori", "final")
    np.testing.assert_allclose(token, stream[rows, ctx.prompts.positions("w_ori")].double(), atol=1e-9)
    np.testing.assert_allclose(final, stream[rows, _ends(ctx.prompts)].double(), atol=1e-9)
    head = collect(ctx, "L0H2@s_con")
    np.testing.assert_allclose(
        head, cache["blocks.0.attn.hook_z"][rows, ctx.prompts.positions("s_con"), 2], atol=1e-9
    )
    with pytest.raises(CircuitSpecError, match="names no role"):
        collect(ctx, "resid_pre1", "token")


def test_random_control_has_the_norm_and_is_deterministic_per_seed(groups):
    ctx, baseline = groups
    for seed in (0, 1, 99):
        r = random_direction(32, 2.5, seed)
        assert np.linalg.norm(r) == pytest.approx(2.5)
        np.testing.assert_array_equal(r, random_direction(32, 2.5, seed))
    assert not np.allclose(random_direction(32, 1.0, 0), random_direction(32, 1.0, 1))
    read = layer_directions(ctx, baseline, "resid_pre{layer}@end", [0, 1])  # the groups differ at the end
    assert list(read) == ["resid_pre0@end", "resid_pre1@end"]
    directions = {node.replace("@end", "@s_con"): vector for node, vector in read.items()}  # injected there
    first = steering_sweep(ctx, directions, alphas=[-2.0, 0.0, 2.0], seeds=[3, 4])
    second = steering_sweep(ctx, directions, alphas=[-2.0, 0.0, 2.0], seeds=[3, 4])
    np.testing.assert_array_equal(first.random, second.random)
    assert first.steered.shape == (2, 3, 8) and first.random.shape == (2, 2, 3, 8)
    np.testing.assert_allclose(first.norms, 1.0)
    # the control for seed 4 at the second node is exactly a push of random_direction(d, norm, 4)
    control = random_direction(ctx.adapter.arch.d_model, first.norms[1], 4)
    out = steer(ctx, [Push("resid_pre1@s_con", control, 2.0)])[0]
    np.testing.assert_allclose(first.random[1, 1, 2], logit_diff(out, ctx.prompts).double(), atol=1e-9)
    np.testing.assert_allclose(first.steered[:, 1], np.broadcast_to(first.clean, (2, 8)), atol=1e-9)
    m = first.measurement("steer_s_con", node="resid_pre1@s_con")
    assert m.sweep_variable == "alpha" and [p.x for p in m.sweep] == [-2.0, 0.0, 2.0]
    np.testing.assert_allclose(m.arrays["value"], first.steered[1, 2] - first.clean)
    np.testing.assert_allclose(m.random_baseline, (first.random[1, :, 2] - first.clean).mean(axis=1))


def test_stored_directions_are_checked_against_the_model(groups, tmp_path):
    ctx, baseline = groups
    md = group_direction(ctx, baseline, "resid_pre1@s_con", "final")
    prov = provenance_for("resid_pre1@s_con", "final", "bundled:toy_sentiment@final", ["sub", "neg"], [8, 8])
    assert (prov.node, prov.role, prov.layer) == ("resid_pre1", "end", 1)
    save_direction(tmp_path / "ok.safetensors", md, prov)
    np.testing.assert_array_equal(load_for(ctx, tmp_path / "ok.safetensors").direction().unit, md.unit)
    narrow = mean_difference(np.ones((2, 5)), np.zeros((2, 5)))
    save_direction(tmp_path / "narrow.safetensors", narrow, prov)
    with pytest.raises(CircuitSpecError, match="5 wide but resid_pre1 of this model is") as info:
        load_for(ctx, tmp_path / "narrow.safetensors")
    assert "\n" not in str(info.value)
    with pytest.raises(CircuitSpecError, match="width 5"):
        steer(ctx, [Push("resid_pre1@s_con", narrow.unit, 1.0)])
