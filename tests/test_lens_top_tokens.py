"""``logit_lens`` with ``top_tokens: k``: the k likeliest tokens per site and position, against plain hooks.

Reference: ``run_with_cache`` on the same model, the final LayerNorm applied to each cached residual and
the unembedding by hand (``@ W_U + b_U``), per prompt and position.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.logit_lens import measure
from circuitspec.engine.metrics import logit_diff
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.claim_models import LogitLensClaim
from tests.helpers.tiny import make_prompt_set, make_tiny_encoder, make_tiny_model

K = 3


def _claim(**fields) -> LogitLensClaim:
    return LogitLensClaim.model_validate({"id": "lens", "kind": "logit_lens", "expect": "mean > 0", **fields})


def _reference(model, prompts, hook: str, i: int) -> torch.Tensor:
    """``[pos, vocab]`` lens logits of prompt ``i`` at ``hook``, by hand."""
    length = int(prompts.lengths[i])
    _, cache = model.run_with_cache(prompts.tokens[i : i + 1, :length])
    resid = cache[hook][0]
    return model.ln_final(resid[None])[0] @ model.W_U + model.b_U


@pytest.mark.parametrize("at", [None, "resid_mid1"])
def test_top_tokens_match_the_hand_unembedded_residuals(at: str | None):
    model = make_tiny_model(n_layers=2, n_heads=2, d_model=16, d_vocab=50, seed=4)
    prompts = make_prompt_set(50, lengths=(5, 7, 6, 4, 6))
    ctx = RunContext(model, prompts, metric=logit_diff)
    m = measure(ctx, _claim(top_tokens=K, at=at), SimpleNamespace(), seed=0)
    tables = m.extra["lens_top_tokens"]
    assert 1 <= len(tables) <= 3 and len({t["prompt"] for t in tables}) == len(tables)
    expected_sites = [at] if at else ["resid_pre0", "resid_mid0", "resid_pre1", "resid_mid1", "resid_post1"]
    for table in tables:
        i = table["prompt"]
        assert table["sites"] == expected_sites
        length = int(prompts.lengths[i])
        assert table["tokens"] == [f"#{t}" for t in prompts.tokens[i, :length].tolist()]  # no decoder here
        for s, label in enumerate(table["sites"]):
            layer, site = label[-1], label[:-1]  # resid_mid1 -> blocks.1.hook_resid_mid
            hook = f"blocks.{layer}.hook_{site}"
            ref = _reference(model, prompts, hook, i)
            ids = torch.tensor(table["ids"][s])  # [pos, K]
            ours = torch.tensor(table["logits"][s])
            assert ids.shape == (length, K)
            best = ref.topk(K, dim=-1).values
            torch.testing.assert_close(ours, best, rtol=1e-4, atol=1e-4)  # the k largest logits ...
            torch.testing.assert_close(ref.gather(-1, ids), ours, rtol=1e-4, atol=1e-4)  # ... of these ids


def test_without_top_tokens_nothing_is_kept():
    model = make_tiny_model(seed=1)
    ctx = RunContext(model, make_prompt_set(50), metric=logit_diff)
    assert "lens_top_tokens" not in measure(ctx, _claim(), SimpleNamespace(), seed=0).extra


def test_encoders_refuse_top_tokens_in_one_line():
    encoder = make_tiny_encoder()
    ctx = RunContext(encoder, make_prompt_set(50), metric=logit_diff)
    with pytest.raises(CircuitSpecError, match="encoder"):
        measure(ctx, _claim(top_tokens=2), SimpleNamespace(), seed=0)


PLANTED = """\
name: planted_lens_induction
model: {bundled: zoo.induction}
data:
  file: induction.jsonl
  templates:
    - {id: repeat, text: "{f0} {a} {b} {f1} {f2} {a2}", desired: " {b}", undesired: " {f1}"}
  corrupt: {set: {a: "{c}"}}
claims:
  - {id: lens, kind: logit_lens, top_tokens: 3, expect: mean increases with layer}
  - {id: induction_head, kind: induction, targets: L1H1, seq_len: 4, sequences: 24, expect: mean > 0.4}
  - {id: decoy_is_not, kind: induction, targets: L0H1, seq_len: 4, sequences: 24, expect: mean > 0.4}
"""


def test_the_planted_report_shows_the_lens_table_and_the_induction_verdicts(tmp_path):
    """End to end on the planted induction model: the lens table in report.html (the next token ' B'
    predicted at the second A), the planted induction head passes and the decoy previous-token head fails."""
    import shutil
    from pathlib import Path

    from circuitspec.pipeline import run_verification
    from circuitspec.reports import build_report_input
    from circuitspec.reports.html_report import render_html

    root = Path(__file__).resolve().parents[1]
    shutil.copy(root / "hypotheses" / "zoo" / "data" / "induction.jsonl", tmp_path / "induction.jsonl")
    (tmp_path / "h.yaml").write_text(PLANTED, encoding="utf-8")
    result = run_verification(tmp_path / "h.yaml", progress=False)
    verdicts = {o.claim_id: o.verdict for o in result.outcomes}
    assert verdicts["induction_head"] == "pass" and verdicts["decoy_is_not"] == "fail", verdicts
    page = render_html(build_report_input(result))
    assert page.count('class="cs-lens"') == 1 and "next token" in page
    lens = result.measurements["lens"].extra["lens_top_tokens"]
    last = lens[0]["top"][-1][-1]  # resid_post at the second A: the planted circuit predicts B
    rows = result.measurements["lens"].prompt_labels
    assert last[0].strip() == rows[lens[0]["prompt"]].split()[2], (last, rows[lens[0]["prompt"]])


def test_the_lens_view_escapes_model_text():
    from circuitspec.measurement import Measurement
    from circuitspec.reports.lens_views import lens_html

    m = Measurement("lens", "logit_lens", 1)
    m.extra["lens_top_tokens"] = [
        {"prompt": 0, "tokens": ["<b>", "x"], "sites": ["resid_pre0"], "ids": [[[1], [2]]],
         "top": [[["<script>"], ["ok"]]], "logits": [[[1.5], [2.0]]]}
    ]  # fmt: skip
    page = lens_html(SimpleNamespace(measurements={"lens": m}), "lens")
    assert "&lt;script&gt;" in page and "<script>" not in page and "&lt;b&gt;" in page
    other = Measurement("lens", "attention", 1)
    assert lens_html(SimpleNamespace(measurements={"lens": other}), "lens") == ""
