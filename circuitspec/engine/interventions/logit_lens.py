"""Accumulated logit lens: the metric read off the residual stream after every sublayer.

Entry point: :func:`logit_lens`. The residual stream at each site (``resid_pre0``, ``resid_mid0``,
``resid_pre1``, …, the final ``resid_post``) is taken at each prompt's last real token, passed
through the final LayerNorm (recomputed for that residual, as the lens is usually defined) and
the unembedding, then scored with the context's metric.
"""

from __future__ import annotations

import torch

from circuitspec.engine.context import RunContext
from circuitspec.spec.geometry import hook_name
from circuitspec.spec.nodes import NodeKind, NodeRef

__all__ = ["lens_sites", "logit_lens", "residual_hook"]


def lens_sites(n_layers: int, attn_only: bool = False) -> list[tuple[str, float]]:
    """``(hook-site label, x)`` in forward order; ``resid_post<l>`` is ``resid_pre<l+1>`` so only the last."""
    sites: list[tuple[str, float]] = []
    for layer in range(n_layers):
        sites.append((f"resid_pre{layer}", float(layer)))
        if not attn_only:
            sites.append((f"resid_mid{layer}", layer + 0.5))
    sites.append((f"resid_post{n_layers - 1}", float(n_layers)))
    return sites


def residual_hook(label: str) -> str:
    """The TransformerLens hook of a residual site label such as ``resid_mid3``."""
    for kind in (NodeKind.RESID_PRE, NodeKind.RESID_MID, NodeKind.RESID_POST):
        if label.startswith(kind.value):
            return hook_name(NodeRef(label, kind, layer=int(label[len(kind.value) :])))
    raise ValueError(f"'{label}' is not a residual-stream site (resid_pre/resid_mid/resid_post<l>)")


def logit_lens(ctx: RunContext, at: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Per-prompt metric ``[n]`` at each residual site in ``at`` (default: every site, forward order)."""
    model, prompts = ctx.model, ctx.prompts
    labels = (
        at if at is not None else [label for label, _ in lens_sites(model.cfg.n_layers, model.cfg.attn_only)]
    )
    hooks = {label: residual_hook(label) for label in labels}
    _, cache = ctx.clean(sorted(set(hooks.values())))
    rows = torch.arange(len(prompts))
    ends = prompts.lengths - 1
    out: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for label, hook in hooks.items():
            resid = cache[hook][rows, ends]  # [n, d_model]
            normed = resid if model.cfg.normalization_type is None else model.ln_final(resid)
            logits = model.unembed(normed[:, None])[:, 0]
            out[label] = ctx.metric(logits, prompts).float().cpu()
    return out
