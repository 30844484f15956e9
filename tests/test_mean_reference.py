"""Mean ablation over a separate reference set (``mean_from``): the mean comes from the reference prompts.

References: ``run_with_cache`` on the reference prompts and the mean taken here by explicit loops (role
positions for a pinned node; per position over the prompts real there, else over every real token); and
the planner end to end on the toy model against :func:`ablate` with the reference set built by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.ablation import ablate
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.reference_sets import reference_mean
from circuitspec.engine.sites import resolve_site
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.nodes import parse_node
from tests.helpers.tiny import make_prompt_set, make_tiny_model

TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"


@pytest.fixture(scope="module")
def tiny():
    model = make_tiny_model(n_layers=2, n_heads=2, d_model=16, d_vocab=50, seed=3)
    own = make_prompt_set(50, lengths=(5, 9, 6, 4), seed=0)
    ref = make_prompt_set(50, lengths=(6, 8, 5), seed=1)
    return model, own, ref


def _ctx(model, prompts) -> RunContext:
    return RunContext(model, prompts, metric=logit_diff)


def test_a_pinned_head_gets_the_reference_prompts_mean_at_its_role(tiny):
    model, own, ref = tiny
    ctx, reference = _ctx(model, own), _ctx(model, ref)
    site = resolve_site(parse_node("L0H1@a"), own, reference.adapter.arch)
    act = ctx.clean([site.hook_name])[1][site.hook_name]
    out = reference_mean(reference, site, act)
    _, cache = model.run_with_cache(ref.tokens)
    z = cache["blocks.0.attn.hook_z"]
    expected = sum(z[i, int(ref.role_positions["a"][i]), 1] for i in range(len(ref))) / len(ref)
    for i in range(len(own)):
        torch.testing.assert_close(out[i, int(own.role_positions["a"][i]), 1], expected, rtol=1e-5, atol=1e-6)
    written = torch.zeros_like(out, dtype=torch.bool)
    written[torch.arange(len(own)), own.role_positions["a"], 1] = True
    assert torch.all(out[~written] == 0)  # nothing else is written


def test_an_unpinned_node_gets_the_reference_per_position_mean_else_the_overall_mean(tiny):
    model, own, ref = tiny
    ctx, reference = _ctx(model, own), _ctx(model, ref)
    site = resolve_site(parse_node("MLP0"), own, reference.adapter.arch)
    act = ctx.clean([site.hook_name])[1][site.hook_name]  # [4, 9, d]: longer than any reference prompt
    out = reference_mean(reference, site, act)
    _, cache = model.run_with_cache(ref.tokens)
    mlp = cache["blocks.0.hook_mlp_out"]
    tokens = [mlp[i, p] for i in range(len(ref)) for p in range(int(ref.lengths[i]))]
    overall = torch.stack(tokens).mean(0)
    for p in range(act.shape[1]):
        real = [mlp[i, p] for i in range(len(ref)) if p < int(ref.lengths[i])]
        expected = torch.stack(real).mean(0) if real else overall
        for i in range(len(own)):
            torch.testing.assert_close(out[i, p], expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out[0, 1], act[:, 1].mean(0), atol=1e-4)  # not the claim's own prompts' mean


def test_the_claims_own_prompts_as_reference_give_the_plain_mean_ablation(tiny):
    model, own, ref = tiny
    ctx = _ctx(model, own)
    sites = [resolve_site(parse_node(t), own, ctx.adapter.arch) for t in ("L0H1@a", "MLP1")]
    plain = ablate(ctx, sites, "mean")
    itself = ablate(ctx, sites, "mean", reference=_ctx(model, own))
    torch.testing.assert_close(itself, plain, rtol=1e-5, atol=1e-5)
    other = ablate(ctx, sites, "mean", reference=_ctx(model, ref))
    assert not torch.allclose(other, plain, atol=1e-4)  # the reference set is what was averaged


def _toy_with(tmp_path: Path, claim: str) -> Path:
    shutil.copytree(TOY.parent / "data", tmp_path / "data")  # rows are read: a copy inside the folder
    path = tmp_path / "toy.yaml"
    path.write_text(TOY.read_text() + claim)
    return path


REFERENCED = (
    "  - {id: ref_mean, kind: ablation, targets: [L0H0@end, MLP0], data: [sub_minimal], split: all,\n"
    "     mean_from: {data: [neg_minimal], split: all}, expect: mean < 0}\n"
)


def test_the_planner_averages_over_the_reference_set(tmp_path: Path):
    from circuitspec.engine.planner import run_claims
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.pipeline import load_hypothesis_model
    from circuitspec.spec.loader import load_hypothesis, load_rows

    hypothesis = load_hypothesis(_toy_with(tmp_path, REFERENCED))
    loaded = load_hypothesis_model(hypothesis.spec.model, hypothesis.base_dir)
    graph = compile_hypothesis(hypothesis, shape=loaded.shape)
    rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)
    graph.claims = [graph.claim("ref_mean")]  # only this claim
    measured = run_claims(graph, loaded, rows, tmp_path, progress=False)["ref_mean"]
    assert measured.error is None, measured.error
    data = graph.hypothesis.data
    own = build_prompt_set(data, rows, loaded.tokenizer, ["sub_minimal"], seed=data.seed, n=data.n)
    ref = build_prompt_set(data, rows, loaded.tokenizer, ["neg_minimal"], seed=data.seed, n=data.n)
    ctx = RunContext(loaded.model, own, metric=logit_diff)
    sites = [resolve_site(node, own, ctx.adapter.arch) for node in graph.targets("ref_mean")]
    expected = ablate(ctx, sites, "mean", reference=RunContext(loaded.model, ref, metric=logit_diff))
    np.testing.assert_allclose(measured.arrays["intervened"], expected.double().numpy(), rtol=1e-4, atol=1e-4)
    plain = ablate(ctx, sites, "mean").double().numpy()
    assert not np.allclose(measured.arrays["intervened"], plain, atol=1e-3)


@pytest.mark.parametrize(
    ("claim", "fragment"),
    [
        (
            "  - {id: r1, kind: ablation, method: zero, targets: L0H0, mean_from: {data: [neg_minimal]}, "
            "expect: mean < 0}\n",
            "'mean_from' is for method: mean",
        ),
        (
            "  - {id: r2, kind: ablation, targets: L0H0, mean_from: {data: [nope]}, expect: mean < 0}\n",
            "unknown template or tag 'nope'",
        ),
        (
            "  - {id: r3, kind: ablation, targets: L0H0@noun, data: [contextual], "
            "mean_from: {data: [minimal]}, expect: mean < 0}\n",
            "role 'noun' of target 'L0H0@noun' (mean_from) is not defined by template 'sub_minimal'",
        ),
    ],
)
def test_validate_refuses_a_bad_mean_from_in_one_line(tmp_path: Path, claim: str, fragment: str):
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis

    with pytest.raises(CircuitSpecError) as info:
        compile_hypothesis(load_hypothesis(_toy_with(tmp_path, claim)))
    message = str(info.value)
    assert fragment in message and "\n" not in message, message
