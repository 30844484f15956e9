"""Causal scrubbing the slow, explicit way: per batch row, recursive ``run_scrub`` with whole passes.

The reference the batched engine (``circuitspec.engine.scrubbing``) is tested against. For each tree
node of a plan it runs the model on the shared random prompt with plain TransformerLens hooks,
rebuilds the component's input as the explicit sum of every upstream term (embeddings, each head's
``z @ W_O``, attention biases, each MLP's output), with the hypothesis' edges taking their
recursively scrubbed values, writes it into ``hook_{q,k,v}_input`` / ``hook_mlp_in`` / the final
residual stream, and reads the component's output. Only the plan (what was resampled) is shared.
"""

from __future__ import annotations

from typing import Any

import torch

from circuitspec.engine.scrubbing import Component, ScrubPlan
from circuitspec.spec.nodes import NodeKind, parse_node

__all__ = ["reference_scrub"]


def _comp(name: str) -> Component:
    return Component(parse_node(name))


def _pos_mask(role: str | None, prompts: Any, i: int, seq: int) -> torch.Tensor:
    """``[seq, 1]``: 1 at the role's position of prompt ``i`` (everywhere without a role)."""
    if role is None:
        return torch.ones(seq, 1)
    mask = torch.zeros(seq, 1)
    mask[int(prompts.positions(role)[i]), 0] = 1.0
    return mask


def _channels(comp: Component) -> tuple[str, ...]:
    kind = comp.node.kind
    return (
        ("logits",) if kind is NodeKind.LOGITS else ("mlp_in",) if kind is NodeKind.MLP else ("q", "k", "v")
    )


def reference_scrub(model: Any, prompts: Any, plan: ScrubPlan) -> torch.Tensor:
    """End-token logits ``[B, vocab]`` of every row of ``plan``, scrubbed explicitly."""
    old_split, old_mlp_in = model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in
    model.set_use_split_qkv_input(True)
    model.set_use_hook_mlp_in(True)
    out = []
    try:
        with torch.inference_mode():
            caches: dict[int, Any] = {}

            def cache_of(i: int) -> Any:
                if i not in caches:
                    caches[i] = model.run_with_cache(prompts.tokens[i : i + 1])[1]
                return caches[i]

            for b in range(len(plan.originals)):
                r = int(plan.randoms[b])
                out.append(_reference_node(model, prompts, plan, 0, b, r, cache_of))
    finally:
        model.set_use_split_qkv_input(old_split)
        model.set_use_hook_mlp_in(old_mlp_in)
    return torch.cat(out)


def _explicit_terms(model: Any, cache: Any, comp: Component, channel: str) -> dict[Any, torch.Tensor]:
    """Every term of ``comp``'s input on ``channel`` from one run's cache, keyed by component (or 'bias')."""
    n_layers = model.cfg.n_layers
    limit = n_layers if channel == "logits" else int(comp.node.layer)
    terms: dict[Any, torch.Tensor] = {
        _comp("embed"): cache["hook_embed"][0],
        _comp("pos_embed"): cache["hook_pos_embed"][0],
    }
    bias = torch.zeros_like(terms[_comp("embed")])
    for layer in range(limit + (1 if channel == "mlp_in" else 0)):
        attn = model.blocks[layer].attn
        z = cache[f"blocks.{layer}.attn.hook_z"][0]
        for h in range(model.cfg.n_heads):
            terms[_comp(f"L{layer}H{h}")] = z[:, h] @ attn.W_O[h]
        bias = bias + attn.b_O
        if layer < limit and not model.cfg.attn_only:
            terms[_comp(f"MLP{layer}")] = cache[f"blocks.{layer}.hook_mlp_out"][0]
    terms["bias"] = bias
    return terms


def _leaf(model: Any, comp: Component, cache: Any) -> torch.Tensor:
    """A component's residual term read whole from one prompt's run."""
    node = comp.node
    if node.kind is NodeKind.HEAD:
        return (
            cache[f"blocks.{node.layer}.attn.hook_z"][0, :, node.head]
            @ model.blocks[node.layer].attn.W_O[node.head]
        )
    if node.kind is NodeKind.MLP:
        return cache[f"blocks.{node.layer}.hook_mlp_out"][0]
    return cache[f"hook_{node.kind.value}"][0]


def _reference_node(model, prompts, plan: ScrubPlan, index: int, b: int, r: int, cache_of) -> torch.Tensor:
    """run_scrub for tree node ``index`` on batch row ``b``: its residual term (or logits at the root)."""
    tree = plan.nodes[index]
    comp, node = tree.component, tree.component.node
    x = int(tree.inputs[b])
    if not tree.children and node.kind is not NodeKind.LOGITS:  # a leaf: read whole from its drawn prompt
        return _leaf(model, comp, cache_of(x))
    seq = prompts.tokens.shape[1]
    random_cache = cache_of(r)
    inputs = {}
    for channel in _channels(comp):
        terms = _explicit_terms(model, random_cache, comp, channel)
        for child_index in tree.children:
            edge = plan.nodes[child_index].edge
            if edge.channel != channel:
                continue
            value = _reference_node(model, prompts, plan, child_index, b, r, cache_of)
            mask = _pos_mask(edge.sender_role, prompts, x, seq) * _pos_mask(
                edge.receiver_role, prompts, x, seq
            )
            terms[(edge, child_index)] = mask * (value - terms[edge.sender])  # this path's input instead
        inputs[channel] = sum(terms.values())
    tokens = prompts.tokens[r : r + 1]
    if node.kind is NodeKind.LOGITS:
        final = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
        logits = model.run_with_hooks(tokens, fwd_hooks=[(final, lambda act, hook: inputs["logits"][None])])
        return logits[:, int(prompts.lengths[x]) - 1]
    hooks = []
    if node.kind is NodeKind.MLP:
        hooks.append((f"blocks.{node.layer}.hook_mlp_in", lambda act, hook: inputs["mlp_in"][None]))
        read = f"blocks.{node.layer}.hook_mlp_out"
    else:
        for channel in _channels(comp):

            def set_input(act, hook, channel=channel):
                act = act.clone()
                act[0, :, node.head] = inputs[channel]
                return act

            hooks.append((f"blocks.{node.layer}.hook_{channel}_input", set_input))
        read = f"blocks.{node.layer}.attn.hook_z"
    seen = {}

    def grab(act, hook):
        seen["a"] = act.detach().clone()

    model.run_with_hooks(tokens, fwd_hooks=[*hooks, (read, grab)])
    if node.kind is NodeKind.MLP:
        return seen["a"][0]
    return seen["a"][0, :, node.head] @ model.blocks[node.layer].attn.W_O[node.head]
