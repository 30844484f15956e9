"""Attribution patching: first-order (gradient) estimates of activation and path patching.

Per node (a head's ``hook_z``, an MLP's ``hook_mlp_out``, the token embedding) the score is
``Σ_positions (a_corrupt − a_clean) · ∂metric/∂a``: the linear estimate of the metric's change when
that node takes its corrupted value in the clean run (noising; same units as the metric). Per edge
(EAP, Syed et al. 2023) it is ``Σ_positions Δ_sender · ∂metric/∂(receiver input)``, where
``Δ_sender`` is what the sender writes into the residual stream in the corrupted run minus the clean
run and the receiver input is a head's q / k / v input, an MLP's input or the final stream the
unembedding reads: the estimate of path patching that one edge. EAP-IG (Hanna et al. 2024) averages
the gradients over ``steps`` points on the straight line between the corrupted and clean token
embeddings (α = 0, 1/steps, …, (steps − 1)/steps, as in the EAP-IG reference code), which undoes most
of the saturation a single clean-run gradient suffers from (a hard attention pattern has ~0 gradient).
EAP-IG on activations (``eap-ig-act``) moves one sender component's output at a time (the embedding,
one layer's heads, one MLP) along those points with everything else clean: ``2 × layers + 1`` times the
passes, and it sees edges whose effect needs the receiver's other inputs to stay clean.

Scores are kept per position bucket (each named role, ``end``, ``other``) so a discovered edge can be
pinned to the role it acts at, and averaged over prompts. One forward + backward pass per batch of
prompts, step (and component); no randomness. Needs a pre-norm decoder whose residual stream is a
sum of per-head writes (refused elsewhere, one line). This module runs the model with gradients on, which the
adapter's forward (inference mode) does not offer, so it is one of the modules that call the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from circuitspec.errors import CircuitSpecError

from .adapter import ModelAdapter
from .architecture import Architecture
from .context import RunContext
from .metrics import METRICS, final_logits
from .prompts import PromptSet

__all__ = [
    "METHODS", "Attribution", "EdgeGraph", "attribution_patching", "edge_graph", "model_edge_graph",
    "position_buckets",
]  # fmt: skip

METHODS = ("eap", "eap-ig", "eap-ig-act")

OTHER, END = "other", "end"
Acts = dict[str, torch.Tensor]


@dataclass(frozen=True)
class EdgeGraph:
    """Senders (``embed``, ``L0H0``, ``MLP0``) × receivers (``L1H0.q|k|v``, ``MLP1``, ``logits``);
    ``valid[s, r]``: the sender is upstream of the receiver."""

    senders: list[str]
    receivers: list[str]
    valid: torch.Tensor


def edge_graph(n_layers: int, n_heads: int, *, attn_only: bool = False, parallel: bool = False) -> EdgeGraph:
    """Every edge of a decoder: each component's write into each later component's input."""
    senders, s_level, receivers, r_level = ["embed"], [-1], [], []
    for layer in range(n_layers):
        for head in range(n_heads):
            senders.append(f"L{layer}H{head}")
            s_level.append(2 * layer)
            for channel in "qkv":
                receivers.append(f"L{layer}H{head}.{channel}")
                r_level.append(2 * layer)
        if not attn_only:
            senders.append(f"MLP{layer}")
            s_level.append(2 * layer + 1)
            receivers.append(f"MLP{layer}")
            r_level.append(2 * layer if parallel else 2 * layer + 1)  # parallel: reads the block's input
    receivers.append("logits")
    r_level.append(2 * n_layers)
    valid = torch.tensor(s_level)[:, None] < torch.tensor(r_level)[None, :]
    return EdgeGraph(senders, receivers, valid)


@dataclass
class Attribution:
    """Edge scores ``[bucket, sender, receiver]`` and node scores (mean over prompts, metric units)."""

    graph: EdgeGraph
    buckets: list[str]
    edge_scores: torch.Tensor
    node_scores: dict[str, float]
    clean: float  # mean metric of the clean prompts
    corrupt: float  # ... of their corrupted twins (scored on the clean answers)
    method: str
    steps: int
    n_prompts: int
    backward_passes: int

    @property
    def totals(self) -> torch.Tensor:
        """``[sender, receiver]`` edge scores summed over position buckets (invalid edges 0)."""
        return self.edge_scores.sum(0) * self.graph.valid

    def ranked(self) -> list[tuple[str, str, float, dict[str, float]]]:
        """Valid edges by decreasing |score|: (sender, receiver, score, score per position bucket)."""
        totals = self.totals
        order = torch.argsort(totals.abs().flatten(), descending=True, stable=True)
        n_r = len(self.graph.receivers)
        out = []
        for flat in order.tolist():
            s, r = divmod(flat, n_r)
            if not bool(self.graph.valid[s, r]):
                continue
            per = {b: float(self.edge_scores[k, s, r]) for k, b in enumerate(self.buckets)}
            out.append((self.graph.senders[s], self.graph.receivers[r], float(totals[s, r]), per))
        return out


def attribution_patching(
    ctx: RunContext,
    *,
    method: str = "eap-ig",
    steps: int = 5,
    metric: str = "logit_diff",
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Attribution:
    """EAP (``method="eap"``, the clean run's gradient), EAP-IG (``"eap-ig"``, ``steps`` points between
    the corrupted and clean embeddings) or EAP-IG on activations (``"eap-ig-act"``: per component,
    ``steps`` points between its corrupted and clean output, everything else clean)."""
    arch = ctx.adapter.arch
    _check(arch, method, steps, metric)
    alphas = [1.0] if method == "eap" else [k / steps for k in range(steps)]
    graph = model_edge_graph(arch)
    buckets, bucket_of = position_buckets(ctx.prompts)
    names = [
        "hook_embed",
        *(f"blocks.{layer}.{h}" for layer in range(arch.n_layers) for h in _sender_hooks(arch)),
    ]
    clean_logits, clean = ctx.clean(names)
    corrupt_logits, corrupt = ctx.corrupted(names)
    n = len(ctx.prompts)
    step = batch_size or max(1, min(32, ctx.prompts_per_pass() // 4))
    groups = _groups(graph, arch, method)
    scores = torch.zeros(len(buckets), len(graph.senders), len(graph.receivers))
    nodes: dict[str, float] = {}
    passes, total = 0, len(range(0, n, step)) * len(alphas) * len(groups)
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        sub = ctx.prompts.take(rows)
        deltas = _deltas(ctx.adapter, clean, corrupt, rows)
        for hook, senders in groups:
            grads = _mean_gradients(
                ctx, sub, hook, clean[hook][rows], corrupt[hook][rows], alphas, METRICS[metric]
            )
            scores += _bucket_scores(
                deltas, _receiver_grads(grads, graph), bucket_of[rows], len(buckets), senders
            )
            mine = None if senders is None else {graph.senders[i] for i in senders}
            for name, value in _node_scores(deltas, grads, arch).items():
                if mine is None or name in mine:
                    nodes[name] = nodes.get(name, 0.0) + value
            passes += len(alphas)
            if progress is not None:
                progress(passes, total)
    measured = METRICS[metric]
    return Attribution(
        graph, buckets, scores / n, {k: v / n for k, v in nodes.items()},
        clean=float(measured(clean_logits, ctx.prompts).float().mean()),
        corrupt=float(measured(corrupt_logits, ctx.prompts).float().mean()),
        method=method, steps=len(alphas), n_prompts=n, backward_passes=passes,
    )  # fmt: skip


def _check(arch: Architecture, method: str, steps: int, metric: str) -> None:
    """One line for a model, method or metric attribution patching cannot use."""
    if arch.encoder or not arch.stream_is_sum or arch.sublayer_output_norms:
        raise CircuitSpecError(
            "attribution patching needs a pre-norm decoder whose stream is a sum of per-head writes "
            "(not an encoder, not Gemma 2/3's normalised attention output)"
        )
    if method not in METHODS or steps < 1:
        raise CircuitSpecError(
            f"attribution patching: method must be {'|'.join(METHODS)} and steps >= 1, got {method}, {steps}"
        )
    if metric not in METRICS:
        raise CircuitSpecError(f"attribution patching: metric '{metric}' (valid: {', '.join(METRICS)})")


def _groups(graph: EdgeGraph, arch: Architecture, method: str) -> list[tuple[str, list[int] | None]]:
    """What each gradient pass interpolates and whose edges it scores (None: every sender)."""
    if method != "eap-ig-act":
        return [("hook_embed", None)]
    out: list[tuple[str, list[int] | None]] = [("hook_embed", [0])]
    for layer in range(arch.n_layers):
        heads = [graph.senders.index(f"L{layer}H{h}") for h in range(arch.n_heads)]
        out.append((f"blocks.{layer}.attn.hook_z", heads))
        if not arch.attn_only:
            out.append((f"blocks.{layer}.hook_mlp_out", [graph.senders.index(f"MLP{layer}")]))
    return out


def _sender_hooks(arch: Architecture) -> list[str]:
    return ["attn.hook_z"] if arch.attn_only else ["attn.hook_z", "hook_mlp_out"]


def model_edge_graph(arch: Architecture) -> EdgeGraph:
    """The edges of a model of shape ``arch`` (what attribution patching and edge patching score)."""
    return edge_graph(arch.n_layers, arch.n_heads, attn_only=arch.attn_only, parallel=arch.parallel_attn_mlp)


def position_buckets(prompts: PromptSet) -> tuple[list[str], torch.Tensor]:
    """Bucket names (roles, ``end``, ``other``) and ``[n, pos]`` bucket index (−1 on padding); a
    position that is a named role's counts for that role, before ``end``."""
    roles = sorted(r for r in prompts.role_positions if r != END)
    names = [*roles, END, OTHER]
    n, seq = prompts.tokens.shape
    index = torch.full((n, seq), len(names) - 1, dtype=torch.long)
    rows = torch.arange(n)
    index[rows, prompts.lengths - 1] = names.index(END)
    for k, role in enumerate(roles):
        index[rows, prompts.role_positions[role]] = k
    index[prompts.attention_mask == 0] = -1
    return names, index


