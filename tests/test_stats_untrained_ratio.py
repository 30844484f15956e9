"""Issue 15 on the real model: at the untrained toy checkpoint (step 0) a ratio claim is inconclusive.

`scrub_label_and_word` (`recovered >= 0.7`) passed there with estimate 2.39 and bootstrap CI
[0.861, 614]: clean − corrupted averaged 0.0024 (std 1.35), so the ratio was noise. Fieller's
interval knows its denominator and declines to decide.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from circuitspec.stats import evaluate_claim
from circuitspec.stats.intervals import NO_TASK

TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"
CLAIM = "scrub_label_and_word"


def test_untrained_checkpoint_scrubbing_ratio_is_inconclusive() -> None:
    from circuitspec.engine.planner import measure_claim
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.pipeline import load_hypothesis_model
    from circuitspec.spec.loader import load_hypothesis, load_rows

    hypothesis = load_hypothesis(TOY)
    loaded = load_hypothesis_model(hypothesis.spec.model, hypothesis.base_dir, checkpoint=0)
    graph = compile_hypothesis(hypothesis, shape=loaded.shape)
    rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)
    claim, data = graph.claim(CLAIM), hypothesis.spec.data
    prompts = build_prompt_set(data, rows, loaded.tokenizer, graph.templates(CLAIM), seed=data.seed, n=data.n)
    measurement = measure_claim(graph, claim, loaded, prompts, seed=hypothesis.spec.seed)
    assert measurement.error is None, measurement.error
    difference = measurement.arrays["clean"] - measurement.arrays["corrupt"]
    assert abs(difference.mean()) < 2 * difference.std(ddof=1) / np.sqrt(difference.size)  # noise
    outcome = evaluate_claim(measurement, claim.expectation, confidence=claim.confidence, seed=0)
    assert outcome.verdict == "inconclusive" and outcome.ci is None
    assert outcome.reason.startswith(NO_TASK), outcome.reason
