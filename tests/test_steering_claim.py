"""The ``steering`` claim and ``circuitspec directions`` on the bundled toy model (issue 18).

The direction is read by the command on the exploration rows of tests/fixtures/steering/toy_steering.yaml
and checked against plain TransformerLens activations; the claims then run on the held-out rows, and the
steered metric and the random-direction control are checked against plain hooked passes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from circuitspec.cli.main import app
from circuitspec.directions.geometry import MeanDifference
from circuitspec.directions.store import Provenance, load, save_direction
from circuitspec.engine.interventions.steering_claim import control_seeds, prompt_percentiles
from circuitspec.engine.prompts import build_prompt_set
from circuitspec.engine.steering import random_direction
from circuitspec.errors import CircuitSpecError
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.pipeline import load_hypothesis_model, run_verification
from circuitspec.spec.loader import load_hypothesis, load_rows
from circuitspec.spec.splits import select_rows

torch.set_num_threads(1)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "steering"
runner = CliRunner()

ZERO = """\
  - id: zero_direction
    kind: steering
    targets: resid_post0@end
    direction: zero.safetensors
    data: [sub_minimal]
    alphas: [1, 4]
    random_directions: 5
    expect: effect > 0
  - id: beats_random
    kind: steering
    targets: resid_post0@end
    direction: neg_minus_sub.safetensors
    data: [sub_minimal]
    alphas: [1]
    expect: percentile <= 0.05
  - id: layers
    kind: steering
    targets: [resid_pre1@end, resid_post1@end]
    each: true
    direction: neg_minus_sub.safetensors
    data: [sub_minimal]
    alphas: [1]
    random_directions: 4
    expect: effect < 0
"""


def _provenance(**changes) -> Provenance:
    fields = dict(
        model="bundled:toy_sentiment", node="resid_post0", kind="direction", method="mean_difference",
        pooling="token", groups=("negation", "substitution"), n=(24, 24), role="end", layer=0,
    )  # fmt: skip
    return Provenance(**{**fields, **changes})


def _directions(folder: Path, *args: str) -> object:
    return runner.invoke(app, ["directions", str(folder / "toy_steering.yaml"), *args])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture hypothesis in a temporary folder, its direction written there by the command."""
    folder = tmp_path_factory.mktemp("steering")
    for name in ("toy_steering.yaml", "pos_to_neg_pairs.jsonl"):
        shutil.copy(FIXTURES / name, folder / name)
    out = folder / "neg_minus_sub.safetensors"
    result = _directions(
        folder, "--node", "resid_post0@end", "--groups", "negation,substitution", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out}: direction")
    zero = MeanDifference(np.zeros(load(out).width), 0.0, (24, 24))
    save_direction(folder / "zero.safetensors", zero, _provenance(method="zero"))
    return folder


@pytest.fixture(scope="module")
def model(folder: Path):
    hypothesis = load_hypothesis(folder / "toy_steering.yaml")
    return load_hypothesis_model(hypothesis.spec.model, hypothesis.base_dir)


@pytest.fixture(scope="module")
def verified(folder: Path, model):
    path = folder / "all.yaml"
    path.write_text((folder / "toy_steering.yaml").read_text() + ZERO)
    return run_verification(path, progress=False, loaded_model=model)


def _prompts(folder: Path, model, template: str, split: str):
    hypothesis = load_hypothesis(folder / "toy_steering.yaml")
    data = hypothesis.spec.data
    rows = select_rows(load_rows(data, hypothesis.base_dir), data, split)
    return build_prompt_set(data, rows, model.tokenizer, [template], seed=data.seed, n=data.n)


