"""The two KL metrics against ``torch.nn.functional.kl_div``: ``kl`` = KL(clean ‖ run), ``kl_run_clean`` =
KL(run ‖ clean) (the activation-scaling paper's faithfulness direction)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from circuitspec.engine.metrics import make_metric
from circuitspec.spec.claim_models import AblationClaim
from tests.helpers.tiny import make_prompt_set


def _logits(seed: int, n: int = 4, vocab: int = 50) -> torch.Tensor:
    return torch.randn(n, vocab, generator=torch.Generator().manual_seed(seed)) * 2


def test_both_directions_match_torch_kl_div():
    prompts = make_prompt_set(50)
    clean, run = _logits(0), _logits(1)
    clean_logp, run_logp = clean.log_softmax(-1), run.log_softmax(-1)
    # F.kl_div(input, target) = KL(target ‖ input), with input and target given as log-probabilities
    clean_run = F.kl_div(run_logp, clean_logp, log_target=True, reduction="none").sum(-1)
    run_clean = F.kl_div(clean_logp, run_logp, log_target=True, reduction="none").sum(-1)
    ours_clean_run = make_metric("kl", lambda: clean, prompts)(run, prompts)
    ours_run_clean = make_metric("kl_run_clean", lambda: clean, prompts)(run, prompts)
    torch.testing.assert_close(ours_clean_run, clean_run, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_run_clean, run_clean, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(ours_clean_run, ours_run_clean)  # the two directions differ here
    zero = make_metric("kl_run_clean", lambda: clean, prompts)(clean, prompts)
    torch.testing.assert_close(zero, torch.zeros(4), atol=1e-6, rtol=0)


def test_the_yaml_accepts_the_new_direction_and_refuses_a_misspelling():
    claim = {"id": "a", "kind": "ablation", "targets": "L0H0", "expect": "mean < 0.1"}
    assert AblationClaim.model_validate({**claim, "metric": "kl_run_clean"}).metric == "kl_run_clean"
    with pytest.raises(ValueError, match="kl_run_clean"):
        AblationClaim.model_validate({**claim, "metric": "kl_reverse"})
