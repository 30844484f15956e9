"""Causal scrubbing: batched engine == explicit per-path reference; planted circuits with known answers."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.scrubbing import (
    build_plan,
    hypothesis_edges,
    scrub,
)
from circuitspec.engine.interventions.scrubbing import measure as measure_causal_scrubbing
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.prompts import PromptSet
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.nodes import parse_node
from circuitspec.spec.schema import CausalScrubbingClaim
from tests.helpers.tiny import make_tiny_model
from tests.references.scrubbing import reference_scrub

torch.set_num_threads(1)


def _chains(*texts: str) -> list[list]:
    return [[parse_node(p.strip()) for p in text.split("->")] for text in texts]


@dataclass
class _Graph:
    """The two CircuitGraph methods the entry point uses."""

    claim_chains: dict[str, list[list]]
    claim_targets: dict[str, list] = field(default_factory=dict)

    def chains(self, claim_id: str) -> list[list]:
        return self.claim_chains.get(claim_id, [])

    def targets(self, claim_id: str) -> list:
        return self.claim_targets.get(claim_id, [])


def _prompt_set(tokens: torch.Tensor, rows: list[dict[str, str]], desired, undesired, roles) -> PromptSet:
    n, length = tokens.shape
    return PromptSet(
        tokens=tokens,
        corrupt_tokens=tokens.clone(),
        lengths=torch.full((n,), length, dtype=torch.long),
        role_positions={k: torch.full((n,), v, dtype=torch.long) for k, v in roles.items()},
        desired=torch.as_tensor(desired),
        undesired=torch.as_tensor(undesired),
        corrupt_desired=torch.as_tensor(desired),
        corrupt_undesired=torch.as_tensor(undesired),
        rows=rows,
        template_ids=["t"] * n,
    )


# ----------------------------------------------------------------------------------- engine == reference


@pytest.mark.parametrize("norm", ["LN", "LNPre"])
def test_batched_scrub_matches_explicit_reference(norm):
    model = make_tiny_model(n_layers=3, n_heads=2, d_model=16, normalization_type=norm, d_vocab=30, seed=11)
    gen = torch.Generator().manual_seed(11)
    n, length = 8, 6
    tokens = torch.randint(3, 30, (n, length), generator=gen)
    tokens[:, 0] = 1
    rows = [{"f": str(i % 2), "g": str(i % 3)} for i in range(n)]
    prompts = _prompt_set(tokens, rows, [5] * n, [6] * n, {"a": 2, "b": 3})
    chains = _chains(
        "embed -> L0H0 -> L1H1.v -> logits",
        "L0H1@a -> L2H0.q -> logits",
        "MLP0 -> L2H1.k@b -> logits",
        "L0H0 -> MLP1 -> logits",
        "pos_embed -> L1H1.q",
        "L1H1 -> L2H0.k",
    )
    edges = hypothesis_edges(chains)
    plan = build_plan(prompts, edges, {"L0H0": ["f"], "MLP0": [], "default": ["g"]}, samples=2, seed=3)
    assert len(plan.nodes) > len(edges)  # treeified: L0H0 and L1H1 are evaluated along several paths
    ctx = RunContext(model=model, prompts=prompts, metric=logit_diff)
    batched, counts = scrub(ctx, plan)
    expected = reference_scrub(model, prompts, plan)
    torch.testing.assert_close(batched, expected, atol=1e-4, rtol=1e-4)
    assert ctx.counter.forward_passes == n  # one counted pass (the clean cache) for all samples
    assert counts["component_calls"] == sum(1 for t in plan.nodes[1:] if t.children)
    clean_last = model(tokens)[:, -1]
    assert (batched - clean_last.repeat(2, 1)).abs().max() > 1e-2  # the scrub really changed something
    assert not model.cfg.use_split_qkv_input and not model.cfg.use_hook_mlp_in


# ----------------------------------------------------------------------------------- planted circuit

KEYS, NOISES, CANDIDATES = (4, 5, 6), (10, 11, 12), list(range(13, 20))
TRUE_PATHS = (
    "embed -> L0H0 -> L1H1 -> logits",
    "pos_embed -> L0H0",
    "embed -> L1H1",
    "pos_embed -> L1H1",
    "L0H0 -> logits",
    "embed -> logits",
    "pos_embed -> logits",
)


def _planted():
    """Only L0H0 and L1H1 write to the residual stream; the noise token is invisible (tied embeddings).

    Prompts ``[BOS, key, noise, 7, 8]`` (key embeddings scaled up); the answers are the two of seven
    candidate tokens whose end logits are most and least specific to the prompt's key (logit minus
    its mean over all prompts), so the clean metric depends on the key alone and beats other keys'.
    """
    model = make_tiny_model(n_layers=2, n_heads=2, d_model=16, attn_only=True, d_vocab=20, seed=22)
    with torch.no_grad():
        model.blocks[0].attn.W_O[1].zero_()
        model.blocks[1].attn.W_O[0].zero_()
        model.embed.W_E[list(NOISES)] = model.embed.W_E[NOISES[0]].clone()
        model.embed.W_E[list(KEYS)] *= 3.0
    combos = list(itertools.product(KEYS, NOISES))
    tokens = torch.tensor([[1, key, noise, 7, 8] for key, noise in combos])
    end_logits = model(tokens)[:, -1, CANDIDATES]
    specific = end_logits - end_logits.mean(0)
    desired = torch.tensor(CANDIDATES)[specific.argmax(-1)]
    undesired = torch.tensor(CANDIDATES)[specific.argmin(-1)]
    rows = [{"key": str(k), "noise": str(z)} for k, z in combos]
    prompts = _prompt_set(tokens, rows, desired, undesired, {"k": 1, "z": 2})
    return model, prompts


def _recovered(m) -> float:
    a = m.arrays
    return float((a["intervened"].mean() - a["corrupt"].mean()) / (a["clean"].mean() - a["corrupt"].mean()))


def _measure(model, prompts, paths, equivalence, samples=4):
    claim = CausalScrubbingClaim(
        id="scrub",
        kind="causal_scrubbing",
        expect="recovered >= 0.8",
        equivalence=equivalence,
        samples=samples,
    )
    ctx = RunContext(model=model, prompts=prompts, metric=logit_diff)
    return measure_causal_scrubbing(ctx, claim, _Graph({"scrub": _chains(*paths)}), 0)


def test_planted_circuit_true_hypothesis_recovers_everything():
    model, prompts = _planted()
    m = _measure(model, prompts, TRUE_PATHS, {"default": ["key"]})
    np.testing.assert_allclose(m.arrays["intervened"], m.arrays["clean"], atol=1e-4)
    assert m.arrays["clean"].mean() - m.arrays["corrupt"].mean() > 0.5  # a real gap to recover
    assert _recovered(m) == pytest.approx(1.0, abs=1e-4)
    assert m.cost.forward_passes == len(prompts)
    assert m.extra["prompts_without_partner"] == 0


def test_planted_circuit_empty_hypothesis_recovers_nothing():
    model, prompts = _planted()
    ctx = RunContext(model=model, prompts=prompts, metric=logit_diff)
    plan = build_plan(prompts, [], {}, samples=3, seed=0)
    logits, _ = scrub(ctx, plan)
    expected = model(prompts.tokens[torch.as_tensor(plan.randoms)])[:, -1]
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)  # the whole run on the random prompt


WITHOUT_L1H1 = ("embed -> L0H0 -> logits", "pos_embed -> L0H0", "embed -> logits", "pos_embed -> logits")
WITHOUT_L0H0_TO_L1H1 = (
    "embed -> L0H0 -> logits",
    "pos_embed -> L0H0",
    "embed -> L1H1 -> logits",
    "pos_embed -> L1H1",
    "embed -> logits",
    "pos_embed -> logits",
)


@pytest.mark.parametrize(
    ("label", "paths", "equivalence"),
    [
        ("node L1H1 dropped", WITHOUT_L1H1, {"default": ["key"]}),
        ("edge L0H0 -> L1H1 dropped", WITHOUT_L0H0_TO_L1H1, {"default": ["key"]}),
        ("key resampled (wrong equivalence)", TRUE_PATHS, {"default": ["noise"]}),
    ],
)
def test_planted_circuit_wrong_hypotheses_recover_markedly_less(label, paths, equivalence):
    model, prompts = _planted()
    recovered = _recovered(_measure(model, prompts, paths, equivalence))
    print(f"{label}: recovered {recovered:.3f}")
    assert recovered < 0.8


def test_noise_is_irrelevant_so_resampling_it_recovers_everything():
    model, prompts = _planted()
    m = _measure(
        model, prompts, TRUE_PATHS, {"default": ["key"], "L0H0": ["key"], "embed": ["key"]}, samples=2
    )
    assert _recovered(m) == pytest.approx(1.0, abs=1e-4)


def test_resampled_inputs_line_up_token_by_token_and_respect_classes():
    gen = torch.Generator().manual_seed(5)
    tokens = torch.randint(3, 30, (12, 7), generator=gen)
    lengths = torch.tensor([5, 7] * 6)
    tokens[torch.arange(7)[None, :] >= lengths[:, None]] = 0
    rows = [{"f": str(i % 3)} for i in range(12)]
    prompts = _prompt_set(tokens, rows, [5] * 12, [6] * 12, {"a": 1})
    prompts.lengths = lengths
    edges = hypothesis_edges(_chains("embed -> L0H0 -> logits", "L0H1 -> logits"))
    plan = build_plan(prompts, edges, {"L0H0": ["f"]}, samples=3, seed=1)
    assert (lengths[plan.randoms] == lengths[plan.originals]).all()
    assert (plan.randoms != plan.originals).all()
    parent_of = {child: parent for parent in plan.nodes for child in parent.children}
    for index, tree in enumerate(plan.nodes[1:], start=1):
        parent = parent_of[index]
        assert (lengths[tree.inputs] == lengths[parent.inputs]).all()
        if tree.edge.sender.name == "L0H0":
            assert all(rows[a]["f"] == rows[b]["f"] for a, b in zip(tree.inputs, parent.inputs, strict=True))
        if tree.edge.sender.name == "L0H1":  # no default: an unlisted node keeps its prompt's exact row
            assert all(rows[a] == rows[b] for a, b in zip(tree.inputs, parent.inputs, strict=True))


# ----------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("paths", "equivalence", "names"),
    [
        (("L0H0.pattern -> logits",), {}, "L0H0.pattern"),
        (("resid_pre1 -> logits",), {}, "resid_pre1"),
        (("L0H0 -> L1H1",), {}, "L1H1"),
        (("L1H1 -> L0H0.q -> logits",), {}, "L0H0.q"),
        (("L0H0 -> logits",), {"L0H0": ["colour"]}, "colour"),
    ],
)
def test_unsupported_hypotheses_are_one_line_errors(paths, equivalence, names):
    model, prompts = _planted()
    with pytest.raises(CircuitSpecError) as err:
        _measure(model, prompts, paths, equivalence)
    assert "\n" not in str(err.value) and names in str(err.value)


def test_the_run_seed_changes_the_resampled_inputs():
    """Scrubbing resamples with the run's seed (``verify --seed``), not a seed of its own."""
    model, prompts = _planted()
    claim = CausalScrubbingClaim(
        id="scrub",
        kind="causal_scrubbing",
        expect="recovered >= 0.8",
        equivalence={"default": ["key"]},
        samples=2,
    )
    graph = _Graph({"scrub": _chains(*WITHOUT_L1H1)})
    intervened = {}
    for seed in (0, 12345):
        ctx = RunContext(model=model, prompts=prompts, metric=logit_diff)
        m = measure_causal_scrubbing(ctx, claim, graph, seed)
        assert m.seed == seed
        intervened[seed] = m.arrays["intervened"]
    assert np.abs(intervened[0] - intervened[12345]).max() > 1e-4
