"""Receiver inputs read from a frozen pass (IOI step 2), batched over receivers.

Post-norm encoders renormalise the whole residual stream after every sublayer, so it is not a sum;
and with MLPs recomputed a decoder's MLPs react to the senders. There a receiver's path-patched
input is read from one batched pass (one copy of the prompt set per receiver) in which every head
(and, unless recomputed, every MLP) is frozen to its base value, the senders carry their deltas and
the norms run live. The pass starts at the earliest sender's block from the cached stream (from the
tokens when a post-norm model's embeddings send: they enter before its embedding norm) and stops
after the last block a receiver reads in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from circuitspec.spec.geometry import hook_name, sender_hook, writes
from circuitspec.spec.nodes import NodeKind, NodeRef, parse_node

from ..context import Hook, RunContext
from .deltas import SenderDelta
from .jobs import input_channels, input_hook
from .runs import MAX_ROWS_PER_PASS, Runs, forward, stream_entering

__all__ = ["passed_receiver_deltas"]

Item = tuple[NodeRef, list[SenderDelta]]  # a receiver and its senders' deltas
Add = tuple[slice, int | None, torch.Tensor]  # batch rows, head (None: stream width), delta


def _is_embedding(node: NodeRef) -> bool:
    return writes(node) == "stream" and node.layer is None


def passed_receiver_deltas(
    ctx: RunContext, runs: Runs, items: Sequence[Item], freeze_mlps: bool
) -> list[torch.Tensor]:
    """Each item's receiver-input delta ``[n, pos, d_model]``, one frozen pass per chunk of receivers."""
    n = len(ctx.prompts)
    out: list[torch.Tensor] = []
    per_pass = max(1, MAX_ROWS_PER_PASS // n)
    for lo in range(0, len(items), per_pass):
        out.extend(_chunk_deltas(ctx, runs, items[lo : lo + per_pass], freeze_mlps))
    return out


def _chunk_deltas(
    ctx: RunContext, runs: Runs, chunk: Sequence[Item], freeze_mlps: bool
) -> list[torch.Tensor]:
    arch = ctx.adapter.arch
    n, k = len(ctx.prompts), len(chunk)
    senders = [d.node for _, deltas in chunk for d in deltas]
    start = min((0 if _is_embedding(s) else int(s.layer or 0) for s in senders), default=0)
    # a post-norm model normalises the embeddings: their deltas enter before it, from the tokens
    from_tokens = not arch.stream_is_sum and any(_is_embedding(s) for s in senders)
    if from_tokens:
        resid = runs.base_tokens.repeat(k, 1)
    else:
        resid = stream_entering(ctx, runs, start).repeat(k, 1, 1).clone()
    z_adds: dict[int, list[Add]] = {}
    mlp_adds: dict[int, list[Add]] = {}
    adds: dict[str, list[tuple[slice, SenderDelta]]] = {}
    for j, (_, deltas) in enumerate(chunk):
        rows = slice(j * n, (j + 1) * n)
        for d in deltas:
            node, what = d.node, writes(d.node)
            enters = _is_embedding(node) or (node.kind is NodeKind.RESID_PRE and node.layer == start)
            if not from_tokens and enters:
                resid[rows] += d.resid
            elif what == "head":
                z_adds.setdefault(int(node.layer or 0), []).append((rows, node.head, d.delta))
            elif freeze_mlps and what in ("mlp", "neuron"):
                mlp_adds.setdefault(int(node.layer or 0), []).append((rows, None, d.resid))
            else:
                adds.setdefault(sender_hook(node), []).append((rows, d))
    hooks: list[Hook] = []
    for layer in range(start, arch.n_layers):
        hooks.append(_frozen_hook(runs, hook_name(parse_node(f"L{layer}H0")), k, z_adds.get(layer, ())))
        if freeze_mlps and not arch.attn_only:
            hooks.append(_frozen_hook(runs, hook_name(parse_node(f"MLP{layer}")), k, mlp_adds.get(layer, ())))
    hooks.extend((name, _add_hook(entries)) for name, entries in adds.items())
    sites: dict[str, torch.Tensor] = {}

    def grab(act: torch.Tensor, hook: Any) -> None:
        sites[hook.name] = act.detach().clone()

    hooks.extend((name, grab) for name in {input_hook(r, arch) for r, _ in chunk})
    # the pass can end with the last block a receiver reads in (the logits read after all of them)
    reads_logits = any(input_channels(r)[0] == "logits" for r, _ in chunk)
    stop = None if reads_logits else max(int(r.layer or 0) for r, _ in chunk) + 1
    forward(ctx, resid, None if from_tokens else start, hooks, stop=stop)
    out = []
    for j, (receiver, _) in enumerate(chunk):
        site = input_hook(receiver, arch)
        out.append(sites[site][j * n : (j + 1) * n] - runs.base[site])
    return out


def _frozen_hook(runs: Runs, name: str, copies: int, extra: Sequence[Add]) -> Hook:
    """A hook that sets ``name`` to its base value on every copy, plus ``(rows, head, delta)`` deltas:
    ``head`` indexes ``hook_z``'s head axis, or is None for a residual-width output."""
    base = runs.base[name].repeat(copies, *([1] * (runs.base[name].dim() - 1)))

    def freeze(act: torch.Tensor, hook: Any) -> torch.Tensor:
        act = base.clone()
        for rows, head, delta in extra:
            if head is None:
                act[rows] += delta
            else:
                act[rows, :, head] += delta
        return act

    return name, freeze


def _add_hook(entries: Sequence[tuple[slice, SenderDelta]]) -> Callable[[torch.Tensor, Any], torch.Tensor]:
    """Add each sender's own-space delta to its live activation (a neuron: its index of ``post``)."""

    def add(act: torch.Tensor, hook: Any) -> torch.Tensor:
        act = act.clone()
        for rows, d in entries:
            if writes(d.node) == "neuron":
                act[rows, :, d.node.index] += d.delta
            else:
                act[rows] += d.delta
        return act

    return add
