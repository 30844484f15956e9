"""Path patching (Wang et al. 2022, IOI appendix B): the effect of a sender on a receiver along direct paths.

Noising (default): the sender takes its corrupted-run value, every other head is frozen to its clean
value, MLPs are frozen (default) or recomputed, and the receiver's *input* is set to what it becomes;
everything after the receiver is then recomputed normally and the metric read. ``denoising`` swaps the
roles of the clean and corrupted runs.

The engine does not run the naive three passes per edge. With heads and MLPs frozen the residual
stream is a sum, so the receiver's path-patched input is exactly ``clean input + Σ sender deltas``
mapped to the residual stream (a head: ``(z_corrupt − z_clean) @ W_O[h]``; an MLP: its output delta).
So every edge needs only one *partial* pass (starting at the receiver's layer, from the cached clean
residual stream), batched over edges; receivers that are the logits need no pass at all. With
``mlps: recomputed`` one extra batched pass per hop computes the receiver input with MLPs live.

Post-LN encoders (BERT, ``model.is_encoder``) normalise the whole residual stream after every
sublayer, so it is not a sum there: a receiver's path-patched input is read from one batched pass in
which every head (and, unless recomputed, every MLP) is frozen to its base value, the senders carry
their deltas and the LayerNorms run live — the IOI step 2, batched over edges. Step 3 is the same
partial pass as for decoders (heads read ``resid_pre`` with no LayerNorm in between there), ending in
the model's pooling instead of the unembedding.

Chains ``A -> B -> C``: the ``A -> B`` edge changes B's input; B's resulting output change then
travels along ``B -> C`` only (multi-hop path patching). A node's ``@role`` pins where it receives
and, except for a head reached through its key or value, where it sends: ``L7H5.v@s_con`` reads the
value at s_con and writes at its query positions (see :func:`_send_mask`).

:func:`naive_path_patch` is the plain-hook IOI reference the tests and benchmark compare against.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement, RunCost
from circuitspec.spec.geometry import hook_name
from circuitspec.spec.nodes import NodeKind, NodeRef

from ..context import RunContext

__all__ = [
    "PathJob",
    "measure_path_patching",
    "naive_path_patch",
    "path_patch_edges",
    "path_patch_jobs",
    "run_cache_names",
]

Pair = tuple[NodeRef, NodeRef]
MAX_ROWS_PER_PASS = 512  # sequences per batched forward pass (memory bound)

_HEAD_RECEIVERS = (NodeKind.HEAD, NodeKind.HEAD_Q, NodeKind.HEAD_K, NodeKind.HEAD_V)
_MLP_NODES = (NodeKind.MLP, NodeKind.MLP_IN, NodeKind.MLP_NEURON)
_RESID_NODES = (NodeKind.RESID_PRE, NodeKind.RESID_MID, NodeKind.RESID_POST)
_SENDER_KINDS = (*_HEAD_RECEIVERS, *_MLP_NODES, *_RESID_NODES, NodeKind.EMBED, NodeKind.POS_EMBED)
_RECEIVER_KINDS = (*_HEAD_RECEIVERS, *_MLP_NODES, *_RESID_NODES, NodeKind.LOGITS)


@dataclass(frozen=True)
class PathJob:
    """One path-patching experiment: hops of (sender, receiver) pairs patched jointly.

    A single edge is one hop with one pair; a chain ``A -> B -> C`` is two hops, and the senders of
    hop ``k + 1`` must be receivers of hop ``k`` (their changed output is what is sent on).
    """

    hops: tuple[tuple[Pair, ...], ...]

    @classmethod
    def chain(cls, nodes: Sequence[NodeRef]) -> PathJob:
        return cls(tuple(((a, b),) for a, b in itertools.pairwise(nodes)))

    @classmethod
    def joint(cls, pairs: Sequence[Pair]) -> PathJob:
        return cls((tuple(pairs),))


# ----------------------------------------------------------------------------------- node geometry


def _check_pair(sender: NodeRef, receiver: NodeRef, n_layers: int) -> None:
    if sender.kind not in _SENDER_KINDS:
        raise CircuitSpecError(
            f"path patching: '{sender}' cannot be a sender "
            "(valid: heads, MLPs, MLP neurons, embeddings, residual sites)"
        )
    if receiver.kind not in _RECEIVER_KINDS:
        raise CircuitSpecError(
            f"path patching: '{receiver}' cannot be a receiver "
            "(valid: L<l>H<h>.q|k|v, MLP<l>, residual sites, logits)"
        )
    if receiver.kind is NodeKind.LOGITS:
        return
    if _send_order(sender) >= _receive_order(receiver):
        raise CircuitSpecError(
            f"path patching: receiver '{receiver}' reads the residual stream "
            f"before sender '{sender}' writes it"
        )
    if receiver.layer is not None and receiver.layer >= n_layers:
        raise CircuitSpecError(f"path patching: '{receiver}' is beyond the model's {n_layers} layers")


def _send_order(node: NodeRef) -> float:
    """When a sender writes to the residual stream (heads at l+.2, MLPs at l+.6, residual sites in place)."""
    if node.kind in (NodeKind.EMBED, NodeKind.POS_EMBED):
        return -1.0
    assert node.layer is not None
    if node.kind in _HEAD_RECEIVERS:
        return node.layer + 0.2
    if node.kind in _MLP_NODES:
        return node.layer + 0.6
    return {NodeKind.RESID_PRE: 0.0, NodeKind.RESID_MID: 0.3, NodeKind.RESID_POST: 0.9}[
        node.kind
    ] + node.layer


def _receive_order(node: NodeRef) -> float:
    """When a receiver reads the residual stream."""
    if node.kind is NodeKind.LOGITS:
        return float("inf")
    assert node.layer is not None
    if node.kind in _HEAD_RECEIVERS:
        return node.layer + 0.1
    if node.kind in _MLP_NODES:
        return node.layer + 0.4
    return {NodeKind.RESID_PRE: 0.05, NodeKind.RESID_MID: 0.35, NodeKind.RESID_POST: 0.95}[
        node.kind
    ] + node.layer


def _channels(node: NodeRef) -> tuple[str, ...]:
    """The attention inputs a head receiver reads through (a bare head reads all three)."""
    return {NodeKind.HEAD_Q: ("q",), NodeKind.HEAD_K: ("k",), NodeKind.HEAD_V: ("v",)}.get(
        node.kind, ("q", "k", "v")
    )


def _post_ln(model: Any) -> bool:
    """BERT-style blocks: LayerNorm after each sublayer, so the residual stream is not a sum."""
    return bool(getattr(model, "is_encoder", False))


def _final_hook(n_layers: int, post_ln: bool) -> str:
    """The residual stream after the last block (what the unembedding or the pooling reads)."""
    last = f"blocks.{n_layers - 1}"
    return f"{last}.hook_normalized_resid_post" if post_ln else f"{last}.hook_resid_post"


def _residual_site_hook(node: NodeRef, n_layers: int, post_ln: bool = False) -> str:
    """The residual-stream hook whose value is this receiver's (pre-LN) input."""
    if node.kind is NodeKind.LOGITS:
        return _final_hook(n_layers, post_ln)
    if node.kind in _HEAD_RECEIVERS:
        return f"blocks.{node.layer}.hook_resid_pre"
    if node.kind in _MLP_NODES:
        return f"blocks.{node.layer}.hook_resid_mid"
    return hook_name(node)