def _grad_hook_names(arch: Architecture) -> list[str]:
    """Receiver inputs and node outputs whose gradients are read, in a fixed order."""
    names = []
    for layer in range(arch.n_layers):
        names += [f"blocks.{layer}.hook_{c}_input" for c in "qkv"] + [f"blocks.{layer}.attn.hook_z"]
        if not arch.attn_only:
            names += [f"blocks.{layer}.hook_mlp_in", f"blocks.{layer}.hook_mlp_out"]
    return [*names, f"blocks.{arch.n_layers - 1}.hook_resid_post"]


def _mean_gradients(
    ctx: RunContext,
    sub: PromptSet,
    hook: str,
    clean: torch.Tensor,
    corrupt: torch.Tensor,
    alphas: list[float],
    metric: Callable[..., torch.Tensor],
) -> Acts:
    """Gradients of the batch's summed metric at every receiver input and node output, averaged over
    the points ``corrupt + α (clean − corrupt)`` that replace ``hook``'s activation."""
    adapter, arch = ctx.adapter, ctx.adapter.arch
    names = ["hook_embed", *_grad_hook_names(arch)]
    lo, hi = clean.to(adapter.device), corrupt.to(adapter.device)
    total: Acts = {}
    for alpha in alphas:
        leaf = (hi + alpha * (lo - hi)).detach().requires_grad_(True)
        saved: Acts = {hook: leaf}

        def save(act: torch.Tensor, hook: Any, saved: Acts = saved) -> None:
            saved.setdefault(hook.name, act)

        hooks = [(hook, lambda act, hook, leaf=leaf: leaf), *((name, save) for name in names if name != hook)]
        ctx.counter.add(int(sub.tokens.shape[0]), int(sub.lengths.sum()))
        logits = _grad_forward(adapter, sub.tokens, hooks)
        value = metric(final_logits(logits, sub), sub).sum()
        wanted = [name for name in names if saved[name].requires_grad]
        grads = dict(
            zip(
                wanted, torch.autograd.grad(value, [saved[n] for n in wanted], allow_unused=True), strict=True
            )
        )
        for name in names:
            grad = grads.get(name)
            g = torch.zeros_like(saved[name]) if grad is None else grad.detach()
            total[name] = total[name] + g if name in total else g
    return {k: v / len(alphas) for k, v in total.items()}