def _ends(model, prompts, add: np.ndarray | None = None) -> torch.Tensor:
    """Plain TransformerLens: the end tokens' resid_post0 (``add`` None), or the logit difference with
    ``add`` added there at each prompt's end token."""
    rows, end = torch.arange(len(prompts)), prompts.positions("end")
    hook = "blocks.0.hook_resid_post"
    with torch.no_grad():
        if add is None:
            _, cache = model.model.run_with_cache(prompts.tokens, names_filter=hook)
            return cache[hook][rows, end]

        def push(act, hook):
            act = act.clone()
            act[rows, end] += torch.as_tensor(add, dtype=act.dtype)
            return act

        logits = model.model.run_with_hooks(prompts.tokens, fwd_hooks=[(hook, push)])
    last = logits[rows, prompts.lengths - 1]
    return last[rows, prompts.desired] - last[rows, prompts.undesired]


def test_the_command_saves_the_mean_difference_of_the_exploration_prompts(folder, model) -> None:
    stored = load(folder / "neg_minus_sub.safetensors", model="bundled:toy_sentiment")
    p = stored.provenance
    assert (p.node, p.role, p.layer, p.pooling, p.kind, p.method) == (
        "resid_post0", "end", 0, "token", "direction", "mean_difference",
    )  # fmt: skip
    assert p.groups == ("negation", "substitution") and p.n == (24, 24) and p.notes == "split: explore"
    neg = _ends(model, _prompts(folder, model, "neg_minimal", "explore")).double().numpy()
    sub = _ends(model, _prompts(folder, model, "sub_minimal", "explore")).double().numpy()
    np.testing.assert_allclose(stored.direction().raw, neg.mean(0) - sub.mean(0), rtol=1e-9, atol=1e-12)


def test_a_zero_direction_changes_nothing_and_does_not_pass(verified) -> None:
    measurement = verified.measurements["zero_direction"]
    assert measurement.error is None, measurement.error
    for point in measurement.sweep:
        assert np.all(point.arrays["value"] == 0.0)
        assert np.all(point.arrays["percentile"] == 0.5)  # every random direction (norm 0) ties
    assert np.all(np.asarray(measurement.random_baseline) == 0.0)
    outcome = next(o for o in verified.outcomes if o.claim_id == "zero_direction")
    assert outcome.estimate == 0.0 and outcome.verdict != "pass"


@pytest.fixture(scope="module")
def alone(folder: Path, model):
    """The fixture's one claim on its own (in ``verified`` it shares Holm's α with three other random
    controls, which 20 random directions cannot reach)."""
    return run_verification(folder / "toy_steering.yaml", progress=False, loaded_model=model, seed=0)


