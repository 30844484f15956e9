"""Resolve a node to the place an intervention acts: hook, head, per-prompt token position.

This is the only place a :class:`~circuitspec.spec.nodes.NodeRef` meets a prompt set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from circuitspec.spec.geometry import hook_name
from circuitspec.spec.nodes import NodeKind, NodeRef

from .prompts import PromptSet

__all__ = ["Site", "position_mask", "resolve_site"]


@dataclass(frozen=True)
class Site:
    """Where a node lives in a batched forward pass.

    ``positions`` is a LongTensor ``[batch]`` (one token position per prompt, for nodes pinned to a
    role) or None (every position). ``head`` indexes the head axis of ``hook_z``/``hook_q``/...;
    ``index`` the neuron or feature axis.
    """

    node: NodeRef
    hook_name: str
    head: int | None
    index: int | None
    positions: torch.Tensor | None

    def select(self, activation: torch.Tensor) -> torch.Tensor:
        """The node's slice of an activation ``[batch, pos, (head,) d]``, one row per prompt.

        Returns ``[batch, d]`` when pinned to a position, else ``[batch, pos, d]``.
        """
        act = activation
        if self.head is not None:
            act = act[:, :, self.head]
        if self.index is not None:
            act = act[..., self.index : self.index + 1]
        if self.positions is not None:
            act = act[torch.arange(act.shape[0], device=act.device), self.positions.to(act.device)]
        return act

    def mask(self, activation: torch.Tensor) -> torch.Tensor:
        """A boolean mask shaped like ``activation`` that is True exactly on this node's slice."""
        mask = torch.zeros_like(activation, dtype=torch.bool)
        batch = torch.arange(activation.shape[0], device=activation.device)
        pos = (
            self.positions.to(activation.device)[:, None]
            if self.positions is not None
            else torch.arange(activation.shape[1], device=activation.device)[None, :]
        )
        rows, pos = torch.broadcast_tensors(batch[:, None], pos)
        if self.head is not None and self.index is not None:
            mask[rows, pos, self.head, self.index] = True
        elif self.head is not None:
            mask[rows, pos, self.head] = True
        elif self.index is not None:
            mask[rows, pos, ..., self.index] = True
        else:
            mask[rows, pos] = True
        return mask


def resolve_site(node: NodeRef, prompts: PromptSet) -> Site:
    """Resolve ``node`` against ``prompts`` (role → per-prompt positions)."""
    positions = prompts.positions(node.role) if node.role else None
    indexed = (NodeKind.MLP_NEURON, NodeKind.TRANSCODER_FEATURE, NodeKind.SAE_FEATURE)
    index = node.index if node.kind in indexed else None
    return Site(node=node, hook_name=hook_name(node), head=node.head, index=index, positions=positions)


def position_mask(
    role: str | None, prompts: PromptSet, rows: torch.Tensor | None = None, device: torch.device | None = None
) -> torch.Tensor:
    """``[batch, seq, 1]`` float mask: 1 at ``role``'s position in each row's prompt, 0 elsewhere (all
    ones without a role). Row ``b`` is prompt ``rows[b]`` (default: every prompt once, in order)."""
    idx = torch.arange(len(prompts)) if rows is None else torch.as_tensor(rows).long()
    seq = prompts.tokens.shape[1]
    if role is None:
        return torch.ones(len(idx), seq, 1, device=device)
    mask = torch.zeros(len(idx), seq, 1)
    mask[torch.arange(len(idx)), prompts.positions(role)[idx].long(), 0] = 1.0
    return mask.to(device) if device is not None else mask