def _start_layer(node: NodeRef, n_layers: int, post_ln: bool = False) -> int:
    """The first block whose computation a receiver patch changes (post-LN ``resid_postL`` is inside
    block ``L``, before its last LayerNorm)."""
    if node.kind is NodeKind.LOGITS:
        return n_layers
    assert node.layer is not None
    return node.layer + 1 if node.kind is NodeKind.RESID_POST and not post_ln else node.layer


def _enters_block(node: NodeRef, start: int, n_layers: int, post_ln: bool) -> bool:
    """Whether the receiver's site is the residual stream entering block ``start`` (patched directly)."""
    if _start_layer(node, n_layers, post_ln) != start:
        return False
    return node.kind in (NodeKind.LOGITS, NodeKind.RESID_PRE) or (
        node.kind is NodeKind.RESID_POST and not post_ln
    )


def _sender_hook(node: NodeRef) -> str:
    """The hook where a sender's own activation lives (heads: hook_z, MLPs: hook_mlp_out)."""
    if node.kind in _HEAD_RECEIVERS:
        return f"blocks.{node.layer}.attn.hook_z"
    if node.kind in (NodeKind.MLP, NodeKind.MLP_IN):
        return f"blocks.{node.layer}.hook_mlp_out"
    if node.kind is NodeKind.MLP_NEURON:
        return f"blocks.{node.layer}.mlp.hook_post"
    return hook_name(node)


def run_cache_names(model: Any) -> list[str]:
    """The activations path patching and scrubbing read from the clean and corrupted runs."""
    suffixes = (
        "attn.hook_z",
        "hook_mlp_out",
        "mlp.hook_post",
        "hook_resid_pre",
        "hook_resid_mid",
        "hook_resid_post",
        "hook_normalized_resid_post",  # post-LN encoders: the stream between blocks
    )
    wanted = ["hook_embed", "hook_pos_embed"]
    wanted += [f"blocks.{layer}.{suffix}" for layer in range(model.cfg.n_layers) for suffix in suffixes]
    return [name for name in wanted if name in model.hook_dict]


def _pos_mask(node: NodeRef, positions: Mapping[str, torch.Tensor], n: int, seq: int) -> torch.Tensor:
    """``[n, seq, 1]`` float mask: 1 at the node's role position (or everywhere when it has none)."""
    if node.role is None:
        return torch.ones(n, seq, 1)
    mask = torch.zeros(n, seq, 1)
    mask[torch.arange(n), positions[node.role].long(), 0] = 1.0
    return mask