def test_the_direction_beats_random_directions_on_held_out_prompts(alone, verified, folder, model) -> None:
    (steer,) = alone.outcomes
    baseline = steer.details["random_baseline"]
    assert steer.verdict == "pass", steer.reason
    assert steer.reason.endswith("and it beats 20 random directions (p = 0.0476 ≤ 0.05)"), steer.reason
    assert baseline["n"] == 20 and baseline["direction"] == "lower"
    assert steer.percentile == 0.0 and steer.p_value == pytest.approx(1 / 21)
    assert steer.estimate < baseline["mean"] - 3 * baseline["std"]
    outcomes = {o.claim_id: o for o in verified.outcomes}
    assert outcomes["beats_random"].verdict == "pass", outcomes["beats_random"].reason
    assert 0.0 <= outcomes["beats_random"].estimate < 0.05  # the share of random directions it loses to
    assert len(verified.measurements["beats_random"].extra["random_direction_means"]) == 20
    assert steer.details["split"] == "test"
    # the steered metric against a plain hooked pass on the held-out substitution prompts
    measurement = alone.measurements["steer_to_negation"]
    prompts = _prompts(folder, model, "sub_minimal", "test")
    vector = load(folder / "neg_minus_sub.safetensors").direction().raw
    clean = _ends(model, prompts, np.zeros_like(vector)).numpy()
    steered = _ends(model, prompts, vector).numpy()
    np.testing.assert_allclose(measurement.arrays["clean"], clean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(measurement.arrays["value"], steered - clean, rtol=1e-6, atol=1e-8)


def test_the_random_control_is_seeded_and_drawn_as_stated(verified, folder, model) -> None:
    measurement = verified.measurements["steer_to_negation"]
    seeds = control_seeds(0, 20)
    assert measurement.extra["seeds"] == seeds == control_seeds(0, 20) != control_seeds(1, 20)
    vector = load(folder / "neg_minus_sub.safetensors").direction().raw
    prompts = _prompts(folder, model, "sub_minimal", "test")
    clean = _ends(model, prompts, np.zeros_like(vector)).numpy()
    for k in (0, 7):  # each random direction of the same norm, by a plain hooked pass
        random = random_direction(vector.size, float(np.linalg.norm(vector)), seeds[k])
        change = _ends(model, prompts, random).numpy() - clean
        assert measurement.random_baseline[k] == pytest.approx(change.mean(), rel=1e-6, abs=1e-9)


def test_the_random_control_repeats_under_a_seed_and_changes_with_it(alone, folder, model) -> None:
    runs = [alone] + [
        run_verification(folder / "toy_steering.yaml", progress=False, loaded_model=model, seed=s)
        for s in (0, 1)
    ]
    baselines = [np.asarray(r.measurements["steer_to_negation"].random_baseline) for r in runs]
    np.testing.assert_array_equal(baselines[0], baselines[1])
    assert not np.allclose(baselines[0], baselines[2])


def test_the_report_draws_the_random_directions(alone) -> None:
    from circuitspec.reports.plotdata import claim_plots

    (outcome,) = alone.outcomes
    measurement = alone.measurements["steer_to_negation"]
    plots = {plot["type"]: plot for plot in claim_plots(outcome, measurement, expect=outcome.expectation)}
    histogram = plots["baseline_histogram"]
    assert histogram["ylabel"] == "random directions" and sum(histogram["counts"]) == 20
    assert histogram["observed"] == outcome.estimate and histogram["percentile"] == outcome.percentile
    assert plots["sweep"]["x_axis"] == "α (scale of the direction added)"


def test_a_percentile_claim_draws_the_random_directions_on_the_metric_axis(verified) -> None:
    from circuitspec.reports.plotdata import claim_plots

    outcome = next(o for o in verified.outcomes if o.claim_id == "beats_random")
    measurement = verified.measurements["beats_random"]
    plots = claim_plots(outcome, measurement, expect=outcome.expectation)
    (drawn,) = [p for p in plots if p.get("ylabel") == "random directions"]
    assert drawn["type"] == "distribution" and sum(drawn["counts"]) == 20 and "guide" not in drawn
    assert drawn["estimate"] == pytest.approx(measurement.arrays["value"].mean())
    assert drawn["x_axis"].startswith("logit difference")


def test_each_target_of_a_layer_sweep_is_its_own_claim(verified) -> None:
    layers = [m for claim_id, m in verified.measurements.items() if claim_id.startswith("layers[")]
    assert [m.extra["node"] for m in layers] == ["resid_pre1@end", "resid_post1@end"]
    assert all(m.error is None and len(m.random_baseline) == 4 for m in layers)


def test_prompt_percentiles_rank_against_each_random_direction() -> None:
    value = np.array([1.0, 0.0, -1.0])
    random = np.array([[0.0, 0.0, 0.0], [2.0, -1.0, -2.0]])
    np.testing.assert_array_equal(prompt_percentiles(value, random)["percentile"], [0.5, 0.75, 0.5])
    assert prompt_percentiles(value, np.zeros((0, 3))) == {}


# ------------------------------------------------------------------ validate: the direction file


def _claim(folder: Path, text: str) -> Path:
    path = folder / "bad.yaml"
    base = (folder / "toy_steering.yaml").read_text()
    path.write_text(base[: base.index("claims:")] + "claims:\n" + text)
    return path


BAD_CLAIM = """\
  - id: c
    kind: steering
    targets: {target}
    direction: {file}
    alphas: [1]
    expect: {expect}
"""


@pytest.mark.parametrize(
    ("target", "file", "expect", "message"),
    [
        ("resid_post0@end", "missing.safetensors", "effect > 0", "no such direction file"),
        ("resid_post0@end", "narrow.safetensors", "effect > 0", "is 3 wide but 'resid_post0@end'"),
        ("resid_post0@end", "other.safetensors", "effect > 0", "read from model 'bundled:other'"),
        ("resid_post0@end", "pairs.jsonl", "effect > 0", "not a safetensors file"),
        ("[resid_post0@end, MLP0@end]", "zero.safetensors", "effect > 0", "add 'each: true'"),
        ("L0H0.pattern", "zero.safetensors", "effect > 0", "cannot act on 'L0H0.pattern'"),
    ],
)
def test_validate_refuses_a_direction_that_does_not_fit(folder, target, file, expect, message) -> None:
    save_direction(
        folder / "narrow.safetensors", MeanDifference(np.ones(3) / 3**0.5, 1.0, (1, 1)), _provenance()
    )
    zero = load(folder / "zero.safetensors")
    other = MeanDifference(zero.vectors[0], 0.0, (1, 1))
    save_direction(folder / "other.safetensors", other, _provenance(model="bundled:other"))
    shutil.copy(folder / "pos_to_neg_pairs.jsonl", folder / "pairs.jsonl")
    path = _claim(folder, BAD_CLAIM.format(target=target, file=file, expect=expect))
    with pytest.raises(CircuitSpecError) as error:
        compile_hypothesis(load_hypothesis(path))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert error.value.line is not None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    score: keywords\n", "score 'keywords' needs 'lexicon'"),
        ("    max_new_tokens: 5\n", "max_new_tokens: only with a text `score`"),
        ("    random_baseline: {n: 5}\n", "not `random_baseline`"),
        ("    random_directions: 0\n", "set random_directions"),
    ],
)
def test_the_claim_model_refuses_what_steering_does_not_do(folder, extra, message) -> None:
    text = BAD_CLAIM.format(target="resid_post0@end", file="zero.safetensors", expect="percentile >= 0.95")
    with pytest.raises(CircuitSpecError, match=message.replace("(", r"\(")):
        load_hypothesis(_claim(folder, text + extra))


