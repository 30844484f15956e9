"""The planner end to end on a tiny random model: every claim kind measured from a YAML hypothesis,
arrays equal to the interventions called directly, shared clean/corrupted runs, errors contained."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.ablation import ablate
from circuitspec.engine.interventions.scaling import scale_sweep
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.models import LoadedModel, shape_of
from circuitspec.engine.planner import run_claims
from circuitspec.engine.prompts import build_prompt_set
from circuitspec.engine.sites import resolve_site
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.spec.loader import load_hypothesis, load_rows
from circuitspec.spec.nodes import parse_node
from tests.helpers.tiny import make_tiny_model, make_tokenizer

torch.set_num_threads(1)

HYPOTHESIS = """
name: tiny
model: {bundled: tiny}
data:
  rows:
    - {who: John, adj: good, adj2: bad}
    - {who: Mary, adj: great, adj2: awful}
    - {who: she, adj: nice, adj2: terrible}
    - {who: he, adj: fine, adj2: poor}
  corrupt:
    set: {adj: "{adj2}"}
  templates:
    - id: long
      text: "{who} : the movie was {adj} but the film is"
      desired: " {adj}"
      undesired: " {adj2}"
      tags: [all]
    - id: short
      text: "{who} : it was {adj} . it is"
      desired: " {adj}"
      undesired: " {adj2}"
      tags: [all]
claims:
  - {id: dla, kind: attribution, targets: [L1H0, MLP1], expect: "mean > 0", random_baseline: {n: 4, seed: 1}}
  - {id: lens, kind: logit_lens, expect: "mean increases with layer"}
  - {id: attn, kind: attention, targets: [L1H1], destination: adj, expect: "mean > 0.1"}
  - {id: ablate_mean, kind: ablation, targets: ["L0H1@adj", MLP0], method: mean, expect: "mean < 0",
     random_baseline: {n: 5, seed: 2}}
  - {id: ablate_soft, kind: ablation, targets: [L1H0], method: soft, alpha: -1.0, expect: "mean < 0"}
  - {id: patch, kind: activation_patching, targets: ["resid_pre1@adj"], expect: "recovered > 0.5"}
  - {id: scale, kind: scaling, targets: ["L1H0.v@adj", "L0H1.v@adj"], alphas: [0, 1, 2],
     signs: {"L0H1.v@adj": -1}, interaction: true, expect: "interaction < 0", random_baseline: {n: 2}}
  - {id: faithful, kind: faithfulness, targets: [L1H0, MLP1], expect: "recovered > 0.5",
     random_baseline: {n: 3}}
  - {id: bad_role, kind: attribution, targets: ["L1H0@adj"], expect: "mean > 0"}
  - {id: only_long, kind: ablation, targets: [L1H1], method: zero, data: [long], expect: "mean < 0"}
