"""Learned activation scalars on the planted label-mover (docs/zoo.md), end to end: ``circuitspec learn``
on the exploration rows, the saved file, and ``learned_scaling`` claims on the held-out rows.

The label-mover's answer is carried by exactly two (site, role) locations among the 20 that attn_out /
mlp_out × 2 layers × 5 roles offer: MLP0's output at the label word (the sentiment feature) and
layer 1's attention output at the end token (L1H0 moving it; L1H1 writes nothing). The learned
scalars must be largest there, and the claim's per-prompt numbers must equal a plain TransformerLens
reimplementation (hooks written here, not the package's).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, softmax
from typer.testing import CliRunner

from circuitspec.cli.main import app
from circuitspec.engine.prompts import build_prompt_set
from circuitspec.learned.store import load, save
from circuitspec.pipeline import load_hypothesis_model, run_verification
from circuitspec.spec.loader import load_hypothesis, load_rows
from circuitspec.spec.splits import select_rows

torch.set_num_threads(1)

ZOO = Path(__file__).resolve().parents[1] / "hypotheses" / "zoo"
PLANTED = {"mlp_out0@label", "attn_out1@end"}
runner = CliRunner()

HYPOTHESIS = """\
name: zoo_label_mover_learned
model:
  bundled: zoo.label_mover
data:
  file: data/label_mover.jsonl
  split: {test_fraction: 0.7, seed: 0}  # at least min_n = 20 held-out prompts
  templates:
    - id: review
      text: "{f1} {label} {f2} {f3} so"
      desired: " {ans}"
      undesired: " {anti}"
  corrupt:
    set: {label: "{label_flip}"}
