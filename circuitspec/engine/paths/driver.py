"""Path patching (Wang et al. 2022, IOI appendix B), batched: many jobs in few partial passes.

Noising (default): the senders take their corrupted-run value, every other head is frozen to its
clean value, MLPs are frozen (default) or recomputed, and the receivers' *inputs* are set to what
they become; everything after the receivers is recomputed and the metric read. ``denoising`` swaps
the clean and corrupted runs. Per hop, the receivers' input deltas come in closed form where the
stream is a sum (:mod:`.sum_stream`) and from a frozen pass otherwise (:mod:`.frozen_pass`); then
one partial pass per start block patches them (:mod:`.receivers`). Chains ``A -> B -> C`` send B's
resulting output change on along ``B -> C`` only (multi-hop path patching).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch

from circuitspec.errors import CircuitSpecError
from circuitspec.spec.nodes import NodeRef

from ..context import RunContext
from .deltas import Masks, SenderDelta, own_activation, sender_delta
from .frozen_pass import passed_receiver_deltas
from .jobs import Pair, PathJob, check_jobs, input_channels, start_layer
from .receivers import Hop, Slot, run_hop
from .runs import MAX_ROWS_PER_PASS, Runs, get_runs
from .sum_stream import sum_applies, summed_receiver_deltas

__all__ = ["path_patch_edges", "path_patch_jobs"]

Result = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def path_patch_jobs(
    ctx: RunContext,
    jobs: Sequence[PathJob],
    *,
    mlps: str = "frozen",
    direction: str = "noising",
    alpha: float | None = None,
) -> Result:
    """Run many path-patching experiments in few batched passes.

    Returns ``(patched [n_jobs, n], base [n], source [n])`` metrics per prompt, where ``base`` is
    the run being patched (clean for noising) and ``source`` the other run. ``alpha`` (soft path
    patching, the circuits report's variant): the first senders send ``alpha ×`` their own base-run
    activation instead of the source run's.
    """
    if mlps not in ("frozen", "recomputed") or direction not in ("noising", "denoising"):
        raise CircuitSpecError(
            f"path patching: mlps must be frozen|recomputed and direction noising|denoising, "
            f"got {mlps}, {direction}"
        )
    check_jobs(jobs, ctx.adapter.arch)
    jobs = [job.ungrouped(ctx.adapter.arch) for job in jobs]  # shared key/value heads as their groups
    nodes = [node for job in jobs for hop in job.hops for pair in hop for node in pair]
    runs = get_runs(ctx, direction, nodes, mlps)
    masks = Masks(ctx.prompts, ctx.device)
    def sent_by(s: NodeRef) -> SenderDelta:
        base_own = own_activation(s, runs.base)
        own = base_own * alpha if alpha is not None else own_activation(s, runs.source)
        return sender_delta(ctx.adapter, s, own, base_own, masks.send(s))

    sent = {i: {s: sent_by(s) for s, _ in job.hops[0]} for i, job in enumerate(jobs)}
    final: dict[int, torch.Tensor] = {}
    mlp_inputs = any(input_channels(r)[0] == "mlp_in" for job in jobs for hop in job.hops for _, r in hop)
    with ctx.adapter.split_inputs() if mlp_inputs else contextlib.nullcontext():  # hook_mlp_in
        for k in range(max(len(job.hops) for job in jobs)):
            active = [i for i, job in enumerate(jobs) if k < len(job.hops) and i not in final]
            _hop(ctx, runs, jobs, active, k, sent, final, masks, mlps)
    prompts = ctx.prompts
    patched = torch.stack([ctx.metric(final[i], prompts) for i in range(len(jobs))])
    source_logits = (ctx.corrupted() if direction == "noising" else ctx.clean())[0]
    return patched, ctx.metric(runs.base_logits, prompts), ctx.metric(source_logits, prompts)


def _hop(
    ctx: RunContext,
    runs: Runs,
    jobs: Sequence[PathJob],
    active: list[int],
    k: int,
    sent: dict[int, dict[NodeRef, SenderDelta]],
    final: dict[int, torch.Tensor],
    masks: Masks,
    mlps: str,
) -> None:
    """Hop ``k`` of the ``active`` jobs: receiver deltas, then one pass per start block (chunked)."""
    arch, n = ctx.adapter.arch, len(ctx.prompts)
    receivers = {i: list(dict.fromkeys(r for _, r in jobs[i].hops[k])) for i in active}
    if sum_applies(arch, mlps):  # the stream is a sum: no pass needed
        deltas = {i: summed_receiver_deltas(jobs[i].hops[k], receivers[i], sent[i]) for i in active}
    else:
        items = [
            (r, [sent[i][s] for s, rr in jobs[i].hops[k] if rr == r]) for i in active for r in receivers[i]
        ]
        passed = iter(passed_receiver_deltas(ctx, runs, items, freeze_mlps=mlps == "frozen"))
        deltas = {i: [next(passed) for _ in receivers[i]] for i in active}
    slots = {
        i: [Slot(0, r, d, masks.receive(r)) for r, d in zip(receivers[i], deltas[i], strict=True)]
        for i in active
    }
    by_start: dict[int, list[int]] = {}
    for i in active:
        if all(not torch.any(s.delta * s.mask) for s in slots[i]):
            final[i] = runs.base_logits  # the receivers' inputs do not change: the base run as it is
            continue
        by_start.setdefault(min(start_layer(r, arch) for r in receivers[i]), []).append(i)
    for start, members in sorted(by_start.items()):
        per_pass = max(1, MAX_ROWS_PER_PASS // (n * max(len(slots[i]) for i in members)))
        for lo in range(0, len(members), per_pass):
            chunk = members[lo : lo + per_pass]
            hop = Hop(
                slots={i: slots[i] for i in chunk},
                last=[i for i in chunk if k + 1 == len(jobs[i].hops)],
                middle=[i for i in chunk if k + 1 < len(jobs[i].hops)],
            )
            run_hop(ctx, runs, hop, start, masks, final, sent)


def path_patch_edges(
    ctx: RunContext, edges: Sequence[Pair], *, mlps: str = "frozen", direction: str = "noising"
) -> Result:
    """Patch each edge ``(sender, receiver)`` on its own; ``(patched [n_edges, n], base [n], source [n])``."""
    return path_patch_jobs(ctx, [PathJob.joint([edge]) for edge in edges], mlps=mlps, direction=direction)
