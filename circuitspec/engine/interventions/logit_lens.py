"""Accumulated logit lens: the metric read off the residual stream after every sublayer.

Entry point: :func:`logit_lens`. The residual stream at each site (``resid_pre0``, ``resid_mid0``,
``resid_pre1``, …, the final ``resid_post``) is taken at each prompt's last real token, passed
through the final LayerNorm (recomputed for that residual, as the lens is usually defined) and
the unembedding (the model adapter's readout, soft-cap included), then scored with the context's
metric. A metric that reads only the answer logits (``logit_diff``) gets only those two columns
unembedded (``adapter.logits_of``), not the whole vocabulary at every site.
"""

from __future__ import annotations

from typing import Any

import torch

from circuitspec.claims.hooks import lens_sites, residual_hook
from circuitspec.engine.context import RunContext
from circuitspec.engine.metrics import answer_logit_metric
from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement

from .measuring import MeasurementBuilder

__all__ = ["lens_sites", "logit_lens", "measure", "residual_hook"]


def logit_lens(ctx: RunContext, at: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Per-prompt metric ``[n]`` at each residual site in ``at`` (default: every site, forward order)."""
    adapter, prompts = ctx.adapter, ctx.prompts
    arch = adapter.arch
    labels = at if at is not None else [label for label, _ in lens_sites(arch.n_layers, arch.attn_only)]
    hooks = {label: residual_hook(label) for label in labels}
    _, cache = ctx.clean(sorted(set(hooks.values())))
    ends = prompts.lengths - 1
    answers = answer_logit_metric(ctx.metric)
    ids = torch.stack([prompts.desired, prompts.undesired], dim=1)
    out: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for label, hook in hooks.items():
            if answers is not None:  # the two answer columns only
                value = answers(adapter.logits_of(cache[hook], ends, ids))
            else:  # [n, vocab], only the end tokens
                value = ctx.metric(adapter.unembed_at(cache[hook], ends), prompts)
            out[label] = value.float().cpu()
    return out


def _embedding_lens(b: MeasurementBuilder, claim: Any) -> None:
    """Encoders: the logit-lens claim reads the embedding lens (cosine of pooled residual vs final)."""
    from .embedding_lens import embedding_lens, embedding_lens_sites

    target = "reference" if claim.metric in ("cosine", "distance_change") else "final"
    values = embedding_lens(b.ctx, reference=target)
    sites = embedding_lens_sites(b.ctx.adapter.arch.n_layers)
    if claim.at:
        if claim.at not in values:
            raise CircuitSpecError(f"embedding lens site '{claim.at}' (valid: {', '.join(values)})")
        b.arrays(value=values[claim.at])
        return
    for label, _, x in sites:
        b.sweep("layer", float(x), value=values[label])
    b.note(sites=[label for label, _, _ in sites])
    b.arrays(value=values[sites[-1][0]])


def _top_tokens(b: MeasurementBuilder, claim: Any, sites: list[str], value: torch.Tensor) -> None:
    """``top_tokens: k``: the k likeliest tokens per site and position for a few prompts (a report table)."""
    if getattr(claim, "top_tokens", None):
        from .attention import view_prompts
        from .lens_top_tokens import lens_top_tokens

        b.note(lens_top_tokens=lens_top_tokens(b.ctx, sites, view_prompts(value), claim.top_tokens))


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """A ``logit_lens`` claim: the metric at ``at``, or swept over every residual site."""
    b = MeasurementBuilder(ctx, claim, seed)
    arch = ctx.adapter.arch
    if arch.encoder:
        if getattr(claim, "top_tokens", None):
            raise CircuitSpecError("logit_lens top_tokens reads next-token logits; an encoder has none")
        _embedding_lens(b, claim)
        return b.build()
    if claim.at:
        value = logit_lens(ctx, [claim.at])[claim.at]
        _top_tokens(b, claim, [claim.at.split("@")[0]], value)
        return b.arrays(value=value).build()
    sites = lens_sites(arch.n_layers, arch.attn_only)
    values = logit_lens(ctx, [label for label, _ in sites])
    for label, x in sites:
        b.sweep("layer", x, value=values[label])
    b.note(sites=[label for label, _ in sites])
    _top_tokens(b, claim, [label for label, _ in sites], values[sites[-1][0]])
    return b.arrays(value=values[sites[-1][0]]).build()