"""


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hyp")
    path = folder / "tiny.yaml"
    path.write_text(textwrap.dedent(HYPOTHESIS))
    tokenizer = make_tokenizer()
    model = make_tiny_model(2, 2, 16, "LN", d_vocab=tokenizer.vocab_size, seed=5)
    loaded = LoadedModel(model, tokenizer, shape_of(model.cfg), {"source": "test"})
    hypothesis = load_hypothesis(path)
    graph = compile_hypothesis(hypothesis, shape=loaded.shape)
    rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)
    results = run_claims(graph, loaded, rows, folder, progress=False)
    prompts = build_prompt_set(hypothesis.spec.data, rows, tokenizer, ["long", "short"], seed=0, n=None)
    return results, RunContext(model, prompts, metric=logit_diff), graph


def sites(ctx, *names):
    return [resolve_site(parse_node(n), ctx.prompts) for n in names]


def test_every_claim_measured_and_errors_contained(measured):
    results, _, graph = measured
    assert list(results) == [c.id for c in graph.claims]
    errors = {k: m.error for k, m in results.items() if m.error}
    assert list(errors) == ["bad_role"] and "\n" not in errors["bad_role"] and "@adj" in errors["bad_role"]
    for m in results.values():
        if not m.error:
            assert m.arrays["value"].shape == (m.n_prompts,)
    assert results["only_long"].n_prompts == 4 and results["dla"].n_prompts == 8
    # scaling has no random-circuit baseline: the claim is still measured, the baseline says why not
    assert (
        results["scale"].random_baseline is None
        and "scaling" in results["scale"].extra["random_baseline_error"]
    )


def test_arrays_match_direct_calls(measured):
    results, ctx, _ = measured
    clean = logit_diff(ctx.clean()[0], ctx.prompts).numpy()
    corrupt = logit_diff(ctx.corrupted()[0], ctx.prompts).numpy()
    m = results["ablate_mean"]
    direct = ablate(ctx, sites(ctx, "L0H1@adj", "MLP0"), "mean", seed=0).numpy()
    np.testing.assert_allclose(m.arrays["intervened"], direct, atol=1e-5)
    np.testing.assert_allclose(m.arrays["value"], direct - clean, atol=1e-5)
    np.testing.assert_allclose(m.arrays["clean"], clean, atol=1e-5)
    assert m.random_baseline is not None and m.random_baseline.shape == (5,)
    p = results["patch"]
    np.testing.assert_allclose(p.arrays["corrupt"], corrupt, atol=1e-5)
    np.testing.assert_allclose(p.arrays["value"], p.arrays["intervened"] - corrupt, atol=1e-5)
    s = results["scale"]
    assert s.sweep_variable == "alpha" and [pt.x for pt in s.sweep] == [0.0, 1.0, 2.0]
    grid = scale_sweep(ctx, sites(ctx, "L1H0.v@adj", "L0H1.v@adj"), [0, 1, 2], [1, -1]).numpy()
    for a, point in enumerate(s.sweep):
        np.testing.assert_allclose(point.arrays["intervened"], grid[a], atol=1e-5)
        np.testing.assert_allclose(point.arrays["value"], grid[a] - clean, atol=1e-5)
    # at alpha = 1 only the sign -1 target changes, so the joint effect is that target's alone
    np.testing.assert_allclose(s.sweep[1].arrays["interaction"], 0, atol=1e-5)
    alone = scale_sweep(ctx, sites(ctx, "L1H0.v@adj"), [2], [1]).numpy()[0] - clean
    other = scale_sweep(ctx, sites(ctx, "L0H1.v@adj"), [2], [-1]).numpy()[0] - clean
    np.testing.assert_allclose(s.arrays["interaction"], grid[2] - clean - alone - other, atol=1e-5)
    lens = results["lens"]
    assert lens.sweep_variable == "layer" and [pt.x for pt in lens.sweep] == [0.0, 0.5, 1.0, 1.5, 2.0]
    np.testing.assert_allclose(lens.sweep[-1].arrays["value"], clean, atol=1e-4)
    dla = results["dla"]
    assert dla.random_baseline is not None and dla.random_baseline.shape == (4,)
    f = results["faithful"]
    recovery = (f.arrays["intervened"] - f.arrays["corrupt"]) / (f.arrays["clean"] - f.arrays["corrupt"])
    np.testing.assert_allclose(f.arrays["value"], recovery, rtol=1e-4)


def test_runs_are_shared_and_costs_recorded(measured):
    results = measured[0]
    n = 8
    # clean run once (first claim), corrupted run once (first claim needing it): nothing re-run later
    assert results["dla"].cost.forward_passes == n  # the clean run; its random baseline is free
    assert results["lens"].cost.forward_passes == 0 and results["attn"].cost.forward_passes == 0
    assert results["ablate_soft"].cost.forward_passes == n
    # joint sweep + each target alone, 3 α each; α = 1 on the sign +1 target alone is the clean run (no pass)
    assert results["scale"].cost.forward_passes == n * (3 + 2 + 3)
    assert all(m.cost.seconds >= 0 for m in results.values())
