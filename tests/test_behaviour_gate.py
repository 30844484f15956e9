"""Issue 15 on the bundled toy model: the behaviour claim and its gate, row splits, unknown words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from circuitspec.cli.main import app
from circuitspec.errors import CircuitSpecError
from circuitspec.pipeline import run_verification
from circuitspec.spec.loader import load_hypothesis, load_rows
from circuitspec.spec.splits import select_rows

PAIRS = Path(__file__).resolve().parents[1] / "hypotheses" / "data" / "toy_sentiment_pairs.jsonl"

HYPOTHESIS = """\
name: gate_toy
model: {{bundled: toy_sentiment}}
{top}data:
  file: {file}
  n: {n}
  seed: 0
{split}  corrupt:
    set: {{s_con: "{{s_ori}}"}}
  templates:
    - id: sub_minimal
      text: "{{s_ori}}: {{w_ori}}. {{s_con}}:"
      desired: " {{w_con}}"
      undesired: " {{w_ori}}"
      tags: [substitution]
    - id: sub_contextual
      text: "{{s_ori}}: This {{noun}} is {{w_ori}}. {{s_con}}: This {{noun_con}} is"
      desired: " {{w_con}}"
      undesired: " {{w_ori}}"
      tags: [substitution]
claims:
  - id: does_substitution
    kind: behaviour
    data: [substitution]
    expect: success_rate >= 0.9
  - id: label_reader_restores
    kind: activation_patching
    require: [does_substitution]
    direction: denoising
    targets: L0H0
    expect: recovered >= 0.7
"""


def _write(tmp_path: Path, *, n: int = 12, split: bool = False, file: Path | None = None) -> Path:
    """The hypothesis above in ``tmp_path``, its rows beside it (the toy pairs unless ``file``)."""
    if file is None:
        file = tmp_path / "pairs.jsonl"
        file.write_text(PAIRS.read_text(encoding="utf-8"), encoding="utf-8")
    text = HYPOTHESIS.format(
        file=file.name,
        n=n,
        top="thresholds_set_on: explore\n" if split else "",
        split="  split: {test_fraction: 0.5, seed: 0}\n" if split else "",
    )
    path = tmp_path / "gate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _reference_logit_diff(path: Path, checkpoint: str, rows: list[dict]) -> np.ndarray:
    """logit(desired) − logit(undesired) at the last token, by a plain forward pass per prompt."""
    from circuitspec.zoo import toy_sentiment

    model, tokenizer = toy_sentiment.load(checkpoint)
    spec = load_hypothesis(path).spec
    values = []
    for template in spec.data.templates:
        for row in rows:
            text = template.text.format(**row)
            ids = [tokenizer.bos_id, *tokenizer.encode(text)[0]]
            desired = tokenizer.single_token(template.desired.format(**row))
            undesired = tokenizer.single_token(template.undesired.format(**row))
            with torch.no_grad():
                logits = model(torch.tensor([ids]))[0, -1]
            values.append(float(logits[desired] - logits[undesired]))
    return np.array(values)


def _sampled(rows: list, n: int, seed: int = 0) -> list:
    """The rows the engine samples (``data.n`` of them with ``data.seed``, in file order)."""
    picked = np.random.default_rng(seed).choice(len(rows), size=n, replace=False)
    return [rows[i] for i in sorted(picked)]


def test_behaviour_is_the_clean_logit_difference(tmp_path):
    path = _write(tmp_path, n=40)  # 80 prompts: 80 of 80 right has a 95% lower bound above 0.9
    result = run_verification(path, progress=False)
    measurement = result.measurements["does_substitution"]
    spec = result.hypothesis.spec
    rows = _sampled(load_rows(spec.data, result.hypothesis.base_dir), 40)
    reference = _reference_logit_diff(path, "final", rows)
    tolerance = 1e-4 * max(1.0, float(np.abs(reference).max()))  # float32 logits of a 2-layer model
    np.testing.assert_allclose(measurement.arrays["value"], reference, atol=tolerance, rtol=0)
    gate = result.outcomes[0]
    assert gate.verdict == "pass" and gate.statistic == "success_rate" and gate.estimate == 1.0
    assert set(measurement.extra["per_template"]) == {"sub_minimal", "sub_contextual"}
    assert result.outcomes[1].verdict == "pass"  # the gate passed: the dependent keeps its verdict


def test_untrained_model_fails_the_gate_and_dependents_are_inconclusive(tmp_path):
    path = _write(tmp_path, n=24)
    result = run_verification(path, checkpoint=0, progress=False)
    gate, dependent = result.outcomes
    assert gate.verdict in ("fail", "inconclusive")  # accuracy ≈ 0.5 at step 0 (docs/toy_sentiment.md)
    assert gate.estimate is not None and gate.estimate < 0.9
    assert dependent.verdict == "inconclusive"
    assert dependent.reason == (
        "requires 'does_substitution', which did not pass: the model does not do the task here"
    )
    assert "verdict" in dependent.details["without_requirement"]  # its own verdict and numbers stay


def test_verdicts_use_the_held_out_split_and_say_so(tmp_path):
    path = _write(tmp_path, n=500, split=True)  # n above the rows: every row of the split
    loaded = load_hypothesis(path)
    rows = load_rows(loaded.spec.data, loaded.base_dir)
    explore, test = (select_rows(rows, loaded.spec.data, s) for s in ("explore", "test"))
    assert len(explore) + len(test) == len(rows) and explore and test
    for run_split, expected in ((None, test), ("explore", explore)):
        result = run_verification(path, progress=False, split=run_split)
        gate = result.outcomes[0]
        used = run_split or "test"
        assert gate.details["split"] == used and result.split["used"] == used
        assert result.split["thresholds_set_on"] == "explore"
        assert result.split["rows"] == {"all": len(rows), "explore": len(explore), "test": len(test)}
        assert gate.n_prompts == 2 * len(expected)  # two templates × the split's rows
    reference = _reference_logit_diff(path, "final", explore)
    np.testing.assert_allclose(
        result.measurements["does_substitution"].arrays["value"], reference, atol=1e-3, rtol=0
    )


def test_unknown_word_is_bad_input_at_verify_before_any_pass(tmp_path, monkeypatch):
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()[:6]]
    rows[4]["w_ori"] = "zebra"
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = _write(tmp_path, file=data)

    def no_pass(*args, **kwargs):
        raise AssertionError("the model ran before the unknown word was refused")

    monkeypatch.setattr("circuitspec.engine.planner.run_claims", no_pass)
    with pytest.raises(CircuitSpecError) as info:
        run_verification(path, progress=False)
    message = str(info.value)
    assert message.startswith(f"{data}:5:1: word 'zebra' is not in the tokenizer's vocabulary")
    assert "template 'sub_minimal'" in message and "\n" not in message


def test_split_option_needs_split_rows(tmp_path):
    path = _write(tmp_path)
    result = CliRunner().invoke(app, ["verify", str(path), "--split", "test", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "--split test needs 'data.split' in the hypothesis" in result.output


def test_an_empty_split_is_bad_input_before_the_model_loads(tmp_path, monkeypatch):
    path = _write(tmp_path, split=True)
    path.write_text(path.read_text().replace("test_fraction: 0.5", "test_fraction: 0.0001"))

    def no_model(*args, **kwargs):
        raise AssertionError("the model loaded before the empty split was refused")

    monkeypatch.setattr("circuitspec.pipeline.load_hypothesis_model", no_model)
    with pytest.raises(
        CircuitSpecError, match=r"split 'test' has no rows \(data.split: test_fraction 0.0001"
    ):
        run_verification(path, progress=False)
