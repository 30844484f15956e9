"""Faithfulness: run the model with everything *outside* a circuit ablated.

Entry point: :func:`faithfulness`. Every head (``hook_z`` per head) and MLP (``hook_mlp_out``) not in
the circuit is ablated at every position (mean over the prompt set by default); a circuit head or
MLP pinned to a role is kept only at that role's position. A head named through a channel
(``L7H5.v``, ``.q``, ``.k``, ``.pattern``) keeps the whole head, a shared key/value head
(``L7KV1.v``) every head of its group. Embeddings are always kept. The
baseline ablates every head and MLP (one pass with the circuit, from block 0's cached input); normalized
recovery is
``(circuit − baseline) / (clean − baseline)`` per prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from circuitspec.engine.architecture import Architecture
from circuitspec.engine.context import RunContext
from circuitspec.engine.edits import Edit, run_edits, start_hooks
from circuitspec.engine.interventions.ablation import ablation_source
from circuitspec.engine.sites import Site
from circuitspec.spec.geometry import hook_name
from circuitspec.spec.nodes import NodeKind, NodeRef

__all__ = ["Faithfulness", "circuits_only", "complement_edits", "faithfulness", "fully_ablated"]

_HEAD_CHANNELS = (NodeKind.HEAD_Q, NodeKind.HEAD_K, NodeKind.HEAD_V, NodeKind.HEAD_PATTERN)


@dataclass
class Faithfulness:
    clean: torch.Tensor  # [n] metric, nothing ablated
    baseline: torch.Tensor  # [n] every head and MLP ablated
    circuit: torch.Tensor  # [n] everything outside the circuit ablated
    recovery: torch.Tensor  # [n] (circuit − baseline) / (clean − baseline)


def _all_components(arch: Architecture) -> list[Site]:
    """One all-positions site per head and per MLP."""
    sites = []
    for layer in range(arch.n_layers):
        for head in range(arch.n_heads):
            node = NodeRef(f"L{layer}H{head}", NodeKind.HEAD, layer=layer, head=head)
            sites.append(Site(node, hook_name(node), head, None, None))
        if not arch.attn_only:
            node = NodeRef(f"MLP{layer}", NodeKind.MLP, layer=layer)
            sites.append(Site(node, hook_name(node), None, None, None))
    return sites


def _kept(site: Site) -> Site | None:
    """The head-output / MLP-output slice a circuit node keeps (None: the node keeps nothing ablatable)."""
    node = site.node
    if node.is_kv:  # a shared key/value head keeps every head of its group
        outputs = NodeRef(node.component, NodeKind.HEAD, layer=node.layer, kv_head=node.kv_head)
        return Site(outputs, hook_name(outputs), site.head, None, None)
    if node.kind in _HEAD_CHANNELS:
        head = NodeRef(f"L{node.layer}H{node.head}", NodeKind.HEAD, layer=node.layer, head=node.head)
        return Site(head, hook_name(head), node.head, None, None)
    if node.kind in (NodeKind.HEAD, NodeKind.MLP):
        return site
    if node.kind in (NodeKind.MLP_IN, NodeKind.MLP_NEURON):
        mlp = NodeRef(f"MLP{node.layer}", NodeKind.MLP, layer=node.layer)
        return Site(mlp, hook_name(mlp), None, None, None)
    return None  # embeddings and residual sites: nothing to keep (they are never ablated)


def complement_edits(
    ctx: RunContext, circuits: Sequence[Sequence[Site]], method: str = "mean", seed: int = 0
) -> dict[str, Edit]:
    """Edits ablating every head/MLP outside each circuit, stacked along the batch axis.

    Memory: a mask is ``[copies·n, pos, heads, 1]`` (``hook_z``) or ``[copies·n, pos, 1]``, broadcast
    over the last axis, and the ablated values are one copy's, shared by every circuit (``Edit``)."""
    components = _all_components(ctx.adapter.arch)
    names = sorted({s.hook_name for s in components})
    ctx.need(start_hooks(names, ctx.adapter.arch))  # the ablated pass starts at block 0's input
    _, cache = ctx.clean(names)
    sources = {name: ablation_source(ctx, Site(None, name, None, None, None), method, seed) for name in names}  # type: ignore[arg-type]
    edits: dict[str, Edit] = {}
    for name in names:
        act = cache[name]
        shape = (*act.shape[:-1], 1)  # every site here covers a head's or an MLP's whole last axis
        masks = []
        for circuit in circuits:
            mask = torch.zeros(shape, dtype=torch.bool, device=act.device)
            for site in components:
                if site.hook_name == name:
                    mask |= site.mask(mask)
            for site in circuit:
                kept = _kept(site)
                if kept is not None and kept.hook_name == name:
                    mask &= ~kept.mask(mask)
            masks.append(mask)
        source = sources[name]
        assert source is not None  # zero / mean / resample always write a value
        edits[name] = Edit(mask=torch.cat(masks), values=source)
    return edits


def fully_ablated(ctx: RunContext, method: str = "mean", seed: int = 0) -> torch.Tensor:
    """Metric ``[n]`` with every head and MLP ablated: computed once per prompt set, method and seed,
    and shared by faithfulness claims and their random-circuit baselines."""

    def compute() -> torch.Tensor:
        edits = complement_edits(ctx, [[]], method, seed)
        return ctx.metric(run_edits(ctx, ctx.prompts.tokens, edits), ctx.prompts).float().cpu()

    return ctx.cached(f"faithfulness:ablated:{method}:{seed}", compute)


def circuits_only(
    ctx: RunContext, circuits: Sequence[Sequence[Site]], method: str = "mean", seed: int = 0
) -> torch.Tensor:
    """Metric ``[len(circuits), n]`` with everything outside each circuit ablated."""
    if method not in ("zero", "mean", "resample"):
        raise ValueError(f"faithfulness ablation '{method}' is not one of zero, mean, resample")
    edits = complement_edits(ctx, [list(c) for c in circuits], method, seed)
    logits = run_edits(ctx, ctx.prompts.tokens, edits, copies=len(circuits))
    n = len(ctx.prompts)
    return torch.stack(
        [ctx.metric(logits[c * n : (c + 1) * n], ctx.prompts).float().cpu() for c in range(len(circuits))]
    )


def faithfulness(ctx: RunContext, sites: Sequence[Site], method: str = "mean", seed: int = 0) -> Faithfulness:
    """Clean, fully ablated and circuit-only metrics ``[n]`` and the per-prompt normalized recovery."""
    circuit = circuits_only(ctx, [list(sites)], method, seed)[0]
    baseline = fully_ablated(ctx, method, seed)
    clean = ctx.metric(ctx.clean()[0], ctx.prompts).float().cpu()
    return Faithfulness(clean, baseline, circuit, (circuit - baseline) / (clean - baseline))
