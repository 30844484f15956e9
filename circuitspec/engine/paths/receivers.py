"""IOI step 3: patch the receivers' inputs and recompute everything after them, batched over jobs.

One partial pass per hop and start block, from the base run's cached stream (one copy of the prompt
set per job): each receiver's input is set to ``base input + delta`` at its role positions: a head's
q/k/v vector recomputed from that input through the model adapter, an MLP's input or a residual
site replaced, and a patch of the stream entering the first block added to the pass's input. A
middle hop keeps its receivers' new outputs (the next hop's senders); the last hop the logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from circuitspec.spec.geometry import hook_name, sender_hook
from circuitspec.spec.nodes import NodeKind, NodeRef

from ..context import Hook, RunContext
from .deltas import Masks, SenderDelta, own_activation, sender_delta
from .jobs import enters_block, input_channels, input_hook, receiver_inputs
from .runs import Runs, forward, read_out, stream_entering

__all__ = ["Slot", "run_hop"]


@dataclass
class Slot:
    """One receiver of one job in a hop's pass: its block of batch rows, input delta and role mask."""

    row: int
    node: NodeRef
    delta: torch.Tensor  # [n, pos, d_model] change of the receiver's (pre-norm) input
    mask: torch.Tensor  # [n, pos, 1]


def _receiver_hooks(
    ctx: RunContext, runs: Runs, slots: Sequence[Slot], start: int
) -> tuple[list[Hook], list[tuple[int, torch.Tensor]]]:
    """Hooks that set each slot's receiver input to ``base input + delta`` at its positions, and the
    ``(row, delta)`` patches of the stream entering block ``start`` (added to the input directly)."""
    adapter, arch, n = ctx.adapter, ctx.adapter.arch, len(ctx.prompts)
    by_hook: dict[str, list[Callable[[torch.Tensor], None]]] = {}
    direct: list[tuple[int, torch.Tensor]] = []
    for slot in slots:
        node, rows, m = slot.node, slice(slot.row * n, (slot.row + 1) * n), slot.mask
        if enters_block(node, start, arch):
            direct.append((slot.row, slot.delta * m))
            continue
        target = runs.base[input_hook(node, arch)] + slot.delta  # the receiver's path-patched input
        if input_channels(node)[0] in ("q", "k", "v"):
            for part, channel in zip(receiver_inputs(node), input_channels(node), strict=True):
                new = adapter.head_project(int(node.layer or 0), int(node.head or 0), channel, target)

                def patch_head(act: torch.Tensor, rows=rows, h=node.head, m=m, new=new) -> None:
                    act[rows, :, h] = act[rows, :, h] * (1 - m) + new * m

                by_hook.setdefault(hook_name(part), []).append(patch_head)
            continue
        site = hook_name(_mlp_input(node)) if input_channels(node)[0] == "mlp_in" else input_hook(node, arch)

        def patch_resid(act: torch.Tensor, rows=rows, m=m, x=target) -> None:
            act[rows] = act[rows] * (1 - m) + x * m

        by_hook.setdefault(site, []).append(patch_resid)
    return [(name, _apply(fns)) for name, fns in by_hook.items()], direct


def _mlp_input(node: NodeRef) -> NodeRef:
    """The MLP-input node of the MLP a receiver reads through (its geometry hook is ``hook_mlp_in``)."""
    return replace(node, kind=NodeKind.MLP_IN, index=None)


def _apply(fns: Sequence[Callable[[torch.Tensor], None]]) -> Callable[[torch.Tensor, Any], torch.Tensor]:
    def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
        act = act.clone()
        for fn in fns:
            fn(act)
        return act

    return hook


@dataclass
class Hop:
    """The jobs of one hop's pass: each job's slots, and whether it ends here or sends on."""

    slots: dict[int, list[Slot]]  # job index -> its receivers
    last: list[int]  # jobs whose path ends at this hop: keep their logits
    middle: list[int]  # jobs that send on: keep their receivers' new outputs


def run_hop(
    ctx: RunContext,
    runs: Runs,
    hop: Hop,
    start: int,
    masks: Masks,
    final: dict[int, torch.Tensor],
    sent: dict[int, dict[NodeRef, SenderDelta]],
) -> None:
    """One partial pass from block ``start`` for ``hop``'s jobs; fills ``final`` (last-hop logits) and
    ``sent`` (middle-hop receivers' output deltas, the next hop's senders)."""
    n, arch = len(ctx.prompts), ctx.adapter.arch
    order = [*hop.slots]
    row_of = {job: row for row, job in enumerate(order)}  # one block of n batch rows per job
    slots = [Slot(row_of[i], s.node, s.delta, s.mask) for i in order for s in hop.slots[i]]
    hooks, direct = _receiver_hooks(ctx, runs, slots, start)
    resid = stream_entering(ctx, runs, start).repeat(len(order), 1, 1).clone()
    for row, delta in direct:
        resid[row * n : (row + 1) * n] += delta
    outputs: dict[str, torch.Tensor] = {}

    def grab(act: torch.Tensor, hook: Any) -> None:
        outputs[hook.name] = act.detach().clone()

    hooks += [(name, grab) for name in {sender_hook(s.node) for i in hop.middle for s in hop.slots[i]}]
    if start >= arch.n_layers and not hop.middle:
        logits = read_out(ctx, resid)
    elif not hop.last:  # only the middle receivers' outputs are needed: stop after their blocks
        stop = max(int(s.node.layer or 0) for i in hop.middle for s in hop.slots[i]) + 1
        logits = forward(ctx, resid, start, hooks, stop=stop)
    else:
        logits = forward(ctx, resid, start, hooks)
    for i in hop.last:
        final[i] = logits[row_of[i] * n : (row_of[i] + 1) * n]
    for i in hop.middle:
        rows = slice(row_of[i] * n, (row_of[i] + 1) * n)
        sent[i] = {
            s.node: sender_delta(
                ctx.adapter,
                s.node,
                own_activation(s.node, outputs, rows),
                own_activation(s.node, runs.base),
                masks.send(s.node),
            )
            for s in hop.slots[i]
        }
