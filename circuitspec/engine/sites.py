"""Resolve a node to the place an intervention acts: hook, head, per-prompt token position.

This is the only place a :class:`~circuitspec.spec.nodes.NodeRef` meets a prompt set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from circuitspec.spec.geometry import hook_name, query_heads
from circuitspec.spec.nodes import NodeKind, NodeRef

from .architecture import Architecture
from .prompts import PromptSet

__all__ = ["Site", "position_mask", "resolve_site"]


@dataclass(frozen=True)
class Site:
    """Where a node lives in a batched forward pass.

    ``positions`` is a LongTensor ``[batch]`` (one token position per prompt, for nodes pinned to a
    role) or None (every position). ``head`` indexes the head axis of ``hook_z``/``hook_q``/...: one
    query head, or (a shared key/value head ``L7KV1.v``) the slice of its group's contiguous query
    heads, whose copies in the ungrouped ``hook_k``/``hook_v`` are edited together; ``index`` the
    neuron or feature axis.
    """

    node: NodeRef
    hook_name: str
    head: int | slice | None
    index: int | None
    positions: torch.Tensor | None

    @property
    def heads(self) -> tuple[int, ...]:
        """The query heads this site covers (empty: not a head site)."""
        if isinstance(self.head, slice):
            return tuple(range(self.head.start, self.head.stop))
        return () if self.head is None else (self.head,)

    def select(self, activation: torch.Tensor) -> torch.Tensor:
        """The node's slice of an activation ``[batch, pos, (head,) d]``, one row per prompt.

        Returns ``[batch, d]`` when pinned to a position, else ``[batch, pos, d]`` (a key/value group:
        ``[batch, (pos,) heads, d]``).
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


def resolve_site(node: NodeRef, prompts: PromptSet, arch: Architecture | None = None) -> Site:
    """Resolve ``node`` against ``prompts`` (role → per-prompt positions); a shared key/value head
    needs the model's ``arch`` to name its group's query heads."""
    positions = prompts.positions(node.role) if node.role else None
    indexed = (NodeKind.MLP_NEURON, NodeKind.TRANSCODER_FEATURE, NodeKind.SAE_FEATURE)
    index = node.index if node.kind in indexed else None
    head: int | slice | None = node.head
    if node.is_kv:
        if arch is None:
            raise ValueError(f"'{node}' names a shared key/value head: resolving it needs the model's arch")
        group = query_heads(node, arch.n_heads, arch.n_kv_heads)
        head = slice(group[0], group[-1] + 1)
    return Site(node=node, hook_name=hook_name(node), head=head, index=index, positions=positions)


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