def test_percentile_is_a_steering_statistic_only(folder) -> None:
    text = "  - {id: a, kind: ablation, targets: L0H0@end, expect: percentile >= 0.95}\n"
    with pytest.raises(CircuitSpecError, match="steering statistic"):
        load_hypothesis(_claim(folder, text))


# ------------------------------------------------------------------ the command's bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--groups", "negation"], "give two different templates or tags"),
        (["--groups", "negation,negation"], "give two different templates or tags"),
        (["--groups", "negation,nope"], "unknown template or tag 'nope' (valid: sub_minimal"),
        (["--pooling", "mean"], "--pooling 'mean' (valid: token, final)"),
        (["--pca", "0"], "--pca 0"),
        (["--split", "train"], "--split 'train' (valid: explore, test, all)"),
        (["--node", "resid_post0"], "names no role"),
        (["--node", "L0H0.pattern@end"], "is not an activation vector"),
        (["--node", "blah"], "is not a node name"),
        (["-o", "/nonexistent/folder/x.safetensors"], "does not exist"),
    ],
)
def test_directions_bad_input_is_one_line_and_exit_2(folder, args, message) -> None:
    defaults = {"--node": "resid_post0@end", "--groups": "negation,substitution", "-o": str(folder / "x.st")}
    given = dict(zip(args[::2], args[1::2], strict=True))
    options = [part for key, value in {**defaults, **given}.items() for part in (key, value)]
    result = _directions(folder, *options)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_directions_pca_saves_a_subspace_of_both_groups(folder) -> None:
    out = folder / "pca.safetensors"
    result = _directions(
        folder, "--node", "resid_post0@end", "--groups", "negation,substitution", "--pca", "2",
        "--pooling", "final", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = load(out)
    assert stored.provenance.kind == "subspace" and stored.provenance.method == "pca"
    assert stored.provenance.pooling == "final" and stored.vectors.shape[0] == 2
    np.testing.assert_allclose(stored.vectors @ stored.vectors.T, np.eye(2), atol=1e-9)