def _send_mask(node: NodeRef, positions: Mapping[str, torch.Tensor], n: int, seq: int) -> torch.Tensor:
    """Where a node *sends* from. A head reached through its key or value at ``@role`` reads at that
    role but writes at its query positions, so its output is not pinned (``L7H5.v@s_con -> MLP9@end``
    is the head moving what it reads at s_con to the end). Every other node sends where it is pinned."""
    if node.kind in (NodeKind.HEAD_K, NodeKind.HEAD_V):
        return torch.ones(n, seq, 1)
    return _pos_mask(node, positions, n, seq)


# ----------------------------------------------------------------------------------- deltas


@dataclass
class _SenderDelta:
    """A sender's change in its own hook space (``delta``) and mapped to the residual stream (``resid``)."""

    node: NodeRef
    delta: torch.Tensor  # head: [n, pos, d_head]; neuron: [n, pos]; others: [n, pos, d_model]
    resid: torch.Tensor  # [n, pos, d_model]


def _to_resid(model: Any, node: NodeRef, delta: torch.Tensor) -> torch.Tensor:
    if node.kind in _HEAD_RECEIVERS:
        return delta @ model.blocks[node.layer].attn.W_O[node.head]
    if node.kind is NodeKind.MLP_NEURON:
        return delta[..., None] * model.blocks[node.layer].mlp.W_out[node.index]
    return delta


def _own_activation(node: NodeRef, cache: Mapping[str, torch.Tensor]) -> torch.Tensor:
    act = cache[_sender_hook(node)]
    if node.kind in _HEAD_RECEIVERS:
        return act[:, :, node.head]
    if node.kind is NodeKind.MLP_NEURON:
        return act[..., node.index]
    return act


def _sender_delta(
    model: Any, node: NodeRef, own: torch.Tensor, base_own: torch.Tensor, mask: torch.Tensor
) -> _SenderDelta:
    delta = own - base_own
    delta = delta * (mask[..., 0] if delta.dim() == 2 else mask)
    return _SenderDelta(node, delta, _to_resid(model, node, delta))


# ----------------------------------------------------------------------------------- the engine


@dataclass
class _Runs:
    base_logits: torch.Tensor
    base: dict[str, torch.Tensor]
    source: dict[str, torch.Tensor]
    base_tokens: torch.Tensor


def _get_runs(ctx: RunContext, direction: str) -> _Runs:
    names = run_cache_names(ctx.model)
    clean, corrupt = ctx.clean(names), ctx.corrupted(names)  # shared with the planner's other claims
    if direction == "denoising":
        return _Runs(corrupt[0], corrupt[1], clean[1], ctx.prompts.corrupt_tokens)
    return _Runs(clean[0], clean[1], corrupt[1], ctx.prompts.tokens)


def _resid_at(runs: _Runs, layer: int, n_layers: int, post_ln: bool = False) -> torch.Tensor:
    """The base run's residual stream entering block ``layer`` (the final residual for ``n_layers``)."""
    if layer >= n_layers:
        return runs.base[_final_hook(n_layers, post_ln)]
    return runs.base[f"blocks.{layer}.hook_resid_pre"]


