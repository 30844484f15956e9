"""Path patching the slow way: the IOI three-step algorithm with plain TransformerLens hooks.

The reference the batched engine (``circuitspec.engine.paths``) is tested and benchmarked against:
per hop (2) rerun the base prompt with the senders at their source value and every other head (and,
MLPs frozen, every MLP) at its base value, reading each receiver's input from
``hook_{q,k,v}_input`` / ``hook_mlp_in`` / its residual hook; (3) rerun with only the receivers'
inputs patched. Hook names come from the node geometry; nothing of the engine's algorithms is used.
A shared key/value head (``L1KV0.v``, grouped-query attention loaded ungrouped) acts on the copies
of every query head of its group at once: its group is computed here from the model's config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from circuitspec.claims.hooks import path_run_hooks
from circuitspec.engine.paths import PathJob
from circuitspec.spec.geometry import receive_channels, residual_input_hook, sender_hook, sends_where_pinned
from circuitspec.spec.nodes import NodeKind, NodeRef

__all__ = ["naive_path_patch", "run_cache_names"]

_HEAD_RECEIVERS = (
    NodeKind.HEAD,
    NodeKind.HEAD_Q,
    NodeKind.HEAD_K,
    NodeKind.HEAD_V,
    NodeKind.KV_K,
    NodeKind.KV_V,
)
_MLP_NODES = (NodeKind.MLP, NodeKind.MLP_IN, NodeKind.MLP_NEURON)


def run_cache_names(model: Any) -> list[str]:
    """The activations path patching reads from the clean and corrupted runs (those the model has)."""
    return [name for name in path_run_hooks(model.cfg) if name in model.hook_dict]


def _channels(node: NodeRef) -> tuple[str, ...]:
    """The attention inputs a head receiver reads through (a bare head reads all three)."""
    return receive_channels(node) if node.kind is not NodeKind.HEAD else ("q", "k", "v")


def _residual_site_hook(node: NodeRef, n_layers: int) -> str:
    """The residual-stream hook whose value is this receiver's input (the logits: the last resid_post)."""
    if node.kind is NodeKind.HEAD:
        return f"blocks.{node.layer}.hook_resid_pre"
    return residual_input_hook(node, n_layers)


def _heads(node: NodeRef, cfg: Any) -> int | list[int]:
    """The head-axis index of a head node: its head, or a shared key/value head's query heads."""
    if node.kind in (NodeKind.KV_K, NodeKind.KV_V):
        size = cfg.n_heads // cfg.n_key_value_heads
        return list(range(node.kv_head * size, (node.kv_head + 1) * size))
    return node.head


def _blend(act: torch.Tensor, heads: int | list[int], value: torch.Tensor, m: torch.Tensor) -> None:
    """``act[:, :, heads] = act[:, :, heads] · (1 − m) + value · m`` in place (``m``: ``[n, seq, 1]``)."""
    m = m[..., None] if isinstance(heads, list) else m
    act[:, :, heads] = act[:, :, heads] * (1 - m) + value * m


def _own_activation(node: NodeRef, cache: Mapping[str, torch.Tensor], cfg: Any) -> torch.Tensor:
    act = cache[sender_hook(node)]
    if node.kind in _HEAD_RECEIVERS:
        return act[:, :, _heads(node, cfg)]
    if node.kind is NodeKind.MLP_NEURON:
        return act[..., node.index]
    return act


def _pos_mask(node: NodeRef, positions: Mapping[str, torch.Tensor], n: int, seq: int) -> torch.Tensor:
    """``[n, seq, 1]`` float mask: 1 at the node's role position (or everywhere when it has none)."""
    if node.role is None:
        return torch.ones(n, seq, 1)
    mask = torch.zeros(n, seq, 1)
    mask[torch.arange(n), positions[node.role].long(), 0] = 1.0
    return mask


def _send_mask(node: NodeRef, positions: Mapping[str, torch.Tensor], n: int, seq: int) -> torch.Tensor:
    """Where a node sends from: where it is pinned, unless a head reached through its key or value."""
    if not sends_where_pinned(node):
        return torch.ones(n, seq, 1)
    return _pos_mask(node, positions, n, seq)


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
            sender_values = {s: _own_activation(s, source, model.cfg) for s, _ in job.hops[0]}
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
                        _naive_receiver_patch(
                            receiver, receiver_inputs[receiver], mask(receiver), n_layers, model.cfg
                        )
                    )
                grabbed: dict[str, torch.Tensor] = {}
                if k + 1 < len(job.hops):

                    def grab(act, hook, grabbed=grabbed):
                        grabbed[hook.name] = act.detach().clone()

                    hooks.extend((sender_hook(r), grab) for r in receivers)
                logits = model.run_with_hooks(base_tokens, fwd_hooks=hooks)
                count(n)
                sender_values = (
                    {r: _own_activation(r, grabbed, model.cfg) for r in receivers}
                    if k + 1 < len(job.hops)
                    else {}
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
                _blend(act, _heads(s, model.cfg), sender_values[s], mask(s))
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
        name = sender_hook(s)

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
    return value[:, :, _heads(receiver, model.cfg)] if receiver.kind in _HEAD_RECEIVERS else value


def _naive_receiver_patch(
    receiver: NodeRef, value: torch.Tensor, mask: torch.Tensor, n_layers: int, cfg: Any
) -> list:
    """Step 3 hooks: overwrite the receiver's input(s) with the step-2 value at its positions (a shared
    key/value head: every query head's copy of its group)."""
    if receiver.kind in _HEAD_RECEIVERS:
        hooks = []
        heads = _heads(receiver, cfg)
        for chan in _channels(receiver):

            def patch(act, hook, h=heads):
                act = act.clone()
                _blend(act, h, value, mask)
                return act

            hooks.append((f"blocks.{receiver.layer}.hook_{chan}_input", patch))
        return hooks
    name = (
        f"blocks.{receiver.layer}.hook_mlp_in"
        if receiver.kind in _MLP_NODES
        else _residual_site_hook(receiver, n_layers)
    )
    return [(name, lambda act, hook: act * (1 - mask) + value * mask)]
