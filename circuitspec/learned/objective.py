"""The paper's three-term objective (its Eqs. 6-9), as written there: every term is ≤ 0 and maximised.

With ``f⁺`` / ``f⁻`` the logits under the intervention at ``β = +1`` / ``β = −1``, ``f`` the clean logits,
``c`` the correct and ``w`` the wrong answer token of each of the N prompts:

- effectiveness ``E_m = −(1/N) Σ [max(0, f⁺_w − f⁺_c + m) + max(0, f⁻_c − f⁻_w + m)]`` (Eq. 6): ``β = +1``
  must favour ``c`` and ``β = −1`` favour ``w``, each by the margin ``m``;
- faithfulness ``F = −(1/N) Σ [KL(σ(f⁺) ‖ σ(f)) + KL(σ(f⁻) ‖ σ(f))]`` (Eq. 7): the KL divergence of the
  intervened run *from* the clean run, in the paper's direction (the run's distribution first);
- minimality ``M_1 = −‖vec(θ)‖₁`` (Eq. 8);
- ``Ψ = E_m + λ_F·F + λ_M·M_1`` (Eq. 9); training minimises ``−Ψ``.

Evaluation (§3.4): ``E_0`` (margin 0; 0 when every prompt flips both ways), ``F`` unchanged, and the
count of parameters with ``|θ| > 0.01``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "NEGLIGIBLE",
    "Terms",
    "effectiveness",
    "faithfulness",
    "kl_from_clean",
    "minimality",
    "non_negligible",
    "objective",
]

NEGLIGIBLE = 0.01  # the paper's threshold: parameters with |θ| below it do not count (§3.4)


def hinge_terms(diff_plus: torch.Tensor, diff_minus: torch.Tensor, margin: float) -> torch.Tensor:
    """Per prompt ``max(0, m − Δ⁺) + max(0, Δ⁻ + m)`` with ``Δ = f_c − f_w`` (the bracket of Eq. 6)."""
    return torch.relu(margin - diff_plus) + torch.relu(diff_minus + margin)


def effectiveness(diff_plus: torch.Tensor, diff_minus: torch.Tensor, margin: float) -> torch.Tensor:
    """``E_m`` (Eq. 6) from the logit differences ``Δ = f_c − f_w`` ``[N]`` at ``β = ±1``."""
    return -hinge_terms(diff_plus, diff_minus, margin).mean()


def kl_from_clean(logits: torch.Tensor, clean_logprobs: torch.Tensor) -> torch.Tensor:
    """Per row ``KL(σ(logits) ‖ clean)`` = ``Σ p (log p − log q)`` with ``p`` the intervened run's
    distribution and ``q`` the clean one (``clean_logprobs``: log-softmax of the clean logits)."""
    logp = torch.log_softmax(logits.to(clean_logprobs.dtype), dim=-1)
    return (logp.exp() * (logp - clean_logprobs)).sum(-1)


def faithfulness(
    logits_plus: torch.Tensor, logits_minus: torch.Tensor, clean_logprobs: torch.Tensor
) -> torch.Tensor:
    """``F`` (Eq. 7) from the logits ``[N, vocab]`` at ``β = ±1`` and the clean log-probabilities."""
    return -(kl_from_clean(logits_plus, clean_logprobs) + kl_from_clean(logits_minus, clean_logprobs)).mean()


def minimality(theta: torch.Tensor) -> torch.Tensor:
    """``M_1 = −‖vec(θ)‖₁`` (Eq. 8)."""
    return -theta.abs().sum()


def non_negligible(theta: torch.Tensor) -> int:
    """How many parameters have ``|θ| > 0.01`` (the paper's minimality count)."""
    return int((theta.detach().abs() > NEGLIGIBLE).sum())


@dataclass(frozen=True)
class Terms:
    """One evaluation of Ψ: the three terms (each ≤ 0) and their weighted sum."""

    psi: torch.Tensor
    effectiveness: torch.Tensor
    faithfulness: torch.Tensor
    minimality: torch.Tensor


def objective(
    logits_plus: torch.Tensor,
    logits_minus: torch.Tensor,
    clean_logprobs: torch.Tensor,
    answers: tuple[torch.Tensor, torch.Tensor],
    theta: torch.Tensor,
    *,
    margin: float,
    lambda_f: float,
    lambda_m: float,
) -> Terms:
    """Ψ = E_m + λ_F·F + λ_M·M_1 (Eq. 9) for logits ``[N, vocab]`` at ``β = ±1`` and ``answers`` =
    (correct ids ``[N]``, wrong ids ``[N]``)."""
    correct, wrong = answers
    rows = torch.arange(logits_plus.shape[0], device=logits_plus.device)

    def diff(logits: torch.Tensor) -> torch.Tensor:
        return logits[rows, correct] - logits[rows, wrong]

    e = effectiveness(diff(logits_plus), diff(logits_minus), margin)
    f = faithfulness(logits_plus, logits_minus, clean_logprobs)
    m = minimality(theta)
    return Terms(e + lambda_f * f + lambda_m * m, e, f, m)
