"""Top-token logit lens: the k likeliest tokens read off each residual site at every position.

Entry point: :func:`lens_top_tokens`. For a few prompts (the logit lens claim's largest, median and
smallest final value, as the attention views choose them), every lens site's residual stream from the
shared clean run goes through the final norm (recomputed for that residual) and the unembedding
(``adapter.readout``, soft-cap included) at every real position, one prompt and site at a time so
``[pos, vocab]`` is the most ever held; the top ``k`` token ids, their decoded text and logits are
kept as a plain, JSON-ready table (``Measurement.extra["lens_top_tokens"]``), which the report shows
as a layer × position table (the circuits report's Fig. 20).
"""

from __future__ import annotations

from typing import Any

import torch

from circuitspec.claims.hooks import residual_hook
from circuitspec.engine.context import RunContext

__all__ = ["lens_top_tokens", "token_text"]


def token_text(ctx: RunContext, token: int) -> str:
    """One token decoded (``#id`` where the prompt set cannot decode)."""
    decode = ctx.prompts.decode
    return decode([token]) if decode is not None else f"#{token}"


def lens_top_tokens(ctx: RunContext, sites: list[str], prompts: list[int], k: int) -> list[dict[str, Any]]:
    """Per chosen prompt: its tokens, the ``sites`` and, per site and position, the top-``k`` tokens.

    Each entry: ``prompt`` (index), ``tokens`` (the prompt's tokens decoded), ``sites`` (labels, forward
    order), ``ids`` / ``top`` / ``logits`` as ``[site][position][rank]`` lists (ids, decoded text, logit).
    """
    adapter = ctx.adapter
    hooks = {label: residual_hook(label) for label in sites}
    _, cache = ctx.clean(sorted(set(hooks.values())))
    out: list[dict[str, Any]] = []
    with torch.inference_mode():
        for i in prompts:
            length = int(ctx.prompts.lengths[i])
            ids_per_site, logits_per_site = [], []
            for hook in hooks.values():
                logits = adapter.readout(cache[hook][i : i + 1, :length], None)[0]  # [pos, vocab]
                top = logits.float().topk(min(k, logits.shape[-1]), dim=-1)
                ids_per_site.append(top.indices.cpu().tolist())
                logits_per_site.append(top.values.cpu().tolist())
            out.append(
                {
                    "prompt": i,
                    "tokens": [token_text(ctx, t) for t in ctx.prompts.tokens[i, :length].tolist()],
                    "sites": list(hooks),
                    "ids": ids_per_site,
                    "top": [[[token_text(ctx, t) for t in row] for row in site] for site in ids_per_site],
                    "logits": logits_per_site,
                }
            )
    return out
