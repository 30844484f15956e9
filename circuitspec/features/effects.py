"""What a feature does on its own: its decoder row through the unembedding, and de-embedding
(Dunefsky et al. 2024). Per-prompt direct logit attribution of a feature, which ``attribution`` claims
use, lives in the engine (:mod:`circuitspec.engine.feature_attribution`).

Entry points: :func:`decoder_logit_effect`, :func:`deembed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["decoder_logit_effect", "deembed"]


def decoder_logit_effect(
    model: Any, sae: Any, feature: int, desired: Sequence[int], undesired: Sequence[int]
):
    """``W_dec[f] · (W_U[:, desired] − W_U[:, undesired])`` per pair: the feature's unit effect on the
    logit difference, ignoring the final LayerNorm's scale."""
    direction = model.W_U[:, list(desired)] - model.W_U[:, list(undesired)]  # [d_model, n]
    return sae.W_dec[feature].to(direction.dtype) @ direction


def deembed(model: Any, sae: Any, feature: int, k: int = 10) -> list[tuple[int, float]]:
    """The ``k`` vocabulary tokens whose embeddings most excite ``feature``: top of ``W_E @ W_enc[:, f]``.

    As in Dunefsky et al. (2024), the token embedding is taken as the feature's whole input (no
    attention, no earlier MLPs, no LayerNorm) — a first-layer reading of what the feature detects.
    """
    with torch.no_grad():
        scores = model.W_E @ sae.W_enc[:, feature].to(model.W_E.dtype)
        values, indices = scores.topk(min(k, scores.shape[0]))
    return [(int(i), float(v)) for i, v in zip(indices, values, strict=True)]