def _grad_forward(adapter: ModelAdapter, tokens: torch.Tensor, hooks: list[Any]) -> torch.Tensor:
    """Logits ``[rows, pos, vocab]`` of one pass with gradients on, split q/k/v and MLP inputs."""
    model = adapter.model
    split = adapter.split_inputs() if not adapter.arch.attn_only else _split_qkv_only(model)
    with torch.enable_grad(), split, model.hooks(fwd_hooks=hooks):
        return model(tokens.to(adapter.device))


@contextlib.contextmanager
def _split_qkv_only(model: Any) -> Iterator[None]:
    """Per-head q/k/v input hooks on an attention-only model (it has no MLP input to split)."""
    old = model.cfg.use_split_qkv_input
    model.set_use_split_qkv_input(True)
    try:
        yield
    finally:
        model.set_use_split_qkv_input(old)


def _deltas(adapter: ModelAdapter, clean: Acts, corrupt: Acts, rows: slice) -> Acts:
    """What each sender writes in the corrupted run minus the clean run: ``embed`` ``[b, pos, d]``,
    ``L<l>`` (every head of layer l) ``[b, pos, heads, d]``, ``MLP<l>`` ``[b, pos, d]``; and the raw
    differences of ``hook_z`` (``z<l>``) for node scores."""
    out = {"embed": (corrupt["hook_embed"][rows] - clean["hook_embed"][rows]).float().cpu()}
    for layer in range(adapter.arch.n_layers):
        name = f"blocks.{layer}.attn.hook_z"
        dz = (corrupt[name][rows] - clean[name][rows]).to(adapter.device)  # the model's dtype
        out[f"z{layer}"] = dz.float().cpu()
        with torch.no_grad():
            out[f"L{layer}"] = adapter.head_writes(layer, dz).float().cpu()
        if not adapter.arch.attn_only:
            name = f"blocks.{layer}.hook_mlp_out"
            out[f"MLP{layer}"] = (corrupt[name][rows] - clean[name][rows]).float().cpu()
    return out  # on the CPU, in float32, like the gradients they meet


