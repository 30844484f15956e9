"""Direct logit attribution (DLA) onto the logit-difference direction at the last real token.

Entry point: :func:`direct_logit_attribution`. Each component's output at the end token is mapped
through the final LayerNorm *with the clean run's cached scale* (so the map is linear) and dotted
with ``d = W_U[:, desired] − W_U[:, undesired]``. Heads come from ``hook_z @ W_O`` per head (no
``use_attn_result`` needed); the attention output bias ``b_O``, the final LN bias and the unembed
bias are components of their own, so all components sum exactly to the clean logit difference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from circuitspec.claims.hooks import dla_hooks
from circuitspec.engine.context import RunContext
from circuitspec.engine.sites import Site
from circuitspec.spec.nodes import NodeKind

__all__ = ["component_attributions", "direct_logit_attribution"]


def component_attributions(ctx: RunContext) -> dict[str, torch.Tensor]:
    """Per-prompt DLA ``[n]`` of every component: ``embed``, ``pos_embed``, ``L{l}H{h}``,
    ``L{l}.b_O``, ``MLP{l}``, ``bias`` (final LN bias + unembed bias). They sum to the logit diff."""
    model, prompts = ctx.model, ctx.prompts
    cfg = model.cfg

    def compute() -> dict[str, torch.Tensor]:
        _, cache = ctx.clean(dla_hooks(cfg))
        rows = torch.arange(len(prompts))
        ends = prompts.lengths - 1
        good, bad = prompts.desired, prompts.undesired
        direction = (model.W_U[:, good] - model.W_U[:, bad]).T  # [n, d_model]
        norm = cfg.normalization_type
        if norm in ("LN", "LNPre", "RMS", "RMSPre"):
            scale = cache["ln_final.hook_scale"][rows, ends]  # [n, 1]
        else:
            scale = torch.ones(len(prompts), 1)
        weight = model.ln_final.w if norm in ("LN", "RMS") else None
        read = direction * weight if weight is not None else direction
        if norm in ("LN", "LNPre"):  # LayerNorm centres its input: project the centred direction
            read = read - read.mean(-1, keepdim=True)
        read = read / scale

        def at_end(act: torch.Tensor) -> torch.Tensor:
            return act[rows, ends]

        out: dict[str, torch.Tensor] = {"embed": (at_end(cache["hook_embed"]) * read).sum(-1)}
        if "hook_pos_embed" in cache:
            out["pos_embed"] = (at_end(cache["hook_pos_embed"]) * read).sum(-1)
        for layer in range(cfg.n_layers):
            z = at_end(cache[f"blocks.{layer}.attn.hook_z"])  # [n, heads, d_head]
            block = model.blocks[layer]
            per_head = torch.einsum("nhd,hdm->nhm", z, block.attn.W_O)
            head_dla = (per_head * read[:, None]).sum(-1)
            for head in range(cfg.n_heads):
                out[f"L{layer}H{head}"] = head_dla[:, head]
            out[f"L{layer}.b_O"] = (block.attn.b_O[None] * read).sum(-1)
            if not cfg.attn_only:
                out[f"MLP{layer}"] = (at_end(cache[f"blocks.{layer}.hook_mlp_out"]) * read).sum(-1)
        bias = model.b_U[good] - model.b_U[bad]
        if norm == "LN":
            bias = bias + (direction * model.ln_final.b).sum(-1)
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
