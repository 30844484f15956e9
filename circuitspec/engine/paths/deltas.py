"""What a sender changes: its activation's delta in its own hook space and mapped to the residual stream.

A node's own activation lives on its geometry ``sender_hook``; what it adds to the stream follows
its geometry ``writes`` (a head ``z @ W_O[h]``, a neuron ``post[i] · W_out[i]`` through the model
adapter; an MLP output, an embedding or a residual site is already in the stream's space).
Also used by causal scrubbing for each component's term in the stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from circuitspec.spec.geometry import sender_hook, sends_where_pinned, writes
from circuitspec.spec.nodes import NodeRef

from ..adapter import ModelAdapter
from ..prompts import PromptSet
from ..sites import position_mask

__all__ = ["Masks", "SenderDelta", "own_activation", "sender_delta", "to_resid"]


@dataclass
class SenderDelta:
    """A sender's change in its own hook space (``delta``) and mapped to the residual stream (``resid``)."""

    node: NodeRef
    delta: torch.Tensor  # head: [n, pos, d_head]; neuron: [n, pos]; others: [n, pos, d_model]
    resid: torch.Tensor  # [n, pos, d_model]


def own_activation(
    node: NodeRef, cache: Mapping[str, torch.Tensor], rows: slice | torch.Tensor | None = None
) -> torch.Tensor:
    """The sender's own activation from a run's cache (a head's ``z``, a neuron's ``post``), optionally
    on batch rows ``rows`` of it."""
    act = cache[sender_hook(node)]
    if rows is not None:
        act = act[rows]
    what = writes(node)
    if what == "head":
        return act[:, :, node.head]
    if what == "neuron":
        return act[..., node.index]
    return act


def to_resid(adapter: ModelAdapter, node: NodeRef, act: torch.Tensor) -> torch.Tensor:
    """What an own activation (or a change of it) of ``node`` adds to the residual stream."""
    what = writes(node)
    assert node.layer is not None or what == "stream", node.text
    if what == "head":
        return adapter.head_write(int(node.layer), int(node.head), act)  # type: ignore[arg-type]
    if what == "neuron":
        return adapter.neuron_write(int(node.layer), int(node.index), act)  # type: ignore[arg-type]
    return act


def sender_delta(
    adapter: ModelAdapter, node: NodeRef, own: torch.Tensor, base_own: torch.Tensor, mask: torch.Tensor
) -> SenderDelta:
    """``own − base_own`` where the sender sends (``mask`` ``[n, pos, 1]``), in both spaces."""
    delta = own - base_own
    delta = delta * (mask[..., 0] if delta.dim() == 2 else mask)
    return SenderDelta(node, delta, to_resid(adapter, node, delta))


class Masks:
    """Role-position masks ``[n, seq, 1]`` of the prompt set, computed once per node and direction."""

    def __init__(self, prompts: PromptSet, device: torch.device) -> None:
        self.prompts, self.device = prompts, device
        self._masks: dict[tuple[str | None], torch.Tensor] = {}

    def _of(self, role: str | None) -> torch.Tensor:
        if (role,) not in self._masks:
            self._masks[(role,)] = position_mask(role, self.prompts, device=self.device)
        return self._masks[(role,)]

    def receive(self, node: NodeRef) -> torch.Tensor:
        """Where ``node`` receives: at its role (everywhere without one)."""
        return self._of(node.role)

    def send(self, node: NodeRef) -> torch.Tensor:
        """Where ``node`` sends from: at its role, unless the geometry says ``@role`` does not pin its
        output (a head reached through its key or value writes at its query positions)."""
        return self._of(node.role if sends_where_pinned(node) else None)
