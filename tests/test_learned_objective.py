"""The activation-scaling paper's objective, interventions, Pareto front, training and file format
(``circuitspec.learned``), checked against hand computation on fixed tensors and against scipy's KL.

No model here: the training test uses a fixed linear map as the "model", so it runs in milliseconds.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, softmax
from scipy.stats import entropy

from circuitspec.errors import CircuitSpecError
from circuitspec.learned.interventions import ActivScalar, DynScalar, SteerVec, build
from circuitspec.learned.locations import Location, grid, parse_layers, parse_location
from circuitspec.learned.objective import (
    effectiveness,
    faithfulness,
    kl_from_clean,
    minimality,
    non_negligible,
    objective,
)
from circuitspec.learned.pareto import pareto_front
from circuitspec.learned.store import LearnedProvenance, load, save
from circuitspec.learned.train import Task, TrainConfig, lr_factor, train

torch.set_num_threads(1)

# Two prompts, a vocabulary of four; correct / wrong answers are tokens 0 / 1 and 2 / 3.
CLEAN = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.5, 0.5, 1.5, -0.5]], dtype=torch.float64)
PLUS = torch.tensor([[3.0, 0.5, 0.0, -1.0], [0.0, 0.5, 1.0, 0.0]], dtype=torch.float64)
MINUS = torch.tensor([[1.0, 1.5, 0.0, -1.0], [0.5, 0.5, 0.2, 2.0]], dtype=torch.float64)
CORRECT, WRONG = torch.tensor([0, 2]), torch.tensor([1, 3])


def test_effectiveness_is_the_papers_two_sided_hinge_by_hand() -> None:
    # Δ⁺ = f⁺_c − f⁺_w: prompt 0: 3 − 0.5 = 2.5; prompt 1: 1.0 − 0.0 = 1.0.
    # Δ⁻: prompt 0: 1 − 1.5 = −0.5; prompt 1: 0.2 − 2.0 = −1.8.
    plus, minus = torch.tensor([2.5, 1.0]), torch.tensor([-0.5, -1.8])
    # m = 1: prompt 0: max(0, 1 − 2.5) + max(0, −0.5 + 1) = 0.5; prompt 1: 0 + max(0, −0.8) = 0.
    assert float(effectiveness(plus, minus, 1.0)) == pytest.approx(-0.25)
    # m = 2: prompt 0: 0 + 1.5; prompt 1: 1.0 + 0.2 → −(1.5 + 1.2) / 2.
    assert float(effectiveness(plus, minus, 2.0)) == pytest.approx(-1.35)
    assert float(effectiveness(plus, minus, 0.0)) == 0.0  # E_0 = 0: every prompt flips both ways


def test_faithfulness_is_kl_of_the_run_from_the_clean_run_as_scipy_computes_it() -> None:
    clean_logprobs = torch.log_softmax(CLEAN, -1)
    p, q = softmax(PLUS.numpy(), -1), softmax(CLEAN.numpy(), -1)
    # scipy.stats.entropy(pk, qk) = KL(pk ‖ qk): the intervened run's distribution first (the paper's Eq. 7)
    kl_plus = np.array([entropy(p[i], q[i]) for i in range(2)])
    kl_minus = np.array([entropy(softmax(MINUS.numpy(), -1)[i], q[i]) for i in range(2)])
    assert kl_from_clean(PLUS, clean_logprobs).numpy() == pytest.approx(kl_plus, rel=1e-9)
    assert float(faithfulness(PLUS, MINUS, clean_logprobs)) == pytest.approx(-(kl_plus + kl_minus).mean())
    reverse = np.array([entropy(q[i], p[i]) for i in range(2)])  # the other direction differs here
    assert not np.allclose(kl_plus, reverse)
    assert float(faithfulness(CLEAN, CLEAN, clean_logprobs)) == pytest.approx(0.0, abs=1e-12)


def test_minimality_psi_and_the_count_by_hand() -> None:
    theta = torch.tensor([0.5, -0.25, 0.005, -0.02], dtype=torch.float64)
    assert float(minimality(theta)) == pytest.approx(-0.775)
    assert non_negligible(theta) == 3  # |θ| > 0.01: 0.5, 0.25, 0.02
    clean_logprobs = torch.log_softmax(CLEAN, -1)
    terms = objective(
        PLUS, MINUS, clean_logprobs, (CORRECT, WRONG), theta, margin=1.0, lambda_f=10.0, lambda_m=0.1
    )
    q = log_softmax(CLEAN.numpy(), -1)
    kl = sum(
        float(np.sum(softmax(run[i]) * (log_softmax(run[i]) - q[i]))) for run in (PLUS.numpy(), MINUS.numpy())
        for i in range(2)
    )  # fmt: skip
    assert float(terms.effectiveness) == pytest.approx(-0.25)
    assert float(terms.faithfulness) == pytest.approx(-kl / 2)
    assert float(terms.psi) == pytest.approx(-0.25 + 10.0 * (-kl / 2) + 0.1 * -0.775)


def test_each_intervention_edits_as_the_paper_defines_it() -> None:
    h = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    beta = torch.tensor([1.0, -1.0])
    loc = [Location("mlp_out", 0, "end")]
    scalar = ActivScalar(loc, torch.tensor([0.5]))
    assert torch.equal(scalar.edit(0, h, beta), torch.tensor([[4.5, 6.0], [0.5, 0.0]]))  # h(1 ± 0.5)
    vec = SteerVec(loc, torch.tensor([[1.0, -2.0]]))
    assert torch.equal(vec.edit(0, h, beta), torch.tensor([[4.0, 2.0], [0.0, 2.0]]))  # h ± v
    dyn = DynScalar([Location("mlp_out", 0)], torch.tensor([[1.0, 1.0]]))
    # α = gᵀh/‖h‖: row 0: 7/5 = 1.4 → h·2.4; row 1: 1 → h·(1 − 1) = 0
    assert torch.allclose(dyn.edit(0, h, beta), torch.tensor([[7.2, 9.6], [0.0, 0.0]]))


def test_hooks_edit_each_roles_position_and_nothing_else() -> None:
    locs = [Location("attn_out", 1, "a"), Location("attn_out", 1, "end"), Location("mlp_out", 0, "a")]
    scalar = ActivScalar(locs, torch.tensor([1.0, -0.5, 2.0]))
    hooks = dict(scalar.hooks({"a": torch.tensor([0, 1]), "end": torch.tensor([2, 2])}, torch.ones(2)))
    assert set(hooks) == {"blocks.1.hook_attn_out", "blocks.0.hook_mlp_out"}
    act = torch.ones(2, 3, 2)
    out = hooks["blocks.1.hook_attn_out"](act, None)
    expected = torch.ones(2, 3, 2)
    expected[0, 0], expected[1, 1], expected[:, 2] = 2.0, 2.0, 0.5
    assert torch.equal(out, expected)
    assert torch.equal(act, torch.ones(2, 3, 2))  # the model's own activation is not edited in place


def test_locations_parse_and_refuse_in_one_line() -> None:
    assert parse_location("mlp_out3@end") == Location("mlp_out", 3, "end")
    assert parse_location("resid_post0").role is None
    assert parse_layers("0-2,5", 6) == [0, 1, 2, 5] and parse_layers("all", 2) == [0, 1]
    assert [loc.label for loc in grid(["attn_out"], [0, 1], ["x"])] == ["attn_out0@x", "attn_out1@x"]
    for bad, call in [("L3H1", lambda: parse_location("L3H1")), ("0-9", lambda: parse_layers("0-9", 4))]:
        with pytest.raises(CircuitSpecError) as info:
            call()
        assert "\n" not in str(info.value) and bad in str(info.value)


def test_the_pareto_front_keeps_exactly_the_undominated_points() -> None:
    points = [(-1.0, -0.1), (-0.5, -0.5), (-0.2, -2.0), (-1.0, -0.6), (-0.5, -0.5), (-3.0, -0.1)]
    assert pareto_front(points) == [True, True, True, False, True, False]


def _linear_task(seed: int = 0) -> tuple:
    """A fixed linear 'model': logits = Σ_k (site activation k, scaled) @ W_k at one position."""
    gen = torch.Generator().manual_seed(seed)
    acts, weights = torch.randn(4, 6, 3, generator=gen), torch.randn(3, 3, 5, generator=gen)

    def run(intervention, beta):
        rows = torch.arange(8)
        h = acts.repeat(2, 1, 1)  # [8 rows, 6 positions, 3 sites] ; site k edited at position 5
        logits = torch.zeros(8, 5)
        for k in range(3):
            edited = intervention.edit(k, h[rows, 5, k][:, None], beta)  # a 1-wide activation
            logits = logits + edited * weights[k, 0]
        return logits

    clean = sum(acts[:, 5, k][:, None] * weights[k, 0] for k in range(3))
    task = Task(
        torch.log_softmax(clean, -1), torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    )
    return run, task


def test_training_is_seeded_deterministic_and_raises_psi() -> None:
    run, task = _linear_task()
    locs = [Location("mlp_out", k, "end") for k in range(3)]
    config = TrainConfig(steps=60, lr=0.05, lambda_f=0.1, lambda_m=0.01, seed=3)
    results = [
        train(build("activ_scalar", locs, 1, init_std=config.init_std, seed=3), run, task, config)
        for _ in "ab"
    ]
    assert torch.equal(results[0].intervention.theta, results[1].intervention.theta)
    history = results[0].history
    assert history[-1].psi > history[0].psi and len(history) == 60
    other = train(build("activ_scalar", locs, 1, init_std=config.init_std, seed=4), run, task, config)
    assert not torch.equal(other.intervention.theta, results[0].intervention.theta)


def test_the_learning_rate_falls_linearly_to_lr_end_and_lets_unused_scalars_settle() -> None:
    config = TrainConfig(steps=5, lr=0.05, lr_end=0.001)
    rates = [0.05 * lr_factor(config, k) for k in range(5)]
    assert rates == pytest.approx([0.05, 0.03775, 0.0255, 0.01325, 0.001])
    assert lr_factor(TrainConfig(steps=5, lr=0.05), 4) == 1.0  # no lr_end: constant, as before
    run, task = _linear_task()  # reads locations 0-2 only: location 3 is moved by the l1 term alone
    locs = [Location("mlp_out", k, "end") for k in range(4)]

    def trained(lr_end: float | None) -> torch.Tensor:
        cfg = TrainConfig(steps=80, lr=0.05, lambda_f=0.1, lambda_m=0.5, seed=3, lr_end=lr_end)
        scalars = build("activ_scalar", locs, 1, init_std=0.05, seed=3)
        return train(scalars, run, task, cfg).intervention.theta.detach()

    constant, decayed = trained(None), trained(0.0005)
    assert abs(float(decayed[3])) < 1e-3 and abs(float(decayed[3])) < abs(float(constant[3]))
    assert abs(float(decayed[2])) > 0.5  # the location the task needs is still learned


def test_the_file_round_trips_and_refuses_an_edited_one(tmp_path: Path) -> None:
    prov = LearnedProvenance(
        model="bundled:zoo.label_mover", method="activ_scalar", locations=("mlp_out0@label", "attn_out1@end"),
        width=26, config=TrainConfig().as_dict(), templates=("review",), n=32,
    )  # fmt: skip
    path = tmp_path / "s.safetensors"
    saved = save(path, np.array([1.5, -0.25]), prov)
    loaded = load(path, model="bundled:zoo.label_mover")
    assert loaded.sha256 == saved.sha256 and loaded.provenance == prov
    assert loaded.theta.tolist() == [1.5, -0.25] and loaded.locations[1] == Location("attn_out", 1, "end")
    with pytest.raises(CircuitSpecError, match=r"learned on model 'bundled:zoo\.label_mover', not 'x'"):
        load(path, model="x")
    raw = bytearray(path.read_bytes())
    raw[-8:] = np.array([math.pi]).tobytes()  # the last parameter changed, header untouched
    path.write_bytes(bytes(raw))
    with pytest.raises(CircuitSpecError, match="does not match its recorded sha256"):
        load(path)
    (tmp_path / "junk.safetensors").write_text("not a file")
    with pytest.raises(CircuitSpecError, match="not a safetensors file"):
        load(tmp_path / "junk.safetensors")