def _receiver_grads(grads: dict[str, torch.Tensor], graph: EdgeGraph) -> torch.Tensor:
    """``[b, pos, receiver, d]`` gradients at each receiver's input, in ``graph.receivers`` order."""
    parts = []
    n_layers = 1 + max(int(r[1 : r.index("H")]) for r in graph.receivers if r.startswith("L"))
    for layer in range(n_layers):
        q, k, v = (grads[f"blocks.{layer}.hook_{c}_input"].float().cpu() for c in "qkv")
        parts.append(torch.stack([q, k, v], dim=3).flatten(2, 3))  # head-major: h0.q h0.k h0.v h1.q ...
        if f"blocks.{layer}.hook_mlp_in" in grads:
            parts.append(grads[f"blocks.{layer}.hook_mlp_in"].float().cpu()[:, :, None])
    parts.append(grads[f"blocks.{n_layers - 1}.hook_resid_post"].float().cpu()[:, :, None])
    return torch.cat(parts, dim=2)


def _sender_stack(deltas: dict[str, torch.Tensor], n_layers: int) -> torch.Tensor:
    """``[b, pos, sender, d]`` sender deltas in ``EdgeGraph.senders`` order."""
    parts = [deltas["embed"][:, :, None]]
    for layer in range(n_layers):
        parts.append(deltas[f"L{layer}"])
        if f"MLP{layer}" in deltas:
            parts.append(deltas[f"MLP{layer}"][:, :, None])
    return torch.cat(parts, dim=2)


def _bucket_scores(
    deltas: Acts,
    receiver_grads: torch.Tensor,
    bucket_of: torch.Tensor,
    n_buckets: int,
    only: list[int] | None,
) -> torch.Tensor:
    """``[bucket, sender, receiver]`` sums over the batch of ``Δ_sender · grad_receiver`` per position
    bucket (the senders ``only``, the others 0): one matrix product per bucket over its rows."""
    n_layers = sum(1 for k in deltas if k.startswith("z"))
    senders = _sender_stack(deltas, n_layers)
    out = torch.zeros(n_buckets, senders.shape[2], receiver_grads.shape[2])
    index = torch.arange(senders.shape[2]) if only is None else torch.tensor(only)
    senders = senders[:, :, index]
    for k in range(n_buckets):
        where = bucket_of == k
        if not bool(where.any()):
            continue
        s, g = senders[where], receiver_grads[where]  # [N, S, d], [N, R, d]
        out[k, index] = s.transpose(0, 1).flatten(1) @ g.transpose(0, 1).flatten(1).T
    return out


def _node_scores(deltas: Acts, grads: Acts, arch: Architecture) -> dict[str, float]:
    """Per head, MLP and the embedding: ``Σ Δa · ∂metric/∂a`` over the batch and every position."""
    out = {"embed": float((deltas["embed"] * grads["hook_embed"].float().cpu()).sum())}
    for layer in range(arch.n_layers):
        per_head = (deltas[f"z{layer}"] * grads[f"blocks.{layer}.attn.hook_z"].float().cpu()).sum((0, 1, 3))
        for head, value in enumerate(per_head.tolist()):
            out[f"L{layer}H{head}"] = value
        if not arch.attn_only:
            grad = grads[f"blocks.{layer}.hook_mlp_out"].float().cpu()
            out[f"MLP{layer}"] = float((deltas[f"MLP{layer}"] * grad).sum())
    return out
