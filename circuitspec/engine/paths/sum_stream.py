"""Receiver inputs where the residual stream is a sum (pre-norm decoders, MLPs frozen): no pass at all.

With every other head and every MLP frozen to its base value, a pre-norm residual stream is the sum
of the embeddings and every component's output, so a receiver's path-patched input is exactly its
base input plus the sum of its senders' deltas mapped to the stream (Wang et al. 2022, IOI step 2,
computed in closed form). Only the receivers' own partial pass (step 3) is then needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from circuitspec.spec.nodes import NodeRef

from ..architecture import Architecture
from .deltas import SenderDelta
from .jobs import Pair

__all__ = ["sum_applies", "summed_receiver_deltas"]


def sum_applies(arch: Architecture, mlps: str) -> bool:
    """Whether receiver inputs are closed-form sums (else they come from a frozen pass)."""
    return arch.stream_is_sum and mlps == "frozen"


def summed_receiver_deltas(
    hop: Sequence[Pair], receivers: Sequence[NodeRef], sent: Mapping[NodeRef, SenderDelta]
) -> list[torch.Tensor]:
    """Each receiver's input delta ``[n, pos, d_model]``: the sum of its own senders' stream deltas."""
    out = []
    for receiver in receivers:
        deltas = [sent[s].resid for s, r in hop if r == receiver]
        out.append(sum(deltas[1:], deltas[0]))
    return out
