"""The bundled toy sentiment hypotheses: the true file passes, the planted-wrong file fails.

Each file is verified once per module (the real pipeline on the final checkpoint). Besides the
verdicts, the label-value scaling claim is recomputed with a plain TransformerLens hook loop on the
same prompts (an independent reference for the engine's scaling intervention): zeroing L0H0's value
vector at the second label must reproduce the engine's per-prompt α = 0 effect.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

HYPOTHESES = Path(__file__).resolve().parents[1] / "hypotheses"
TRUE_FILE = HYPOTHESES / "toy_sentiment.yaml"
WRONG_FILE = HYPOTHESES / "toy_sentiment_wrong.yaml"

pytestmark = pytest.mark.slow

# every claim of toy_sentiment_wrong.yaml is planted wrong (see the file's comments)
PLANTED_WRONG = (
    "layer1_head_reads_label",
    "word_carrier_reads_label",
    "word_carrier_restores_label",
    "word_carrier_preserves",
    "label_path_through_key",
    "label_path_through_query",
    "amplifying_label_value_keeps_helping",
    "decoy_scaling_helps",
    "scrub_swapped_roles",
    "layer1_heads_unused_control",
)

# claims this module's author wrote in toy_sentiment.yaml (later additions are checked generically)
MIRRORED_CLAIMS = (
    "no_head_pushes_against_substitution",
    "word_carriers_serve_transformation",
    "label_path_through_value",
    "label_path_through_key_under_negation",
    "label_value_scaling",
    "label_value_scaling_success",
    "scrub_label_and_word",
    "circuit_faithful",
    "unused_head_control",
)


def _verify(path: Path):
    import torch

    from circuitspec.pipeline import run_verification

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    return run_verification(path, progress=False)


@pytest.fixture(scope="module")
def true_run():
    """One verification of toy_sentiment.yaml on its declared (final) checkpoint."""
    return _verify(TRUE_FILE)


@pytest.fixture(scope="module")
def wrong_run():
    """One verification of toy_sentiment_wrong.yaml on the final checkpoint."""
    return _verify(WRONG_FILE)


def _verdicts(run) -> dict[str, str]:
    return {outcome.claim_id: outcome.verdict for outcome in run.outcomes}


def test_every_true_claim_passes(true_run):
    verdicts = _verdicts(true_run)
    assert verdicts and all(v == "pass" for v in verdicts.values()), {
        k: v for k, v in verdicts.items() if v != "pass"
    }
    base_ids = {claim_id.split("[")[0] for claim_id in verdicts}
    assert set(MIRRORED_CLAIMS) <= base_ids


def test_every_planted_wrong_claim_fails(wrong_run):
    verdicts = _verdicts(wrong_run)
    assert set(verdicts) == set(PLANTED_WRONG)
    assert {k: v for k, v in verdicts.items() if v != "fail"} == {}


def _measurement(run, claim_id: str):
    measurement = run.measurements[claim_id]
    assert measurement.error is None, measurement.error
    return measurement


def test_label_value_scaling_matches_hook_loop(true_run):
    """α = 0 on L0H0.v@s_con, recomputed by zeroing ``blocks.0.attn.hook_v`` head 0 by hand."""
    import torch

    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.spec.loader import load_hypothesis, load_rows
    from circuitspec.spec.splits import default_split, select_rows
    from circuitspec.zoo.toy_sentiment import load

    measurement = _measurement(true_run, "label_value_scaling")
    point = next(p for p in measurement.sweep if float(p.x) == 0.0)
    engine_effect = np.asarray(point.arrays["value"], dtype=float)

    hypothesis = load_hypothesis(TRUE_FILE)
    data = hypothesis.spec.data
    substitution = [t.id for t in data.templates if "substitution" in t.tags]
    model, tokenizer = load("final")
    rows = select_rows(load_rows(data, hypothesis.base_dir), data, default_split(hypothesis.spec))  # held out
    prompts = build_prompt_set(data, rows, tokenizer, substitution, seed=data.seed, n=data.n)
    label_at = prompts.positions("s_con")
    rows = torch.arange(len(prompts))

    def zero_label_value(v: torch.Tensor, hook) -> torch.Tensor:
        v = v.clone()
        v[rows, label_at, 0] = 0.0
        return v

    def logit_diff(logits: torch.Tensor) -> np.ndarray:
        last = logits[rows, prompts.lengths - 1]
        return (last[rows, prompts.desired] - last[rows, prompts.undesired]).double().numpy()

    with torch.no_grad():
        clean = logit_diff(model(prompts.tokens))
        zeroed = logit_diff(
            model.run_with_hooks(prompts.tokens, fwd_hooks=[("blocks.0.attn.hook_v", zero_label_value)])
        )
    np.testing.assert_allclose(engine_effect, zeroed - clean, atol=1e-3)
    assert (zeroed - clean).mean() < -3  # removing the label's value undoes most of the substitution