claims:
  - id: flips_held_out
    kind: learned_scaling
    scalars: scalars.safetensors
    split: test
    max_kl: 3.0
    expect: "success_rate > 0.7"
  - id: kl_on_held_out
    kind: learned_scaling
    scalars: scalars.safetensors
    split: test
    score: kl
    expect: "mean < 3"
  - id: zero_scalars_do_not_flip
    kind: learned_scaling
    scalars: zero.safetensors
    split: test
    expect: "success_rate > 0.7"
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hypothesis, its data, and the scalars learned by the command on the exploration rows."""
    folder = tmp_path_factory.mktemp("learned_zoo")
    (folder / "data").mkdir()
    shutil.copy(ZOO / "data" / "label_mover.jsonl", folder / "data" / "label_mover.jsonl")
    before = (
        HYPOTHESIS.split("claims:")[0] + "claims:\n  - {id: does_task, kind: behaviour, expect: mean > 0}\n"
    )
    (folder / "lm.yaml").write_text(before)  # the files the claims name do not exist yet
    args = ["learn", str(folder / "lm.yaml"), "-o", str(folder / "scalars.safetensors"), "--lambda", "1,0.01"]
    result = runner.invoke(app, [*args, "--steps", "80", "--sites", "attn_out,mlp_out"])
    assert result.exit_code == 0, result.output
    stored = load(folder / "scalars.safetensors")
    zero = replace(stored.provenance, notes="zero control")
    save(folder / "zero.safetensors", np.zeros_like(stored.theta), zero)
    (folder / "lm.yaml").write_text(HYPOTHESIS)
    return folder


@pytest.fixture(scope="module")
def model(folder: Path):
    hypothesis = load_hypothesis(folder / "lm.yaml")
    return load_hypothesis_model(hypothesis.spec.model, hypothesis.base_dir)


@pytest.fixture(scope="module")
def verified(folder: Path, model):
    return run_verification(folder / "lm.yaml", progress=False, loaded_model=model, seed=0)


def test_the_largest_scalars_sit_on_the_planted_sites(folder: Path) -> None:
    stored = load(folder / "scalars.safetensors", model="bundled:zoo.label_mover")
    labels = list(stored.provenance.locations)
    assert len(labels) == 20 and set(labels) >= PLANTED
    top = {labels[i] for i in np.argsort(-np.abs(stored.theta))[:2]}
    assert top == PLANTED
    others = [abs(t) for label, t in zip(labels, stored.theta, strict=True) if label not in PLANTED]
    assert max(others) < 0.2 < min(abs(stored.theta[labels.index(p)]) for p in PLANTED)
    assert stored.provenance.split == "explore" and stored.provenance.scores["train"]["flipped"] == 1.0


def test_learned_scalars_flip_held_out_prompts_and_zero_ones_do_not(verified) -> None:
    verdicts = verified.verdicts
    reasons = [(o.claim_id, o.verdict, o.reason) for o in verified.outcomes]
    assert verdicts["flips_held_out"] == "pass", reasons
    assert verdicts["kl_on_held_out"] == "pass"
    assert verdicts["zero_scalars_do_not_flip"] == "fail"
    zero = verified.measurements["zero_scalars_do_not_flip"].arrays
    assert np.allclose(zero["kl"], 0.0, atol=1e-6) and np.allclose(
        zero["delta_plus"], zero["clean"], atol=1e-5
    )


def _reference(model, prompts, labels: list[str], theta: np.ndarray, beta: float) -> tuple:
    """Plain TransformerLens: Δ = logit(desired) − logit(undesired) and KL(run ‖ clean) at the last token,
    scaling each location's activation by (1 + β·α) at its role's token."""
    rows = torch.arange(len(prompts))
    hooks = []
    for label, alpha in zip(labels, theta, strict=True):
        name, role = label.split("@")
        site, layer = name.rstrip("0123456789"), int(name[len(name.rstrip("0123456789")) :])
        pos = prompts.positions(role)

        def scale(act, hook, pos=pos, alpha=float(alpha)):
            act = act.clone()
            act[rows, pos] = act[rows, pos] * (1 + beta * alpha)
            return act

        hooks.append((f"blocks.{layer}.hook_{site}", scale))
    with torch.no_grad():
        clean = model.model(prompts.tokens)[rows, prompts.lengths - 1].double().numpy()
        run = model.model.run_with_hooks(prompts.tokens, fwd_hooks=hooks)[rows, prompts.lengths - 1]
    run = run.double().numpy()
    delta = run[rows, prompts.desired] - run[rows, prompts.undesired]
    kl = (softmax(run, -1) * (log_softmax(run, -1) - log_softmax(clean, -1))).sum(-1)
    return delta, kl


def test_the_claims_numbers_match_plain_hooks(folder: Path, model, verified) -> None:
    hypothesis = load_hypothesis(folder / "lm.yaml")
    data = hypothesis.spec.data
    rows = select_rows(load_rows(data, hypothesis.base_dir), data, "test")
    prompts = build_prompt_set(data, rows, model.tokenizer, ["review"], seed=data.seed, n=data.n)
    stored = load(folder / "scalars.safetensors")
    arrays = verified.measurements["flips_held_out"].arrays
    assert len(arrays["value"]) == len(prompts)
    for beta, delta_key, kl_key in [(1.0, "delta_plus", "kl_plus"), (-1.0, "delta_minus", "kl_minus")]:
        delta, kl = _reference(model, prompts, list(stored.provenance.locations), stored.theta, beta)
        assert arrays[delta_key] == pytest.approx(delta, abs=1e-4)
        assert arrays[kl_key] == pytest.approx(kl, abs=1e-4)
    flip = np.minimum(arrays["delta_plus"], -arrays["delta_minus"])
    assert arrays["flip"] == pytest.approx(flip)


def test_validate_refuses_a_file_of_another_model_in_one_line(folder: Path) -> None:
    stored = load(folder / "scalars.safetensors")
    other = replace(stored.provenance, model="bundled:toy_sentiment")
    save(folder / "other.safetensors", stored.theta, other)
    bad = folder / "bad.yaml"
    bad.write_text(HYPOTHESIS.replace("scalars: zero.safetensors", "scalars: other.safetensors"))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and "learned on model 'bundled:toy_sentiment'" in line and "bad.yaml:" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sites", "attn"], "--sites 'attn'"),
        (["--method", "lora"], "--method 'lora'"),
        (["--lambda", "1"], "--lambda '1'"),
        (["--layers", "0-7"], "--layers '0-7'"),
        (["--other-template", "nope"], "--other-template 'nope'"),
    ],
)
def test_learn_bad_input_is_one_line_and_exit_2(folder: Path, args: list[str], message: str) -> None:
    result = runner.invoke(
        app, ["learn", str(folder / "lm.yaml"), "-o", str(folder / "x.safetensors"), *args]
    )
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]  # progress lines (loading the model) may come first
    assert message in last and "Traceback" not in result.output


def test_a_pass_from_the_first_intervened_block_gives_the_full_passes_logits(folder: Path, model) -> None:
    """Training starts each pass at the lowest intervened layer, from the stream entering it."""
    from circuitspec.engine.context import RunContext
    from circuitspec.engine.learning import runner
    from circuitspec.engine.metrics import logit_diff
    from circuitspec.learned.interventions import ActivScalar
    from circuitspec.learned.locations import Location

    hypothesis = load_hypothesis(folder / "lm.yaml")
    data = hypothesis.spec.data
    prompts = build_prompt_set(data, load_rows(data, hypothesis.base_dir), model.tokenizer, ["review"])
    ctx = RunContext(model.model, prompts, metric=logit_diff)
    scalars = ActivScalar(
        [Location("attn_out", 1, "end"), Location("mlp_out", 1, "label")], torch.tensor([2.0, 0.5])
    )
    beta = torch.cat([torch.ones(len(prompts)), -torch.ones(len(prompts))])
    full, late = runner(ctx, 0)(scalars, beta), runner(ctx, 1)(scalars, beta)
    assert torch.allclose(full, late, atol=1e-5)
    rows = torch.arange(len(prompts))
    delta = full[: len(prompts)][rows, prompts.desired] - full[: len(prompts)][rows, prompts.undesired]
    # docs/zoo.md: the clean logit difference is 4, all of it L1H0's write at the end; MLP1 writes nothing
    assert torch.allclose(delta, torch.full_like(delta, 4.0 * (1 + 2.0)), atol=1e-3)


def test_a_grid_saves_every_point_its_front_and_the_chosen_one(folder: Path) -> None:
    import json

    out = folder / "grid.safetensors"
    lambdas = ["--lambda", "0,0.01", "--lambda", "1,0.01", "--lambda", "1,10"]
    args = ["learn", str(folder / "lm.yaml"), "-o", str(out), *lambdas, "--steps", "80"]
    result = runner.invoke(app, [*args, "--plot", str(folder / "front.png")])
    assert result.exit_code == 0, result.output
    table = json.loads((folder / "grid.pareto.json").read_text())
    assert [g["config"]["lambda_f"] for g in table["grid"]] == [0.0, 1.0, 1.0]
    assert table["grid"][table["chosen"]]["on_front"]
    for i, point in enumerate(table["grid"]):
        stored = load(folder / f"grid.{i}.safetensors")
        assert stored.provenance.config["lambda_m"] == point["config"]["lambda_m"]
        assert int((np.abs(stored.theta) > 0.01).sum()) == point["count"]
    assert load(out).theta.tolist() == load(folder / f"grid.{table['chosen']}.safetensors").theta.tolist()
    heavy = table["grid"][2]  # λ_M = 10: the ℓ1 term outweighs flipping; fewer parameters move
    assert heavy["count"] < table["grid"][1]["count"]
    assert heavy["scores"]["train"]["flipped"] < table["grid"][1]["scores"]["train"]["flipped"]
    assert (folder / "front.png").stat().st_size > 1000


def test_the_claim_model_refuses_what_it_does_not_measure() -> None:
    from pydantic import ValidationError

    from circuitspec.spec.learned_claim import LearnedScalingClaim

    base = {"id": "c", "kind": "learned_scaling", "scalars": "s.safetensors", "expect": "mean < 1"}
    assert LearnedScalingClaim(**base).score == "flip"
    for extra, message in [
        ({"score": "kl", "max_kl": 1.0}, "max_kl applies to score flip"),
        ({"targets": ["L0H0"]}, "takes its locations from the file"),
        ({"expect": "mean increases with alpha"}, "no sweep"),
        ({"beta": 0}, "greater than 0"),
    ]:
        with pytest.raises(ValidationError, match=message):
            LearnedScalingClaim(**{**base, **extra})