def _attention_mask(ctx: RunContext, rows: int) -> torch.Tensor:
    """``[rows, pos]`` 1 on real tokens for ``rows // n`` stacked copies of the prompt set."""
    prompts = ctx.prompts
    seq = prompts.tokens.shape[1]
    mask = (torch.arange(seq)[None] < prompts.lengths[:, None]).long()
    return mask.repeat(rows // len(prompts), 1).to(ctx.device)


def _counted_forward(
    ctx: RunContext,
    resid: torch.Tensor,
    start: int | None,
    hooks: list,
    stop: int | None = None,
) -> torch.Tensor:
    """A counted batched pass from block ``start`` on ``resid`` (``start=None``: ``resid`` holds token
    ids and the pass starts at the embeddings); logits (or the residual at ``stop``)."""
    model = ctx.model
    n = len(ctx.prompts)
    rows = resid.shape[0]
    ctx.counter.add(rows, int(ctx.prompts.lengths.sum()) * (rows // n))
    extra = {"one_zero_attention_mask": _attention_mask(ctx, rows)} if _post_ln(model) else {}
    if start is not None:
        extra["start_at_layer"] = start
    with torch.inference_mode(), model.hooks(fwd_hooks=hooks):
        return model(resid.to(ctx.device), stop_at_layer=stop, **extra)


def _receiver_hooks(
    model: Any,
    runs: _Runs,
    slots: Sequence[tuple[int, NodeRef, torch.Tensor, torch.Tensor]],
    n: int,
    start: int,
) -> tuple[list, list[tuple[int, torch.Tensor]]]:
    """Hooks that set each slot's receiver input to ``base input + delta`` (at its role positions).

    ``slots = [(block, receiver, delta_resid [n, pos, d], mask [n, pos, 1])]``; a slot acts on batch
    rows ``block*n:(block+1)*n`` (a job's receivers share its block). Patches of the residual
    entering block ``start`` are returned as ``(block, delta)`` to add to the input directly.
    """
    n_layers = model.cfg.n_layers
    post_ln = _post_ln(model)
    by_hook: dict[str, list[Callable[[torch.Tensor], None]]] = {}
    direct: list[tuple[int, torch.Tensor]] = []

    for j, node, delta, mask in slots:
        rows = slice(j * n, (j + 1) * n)
        site = _residual_site_hook(node, n_layers, post_ln)
        if _enters_block(node, start, n_layers, post_ln):
            direct.append((j, delta * mask))
            continue
        if node.kind in _HEAD_RECEIVERS:
            block = model.blocks[node.layer]
            patched_in = runs.base[site] + delta  # the receiver's path-patched (pre-LN) input
            # pre-LN blocks normalise the head's input; post-LN heads read the stream as it is
            norm = (lambda x: x) if post_ln else block.ln1
            for chan in _channels(node):
                weight = getattr(block.attn, f"W_{chan.upper()}")[node.head]
                bias = getattr(block.attn, f"b_{chan.upper()}")[node.head]

                def patch_head(
                    act, rows=rows, norm=norm, w=weight, b=bias, h=node.head, m=mask, x=patched_in
                ):
                    new = norm(x) @ w + b
                    act[rows, :, h] = act[rows, :, h] * (1 - m) + new * m

                by_hook.setdefault(f"blocks.{node.layer}.attn.hook_{chan}", []).append(patch_head)
            continue
        hook = f"blocks.{node.layer}.hook_mlp_in" if node.kind in _MLP_NODES else site
        target = runs.base[site] + delta

        def patch_resid(act, rows=rows, m=mask, x=target):
            act[rows] = act[rows] * (1 - m) + x * m

        by_hook.setdefault(hook, []).append(patch_resid)

    def make_hook(fns: list[Callable[[torch.Tensor], None]]):
        def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
            act = act.clone()
            for fn in fns:
                fn(act)
            return act

        return hook

    return [(name, make_hook(fns)) for name, fns in by_hook.items()], direct


@contextmanager
def _hook_mlp_in(model: Any, needed: bool) -> Iterator[None]:
    """Turn on TransformerLens' ``hook_mlp_in`` while needed; always restore the previous setting."""
    old = model.cfg.use_hook_mlp_in
    if needed and not old:
        model.set_use_hook_mlp_in(True)
    try:
        yield
    finally:
        if model.cfg.use_hook_mlp_in != old:
            model.set_use_hook_mlp_in(old)


def _passed_receiver_deltas(
    ctx: RunContext,
    runs: _Runs,
    items: Sequence[tuple[NodeRef, list[_SenderDelta]]],
    freeze_mlps: bool,
) -> list[torch.Tensor]:
    """Receiver-input deltas read from a pass (IOI step 2): every head frozen to its base value, MLPs
    frozen or live, the senders' deltas added, LayerNorms live; one pass per chunk of receivers.

    Decoders need this only with MLPs live (frozen, their stream is a sum); post-LN encoders always.
    """
    model = ctx.model
    n_layers = model.cfg.n_layers
    post_ln = _post_ln(model)
    n = len(ctx.prompts)
    out: list[torch.Tensor] = []
    per_pass = max(1, MAX_ROWS_PER_PASS // n)
    embeds = (NodeKind.EMBED, NodeKind.POS_EMBED)
    for lo in range(0, len(items), per_pass):
        chunk = items[lo : lo + per_pass]
        k = len(chunk)
        starts = [0 if d.node.kind in embeds else int(d.node.layer) for _, ds in chunk for d in ds]
        start = min(starts) if starts else 0
        # a post-LN model normalises the embeddings: their deltas enter before it, from the tokens
        from_tokens = post_ln and any(d.node.kind in embeds for _, ds in chunk for d in ds)
        if from_tokens:
            resid = runs.base_tokens.repeat(k, 1)
        else:
            resid = _resid_at(runs, start, n_layers, post_ln).repeat(k, 1, 1).clone()
        z_adds: dict[int, list[tuple[slice, int, torch.Tensor]]] = {}
        mlp_adds: dict[int, list[tuple[slice, None, torch.Tensor]]] = {}
        adds: dict[str, list[tuple[slice, _SenderDelta]]] = {}
        for j, (_, deltas) in enumerate(chunk):
            rows = slice(j * n, (j + 1) * n)
            for d in deltas:
                node = d.node
                if not from_tokens and (
                    node.kind in embeds or (node.kind is NodeKind.RESID_PRE and node.layer == start)
                ):
                    resid[rows] += d.resid
                elif node.kind in _HEAD_RECEIVERS:
                    z_adds.setdefault(int(node.layer), []).append((rows, int(node.head), d.delta))
                elif freeze_mlps and node.kind in _MLP_NODES:
                    mlp_adds.setdefault(int(node.layer), []).append((rows, None, d.resid))
                else:
                    adds.setdefault(_sender_hook(node), []).append((rows, d))
        hooks: list = []
        for layer in range(start, n_layers):
            hooks.append(_frozen_hook(runs, f"blocks.{layer}.attn.hook_z", k, z_adds.get(layer, ())))
            if freeze_mlps and not model.cfg.attn_only:
                hooks.append(_frozen_hook(runs, f"blocks.{layer}.hook_mlp_out", k, mlp_adds.get(layer, ())))
        for name, entries in adds.items():

            def add(act, hook, entries=entries):
                act = act.clone()
                for rows, d in entries:
                    if d.node.kind is NodeKind.MLP_NEURON:
                        act[rows, :, d.node.index] += d.delta
                    else:
                        act[rows] += d.delta
                return act

            hooks.append((name, add))
        sites: dict[str, torch.Tensor] = {}
        wanted = {_residual_site_hook(r, n_layers, post_ln) for r, _ in chunk}

        def grab(act, hook, sites=sites):
            sites[hook.name] = act.detach().clone()

        hooks.extend((name, grab) for name in wanted)
        # the pass can end with the last block a receiver reads in (the logits read after all of them)
        last = (
            n_layers
            if any(r.kind is NodeKind.LOGITS for r, _ in chunk)
            else max(int(r.layer) for r, _ in chunk)
        )
        stop = last + 1 if last + 1 < n_layers else None
        _counted_forward(ctx, resid, None if from_tokens else start, hooks, stop=stop)
        for j, (receiver, _) in enumerate(chunk):
            site = _residual_site_hook(receiver, n_layers, post_ln)
            out.append(sites[site][j * n : (j + 1) * n] - runs.base[site])
    return out


def _frozen_hook(
    runs: _Runs, name: str, copies: int, extra: Sequence[tuple[slice, int | None, torch.Tensor]]
) -> tuple[str, Callable]:
    """A hook that sets ``name`` to its base value on every copy, plus ``(rows, head, delta)`` deltas:
    ``head`` indexes ``hook_z``'s head axis, or is None for a residual-width output."""
    base = runs.base[name].repeat(copies, *([1] * (runs.base[name].dim() - 1)))

    def freeze(act, hook):
        act = base.clone()
        for rows, head, delta in extra:
            if head is None:
                act[rows] += delta
            else:
                act[rows, :, head] += delta
        return act

    return name, freeze


def path_patch_jobs(
    ctx: RunContext,
    jobs: Sequence[PathJob],
    *,
    mlps: str = "frozen",
    direction: str = "noising",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run many path-patching experiments in few batched passes.

    Returns ``(patched [n_jobs, n], base [n], source [n])`` metrics per prompt, where ``base`` is
    the run being patched (clean for noising) and ``source`` the other run.
    """
    if mlps not in ("frozen", "recomputed") or direction not in ("noising", "denoising"):
        raise CircuitSpecError(
            f"path patching: mlps must be frozen|recomputed and direction noising|denoising, "
            f"got {mlps}, {direction}"
        )
    model = ctx.model
    n_layers = model.cfg.n_layers
    post_ln = _post_ln(model)
    prompts = ctx.prompts
    n, seq = prompts.tokens.shape
    positions = {
        role: prompts.positions(role)
        for role in {p.role for job in jobs for hop in job.hops for pair in hop for p in pair if p.role}
    }
    positions["end"] = prompts.lengths - 1
    for job in jobs:
        for k, hop in enumerate(job.hops):
            for sender, receiver in hop:
                _check_pair(sender, receiver, n_layers)
                if k > 0 and sender not in {r for _, r in job.hops[k - 1]}:
                    raise CircuitSpecError(
                        f"path patching: '{sender}' sends on a later hop but receives nothing before it"
                    )
            if k + 1 < len(job.hops) and any(r.kind is NodeKind.LOGITS for _, r in hop):
                raise CircuitSpecError("path patching: logits can only end a path")

    runs = _get_runs(ctx, direction)
    mask_of: dict[tuple[NodeRef, bool], torch.Tensor] = {}

    def mask(node: NodeRef, sending: bool = False) -> torch.Tensor:
        key = (node, sending)
        if key not in mask_of:
            mask_of[key] = (_send_mask if sending else _pos_mask)(node, positions, n, seq)
        return mask_of[key]

    # hop 0 senders: source − base activations
    sent: list[dict[NodeRef, _SenderDelta]] = []
    for job in jobs:
        first = {}
        for sender, _ in job.hops[0]:
            first[sender] = _sender_delta(
                model,
                sender,
                _own_activation(sender, runs.source),
                _own_activation(sender, runs.base),
                mask(sender, sending=True),
            )
        sent.append(first)

    final_logits: list[torch.Tensor | None] = [None] * len(jobs)
    n_hops = max(len(job.hops) for job in jobs)
    finished: set[int] = set()
    need_mlp_in = any(r.kind in _MLP_NODES for job in jobs for hop in job.hops for _, r in hop)
    with _hook_mlp_in(model, need_mlp_in):
        for k in range(n_hops):
            active = [i for i, job in enumerate(jobs) if k < len(job.hops) and i not in finished]
            # the receivers' input deltas for this hop
            recv: dict[int, list[tuple[NodeRef, torch.Tensor, torch.Tensor]]] = {}
            receivers = {i: list(dict.fromkeys(r for _, r in jobs[i].hops[k])) for i in active}
            if mlps == "frozen" and not post_ln:  # the stream is a sum: no pass needed
                for i in active:
                    slots = []
                    for r in receivers[i]:
                        total = sum(sent[i][s].resid for s, rr in jobs[i].hops[k] if rr == r)
                        slots.append((r, total, mask(r)))
                    recv[i] = slots
            else:
                items = [
                    (r, [sent[i][s] for s, rr in jobs[i].hops[k] if rr == r])
                    for i in active
                    for r in receivers[i]
                ]
                deltas = iter(_passed_receiver_deltas(ctx, runs, items, freeze_mlps=mlps == "frozen"))
                for i in active:
                    recv[i] = [(r, next(deltas), mask(r)) for r in receivers[i]]
            # a job whose receivers' inputs do not change at all leaves the base run as it is
            for i in list(active):
                if all(not torch.any(delta * m) for _, delta, m in recv[i]):
                    final_logits[i] = runs.base_logits
                    finished.add(i)
                    active.remove(i)
            # one partial pass per start layer, batched over jobs
            by_start: dict[int, list[int]] = {}
            for i in active:
                first = min(_start_layer(r, n_layers, post_ln) for r in receivers[i])
                by_start.setdefault(first, []).append(i)
            for start, members in sorted(by_start.items()):
                per_pass = max(1, MAX_ROWS_PER_PASS // (n * max(len(recv[i]) for i in members)))
                for lo in range(0, len(members), per_pass):
                    chunk = members[lo : lo + per_pass]
                    _run_hop(ctx, runs, jobs, chunk, recv, sent, k, start, mask, final_logits)
    patched = torch.stack([ctx.metric(logits, prompts) for logits in final_logits])  # type: ignore[arg-type]
    base = ctx.metric(runs.base_logits, prompts)
    source_logits = (ctx.corrupted() if direction == "noising" else ctx.clean())[0]
    return patched, base, ctx.metric(source_logits, prompts)


def _run_hop(
    ctx: RunContext,
    runs: _Runs,
    jobs: Sequence[PathJob],
    chunk: Sequence[int],
    recv: Mapping[int, list[tuple[NodeRef, torch.Tensor, torch.Tensor]]],
    sent: list[dict[NodeRef, _SenderDelta]],
    k: int,
    start: int,
    mask: Callable[[NodeRef], torch.Tensor],
    final_logits: list[torch.Tensor | None],
) -> None:
    """Patch hop ``k``'s receivers for the jobs in ``chunk``; keep outputs (middle hops) or logits (last)."""
    model = ctx.model
    n_layers = model.cfg.n_layers
    n = len(ctx.prompts)
    job_row = {i: r for r, i in enumerate(chunk)}  # one block of n batch rows per job
    slots = [(job_row[i], node, delta, m) for i in chunk for node, delta, m in recv[i]]
    hooks, direct = _receiver_hooks(model, runs, slots, n, start)
    resid = _resid_at(runs, start, n_layers, _post_ln(model)).repeat(len(chunk), 1, 1).clone()
    for row, delta in direct:
        resid[row * n : (row + 1) * n] += delta
    last_hop = [i for i in chunk if k + 1 == len(jobs[i].hops)]
    middle = [i for i in chunk if k + 1 < len(jobs[i].hops)]
    outputs: dict[str, torch.Tensor] = {}
    if middle:
        wanted = {_sender_hook(r) for i in middle for r, _, _ in recv[i]}

        def grab(act, hook):
            outputs[hook.name] = act.detach().clone()

        hooks = hooks + [(name, grab) for name in wanted]
    if start >= n_layers and not middle:
        logits = _unembed_end(ctx, resid)
    elif not last_hop:  # only the middle receivers' outputs are needed: stop after their layers
        stop = max(int(r.layer) for i in middle for r, _, _ in recv[i]) + 1
        logits = _counted_forward(ctx, resid, start, hooks, stop=stop if stop < n_layers else None)
    else:
        logits = _counted_forward(ctx, resid, start, hooks)
    for i in last_hop:
        row = job_row[i]
        final_logits[i] = logits[row * n : (row + 1) * n]
    for i in middle:
        row = job_row[i]
        nxt = {}
        for r, _, _ in recv[i]:
            own = _own_activation(r, {name: t[row * n : (row + 1) * n] for name, t in outputs.items()})
            nxt[r] = _sender_delta(model, r, own, _own_activation(r, runs.base), mask(r, sending=True))
        sent[i] = nxt


def _unembed_end(ctx: RunContext, resid: torch.Tensor) -> torch.Tensor:
    """Logits from a final residual stream (no forward pass): ln_final and unembedding at the end tokens;
    an encoder's sentence embedding (its pooling) instead."""
    model = ctx.model
    n = len(ctx.prompts)
    if _post_ln(model):
        with torch.inference_mode():
            return model.readout(resid, _attention_mask(ctx, resid.shape[0]))
    ends = (ctx.prompts.lengths - 1).repeat(resid.shape[0] // n)
    last = resid[torch.arange(resid.shape[0]), ends][:, None]  # [rows, 1, d]
    with torch.inference_mode():
        normed = model.ln_final(last) if model.cfg.normalization_type is not None else last
        return model.unembed(normed)[:, 0]  # [rows, vocab]: metrics read 2-D logits as end-token logits


def path_patch_edges(
    ctx: RunContext,
    edges: Sequence[Pair],
    *,
    mlps: str = "frozen",
    direction: str = "noising",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Patch each edge ``(sender, receiver)`` on its own; ``(patched [n_edges, n], base [n], source [n])``."""
    return path_patch_jobs(ctx, [PathJob.joint([edge]) for edge in edges], mlps=mlps, direction=direction)


def measure_path_patching(ctx: RunContext, claim: Any, graph: Any) -> Measurement:
    """The planner's entry point for a ``path_patching`` claim.

    One chain (any length) is patched hop by hop; several single-edge chains are patched jointly
    (each receiver gets the sum of its own senders' deltas). ``value`` = patched − base metric.
    """
    chains = graph.chains(claim.id)
    if not chains:
        raise CircuitSpecError(
            f"claim '{claim.id}': path patching needs at least one edge 'A -> B' among its targets"
        )
    if len(chains) == 1:
        job = PathJob.chain(chains[0])
    elif all(len(chain) == 2 for chain in chains):
        job = PathJob.joint([(chain[0], chain[1]) for chain in chains])
    else:
        raise CircuitSpecError(
            f"claim '{claim.id}': several multi-hop paths cannot be patched jointly "
            "(use each: true, one path per claim)"
        )
    passes0, tokens0 = ctx.counter.forward_passes, ctx.counter.tokens
    t0 = time.perf_counter()
    patched, base, source = path_patch_jobs(ctx, [job], mlps=claim.mlps, direction=claim.direction)
    clean, corrupt = (base, source) if claim.direction == "noising" else (source, base)
    arrays = {
        "value": (patched[0] - base).float().cpu().numpy(),
        "clean": clean.float().cpu().numpy(),
        "corrupt": corrupt.float().cpu().numpy(),
        "intervened": patched[0].float().cpu().numpy(),
    }
    cost = RunCost(
        forward_passes=ctx.counter.forward_passes - passes0,
        tokens=ctx.counter.tokens - tokens0,
        seconds=time.perf_counter() - t0,
    )
    return Measurement(
        claim_id=claim.id,
        kind="path_patching",
        n_prompts=len(ctx.prompts),
        arrays={k: np.asarray(v) for k, v in arrays.items()},
        cost=cost,
    )


# ----------------------------------------------------------------------------------- naive reference


def naive_path_patch(
    model: Any,
    clean_tokens: torch.Tensor,
    corrupt_tokens: torch.Tensor,
    edge: Sequence[NodeRef] | PathJob,
    *,
    positions: Mapping[str, torch.Tensor] | None = None,
    mlps: str = "frozen",
    direction: str = "noising",
    caches: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None,
    count: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """The IOI three-step algorithm with plain TransformerLens hooks; returns the patched logits.

    ``edge`` is a chain of nodes (``[A, B]`` or ``[A, B, C, ...]``) or a :class:`PathJob`. Per hop:
    (2) rerun the base prompt with the senders set to their source value, every other head frozen
    to its base value (and MLPs frozen unless ``mlps='recomputed'``), caching the receivers' inputs
    from ``hook_{q,k,v}_input`` / ``hook_mlp_in`` / residual hooks; (3) rerun with only the receivers'
    inputs patched. ``caches`` = (clean, corrupt) full run caches (computed here when None, step 1).
    ``count(batch)`` is called once per forward pass.
    """
    job = edge if isinstance(edge, PathJob) else PathJob.chain(list(edge))
    positions = dict(positions or {})
    n, seq = clean_tokens.shape
    n_layers = model.cfg.n_layers
    count = count or (lambda _batch: None)
    old_split, old_mlp_in = model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in
    model.set_use_split_qkv_input(True)
    model.set_use_hook_mlp_in(True)
    try:
        with torch.inference_mode():
            if caches is None:
                names = run_cache_names(model)
                caches = tuple(  # type: ignore[assignment]
                    model.run_with_cache(tokens, names_filter=names)[1].cache_dict
                    for tokens in (clean_tokens, corrupt_tokens)
                )
                count(n)
                count(n)
            clean_cache, corrupt_cache = caches  # type: ignore[misc]
            base_tokens, base, source = (
                (clean_tokens, clean_cache, corrupt_cache)
                if direction == "noising"
                else (corrupt_tokens, corrupt_cache, clean_cache)
            )

            def mask(node: NodeRef) -> torch.Tensor:
                return _pos_mask(node, positions, n, seq)

            def send_mask(node: NodeRef) -> torch.Tensor:
                return _send_mask(node, positions, n, seq)

            # sender values in hook space for the current hop: node -> full own activation
            sender_values = {s: _own_activation(s, source) for s, _ in job.hops[0]}
            logits = None
            for k, hop in enumerate(job.hops):
                receivers = list(dict.fromkeys(r for _, r in hop))
                receiver_inputs: dict[NodeRef, torch.Tensor] = {}
                for receiver in receivers:
                    senders = [s for s, r in hop if r == receiver]
                    receiver_inputs[receiver] = _naive_step2(
                        model, base_tokens, base, senders, sender_values, receiver, send_mask, mlps
                    )
                    count(n)
                # step 3: patch the receivers' inputs, recompute everything else
                hooks = []
                for receiver in receivers:
                    hooks.extend(
                        _naive_receiver_patch(receiver, receiver_inputs[receiver], mask(receiver), n_layers)
                    )
                grabbed: dict[str, torch.Tensor] = {}
                if k + 1 < len(job.hops):

                    def grab(act, hook, grabbed=grabbed):
                        grabbed[hook.name] = act.detach().clone()

                    hooks.extend((_sender_hook(r), grab) for r in receivers)
                logits = model.run_with_hooks(base_tokens, fwd_hooks=hooks)
                count(n)
                sender_values = (
                    {r: _own_activation(r, grabbed) for r in receivers} if k + 1 < len(job.hops) else {}
                )
            assert logits is not None
            return logits
    finally:
        model.set_use_split_qkv_input(old_split)
        model.set_use_hook_mlp_in(old_mlp_in)


def _naive_step2(
    model: Any,
    tokens: torch.Tensor,
    base: Mapping[str, torch.Tensor],
    senders: Sequence[NodeRef],
    sender_values: Mapping[NodeRef, torch.Tensor],
    receiver: NodeRef,
    mask: Callable[[NodeRef], torch.Tensor],
    mlps: str,
) -> torch.Tensor:
    """Step 2: senders patched, other heads (and frozen MLPs) at base values; returns the receiver's input."""
    n_layers = model.cfg.n_layers
    hooks = []
    for layer in range(n_layers):
        name = f"blocks.{layer}.attn.hook_z"
        here = [s for s in senders if s.kind in _HEAD_RECEIVERS and s.layer == layer]

        def set_z(act, hook, name=name, here=here):
            act = base[name].clone()
            for s in here:
                m = mask(s)
                act[:, :, s.head] = act[:, :, s.head] * (1 - m) + sender_values[s] * m
            return act

        hooks.append((name, set_z))
        if mlps == "frozen":
            neurons = [s for s in senders if s.kind is NodeKind.MLP_NEURON and s.layer == layer]
            if neurons:
                post = f"blocks.{layer}.mlp.hook_post"

                def set_post(act, hook, post=post, neurons=neurons):
                    act = base[post].clone()
                    for s in neurons:
                        m = mask(s)[..., 0]
                        act[..., s.index] = act[..., s.index] * (1 - m) + sender_values[s] * m
                    return act

                hooks.append((post, set_post))
            else:
                out = f"blocks.{layer}.hook_mlp_out"
                hooks.append((out, lambda act, hook, out=out: base[out].clone()))
    for s in senders:
        if s.kind in _HEAD_RECEIVERS:
            continue
        if s.kind is NodeKind.MLP_NEURON and mlps == "frozen":
            continue
        name = _sender_hook(s)

        def set_act(act, hook, s=s):
            m = mask(s)
            if s.kind is NodeKind.MLP_NEURON:
                m = m[..., 0]
                act = act.clone()
                act[..., s.index] = act[..., s.index] * (1 - m) + sender_values[s] * m
                return act
            return act * (1 - m) + sender_values[s] * m

        hooks.append((name, set_act))
    if receiver.kind in _HEAD_RECEIVERS:
        read = f"blocks.{receiver.layer}.hook_{_channels(receiver)[0]}_input"
    elif receiver.kind in _MLP_NODES:
        read = f"blocks.{receiver.layer}.hook_mlp_in"
    else:
        read = _residual_site_hook(receiver, n_layers)
    seen: dict[str, torch.Tensor] = {}

    def grab(act, hook):
        seen["x"] = act.detach().clone()

    hooks.append((read, grab))
    model.run_with_hooks(tokens, fwd_hooks=hooks)
    value = seen["x"]
    return value[:, :, receiver.head] if receiver.kind in _HEAD_RECEIVERS else value


def _naive_receiver_patch(receiver: NodeRef, value: torch.Tensor, mask: torch.Tensor, n_layers: int) -> list:
    """Step 3 hooks: overwrite the receiver's input(s) with the step-2 value at its positions."""
    if receiver.kind in _HEAD_RECEIVERS:
        hooks = []
        for chan in _channels(receiver):

            def patch(act, hook, h=receiver.head):
                act = act.clone()
                act[:, :, h] = act[:, :, h] * (1 - mask) + value * mask
                return act

            hooks.append((f"blocks.{receiver.layer}.hook_{chan}_input", patch))
        return hooks
    name = (
        f"blocks.{receiver.layer}.hook_mlp_in"
        if receiver.kind in _MLP_NODES
        else _residual_site_hook(receiver, n_layers)
    )
    return [(name, lambda act, hook: act * (1 - mask) + value * mask)]
