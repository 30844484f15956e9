"""Direct logit attribution (DLA) onto the logit-difference direction at the last real token.

Entry point: :func:`direct_logit_attribution`. Each component's output at the end token is mapped
through the final LayerNorm *with the clean run's cached scale* (so the map is linear) and dotted
with ``d = W_U[:, desired] − W_U[:, undesired]``. Heads come from ``hook_z @ W_O`` per head (no
``use_attn_result`` needed); the attention output bias ``b_O``, the final LN bias and the unembed
bias are components of their own, so all components sum exactly to the clean logit difference.
Where a block normalises its attention output again (Gemma 2/3), the heads' writes pass that norm with
the clean run's cached scale too (:func:`attention_output_reader`), the same linearisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from circuitspec.claims.hooks import dla_hooks
from circuitspec.engine.context import RunContext
from circuitspec.engine.sites import Site
from circuitspec.spec.nodes import NodeKind

__all__ = [
    "answer_direction",
    "attention_output_reader",
    "component_attributions",
    "direct_logit_attribution",
    "final_norm_reader",
]


def answer_direction(ctx: RunContext) -> torch.Tensor:
    """``[n, d_model]``: each prompt's ``W_U[:, desired] − W_U[:, undesired]``."""
    unembed = ctx.adapter.unembed_columns
    return unembed(ctx.prompts.desired) - unembed(ctx.prompts.undesired)


def final_norm_reader(
    ctx: RunContext, cache: dict[str, torch.Tensor], direction: torch.Tensor
) -> torch.Tensor:
    """``[n, d_model]``: what a write at the end token is dotted with to give its share of
    ``direction · unembed_input``, through the final norm with the clean run's cached scale (so the
    map is linear): weighted, centred under LayerNorm, divided by the scale (``cache`` must hold
    ``ln_final.hook_scale``, :func:`dla_hooks`)."""
    arch, prompts = ctx.adapter.arch, ctx.prompts
    weight, _ = ctx.adapter.final_norm_params()
    read = direction * weight if weight is not None else direction
    if arch.norm == "layernorm":  # LayerNorm centres its input: project the centred direction
        read = read - read.mean(-1, keepdim=True)
    if arch.norm != "none":
        scale = cache["ln_final.hook_scale"]  # the shared runs normalise only the end tokens: [n, 1, 1]
        ends = prompts.lengths - 1 if scale.shape[1] > 1 else torch.zeros_like(prompts.lengths)
        read = read / scale[torch.arange(len(prompts)), ends]
    return read


def attention_output_reader(
    ctx: RunContext, cache: dict[str, torch.Tensor], layer: int, read: torch.Tensor
) -> torch.Tensor:
    """``read`` moved before block ``layer``'s attention output norm where it has one (Gemma 2/3's
    ``ln1_post``), with the clean run's cached scale at the end token, so the heads' writes map to the
    logits linearly and still sum to the attention output's share; else ``read`` itself."""
    if not ctx.adapter.arch.sublayer_output_norms:
        return read
    weight = ctx.adapter.attention_output_norm_weight(layer)
    scale = cache[f"blocks.{layer}.ln1_post.hook_scale"]  # [n, pos, 1]
    ends = ctx.prompts.lengths - 1 if scale.shape[1] > 1 else torch.zeros_like(ctx.prompts.lengths)
    read = read * weight if weight is not None else read
    return read / scale[torch.arange(len(ctx.prompts)), ends]


def component_attributions(ctx: RunContext) -> dict[str, torch.Tensor]:
    """Per-prompt DLA ``[n]`` of every component: ``embed``, ``pos_embed``, ``L{l}H{h}``,
    ``L{l}.b_O``, ``MLP{l}``, ``bias`` (final LN bias + unembed bias). They sum to the logit diff."""
    adapter, prompts = ctx.adapter, ctx.prompts
    arch = adapter.arch

    def compute() -> dict[str, torch.Tensor]:
        _, cache = ctx.clean(dla_hooks(arch))
        rows = torch.arange(len(prompts))
        ends = prompts.lengths - 1
        direction = answer_direction(ctx)
        read = final_norm_reader(ctx, cache, direction)

        def at_end(act: torch.Tensor) -> torch.Tensor:
            return act[rows, ends]

        out: dict[str, torch.Tensor] = {"embed": (at_end(cache["hook_embed"]) * read).sum(-1)}
        if "hook_pos_embed" in cache:
            out["pos_embed"] = (at_end(cache["hook_pos_embed"]) * read).sum(-1)
        for layer in range(arch.n_layers):
            z = at_end(cache[f"blocks.{layer}.attn.hook_z"])  # [n, heads, d_head]
            head_read = attention_output_reader(ctx, cache, layer, read)
            head_dla = (adapter.head_writes(layer, z) * head_read[:, None]).sum(-1)
            for head in range(arch.n_heads):
                out[f"L{layer}H{head}"] = head_dla[:, head]
            out[f"L{layer}.b_O"] = (adapter.attention_bias(layer)[None] * head_read).sum(-1)
            if not arch.attn_only:
                out[f"MLP{layer}"] = (at_end(cache[f"blocks.{layer}.hook_mlp_out"]) * read).sum(-1)
        bias = adapter.unembed_bias(prompts.desired) - adapter.unembed_bias(prompts.undesired)
        _, norm_bias = adapter.final_norm_params()
        if norm_bias is not None:
            bias = bias + (direction * norm_bias).sum(-1)
        out["bias"] = bias
        return {k: v.detach().float().cpu() for k, v in out.items()}

    with torch.inference_mode():
        return ctx.cached("dla_components", compute)


def _component(site: Site) -> str:
    node = site.node
    if node.role not in (None, "end"):
        raise ValueError(f"'{node}': direct logit attribution is read at the end token, not at @{node.role}")
    match node.kind:
        case NodeKind.EMBED | NodeKind.POS_EMBED:
            return node.kind.value
        case NodeKind.HEAD:
            return f"L{node.layer}H{node.head}"
        case NodeKind.MLP:
            return f"MLP{node.layer}"
    raise ValueError(f"'{node}': direct logit attribution applies to heads, MLPs and embeddings")


def direct_logit_attribution(ctx: RunContext, sites: Sequence[Site]) -> torch.Tensor:
    """Summed per-prompt DLA ``[n]`` of the components at ``sites`` (heads, MLPs, embeddings)."""
    table = component_attributions(ctx)
    return torch.stack([table[_component(site)] for site in sites]).sum(0)
