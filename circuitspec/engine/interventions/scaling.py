"""Activation scaling: multiply node activations by α (the paper's value vectors at a role, α = ±2^k).

Entry point: :func:`scale_sweep`. Works on any site: a head's value vector ``L7H5.v@role``
(``hook_v``), a head's output (``hook_z``), an MLP output, a neuron, a residual site. All α run
batched: the prompt batch is repeated once per α (in chunks that keep the logits under a memory
budget) and each copy is scaled by its own α, starting at the first scaled block from the clean run's
cached residual stream (``circuitspec.engine.edits.run_edits``). An α another claim already ran on the
same sites, and an α where every factor is 1 (the clean run itself), cost no pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.edits import (
    Edit,
    chain_edits,
    copies_per_pass,
    run_edits,
    start_hooks,
    tile_site,
)
from circuitspec.engine.sites import Site

__all__ = ["scale_sweep"]


def _scaled_outputs(
    ctx: RunContext, sites: Sequence[Site], signs: Sequence[float], alphas: Sequence[float]
) -> list[torch.Tensor]:
    """End-token logits (encoders: embeddings) ``[n, ...]`` per α, kept on the context so claims scaling
    the same sites share each α's pass; α where every factor is 1 is the clean run itself (no pass)."""
    prompts = ctx.prompts
    n = len(prompts)
    key = f"scaled:{[s.node.text for s in sites]}:{list(signs)}"
    done: dict[float, torch.Tensor] = ctx.cached(key, dict)
    for alpha in alphas:
        if float(alpha) not in done and all(float(alpha) * sign == 1.0 for sign in signs):
            done[float(alpha)] = _ends(ctx, ctx.clean()[0])
    todo = [float(a) for a in dict.fromkeys(alphas) if float(a) not in done]
    names = sorted({s.hook_name for s in sites})
    ctx.need(start_hooks(names, ctx.adapter.arch))
    _, cache = ctx.clean(names)
    step = copies_per_pass(ctx, max(len(todo), 1))
    for start in range(0, len(todo), step):
        chunk = todo[start : start + step]
        copies = len(chunk)
        edits: dict[str, list[Edit]] = {}
        for site, sign in zip(sites, signs, strict=True):
            shape = (copies * n, *cache[site.hook_name].shape[1:])
            mask = tile_site(site, copies).mask(torch.zeros(shape, dtype=torch.bool))
            factor = (torch.tensor(chunk) * sign).repeat_interleave(n)
            edits.setdefault(site.hook_name, []).append(Edit(mask=mask, scale=factor))
        out = run_edits(ctx, prompts.tokens, {k: chain_edits(v) for k, v in edits.items()}, copies=copies)
        for i, alpha in enumerate(chunk):
            done[alpha] = out[i * n : (i + 1) * n]
    return [done[float(a)] for a in alphas]


def _ends(ctx: RunContext, output: torch.Tensor) -> torch.Tensor:
    """A shared run's output as an edited pass returns it: logits at each prompt's last real token."""
    if output.dim() != 3:
        return output  # already per prompt (end-token logits, or an encoder's embeddings)
    ends = ctx.prompts.lengths.to(output.device) - 1
    return output[torch.arange(output.shape[0], device=output.device), ends]


def scale_sweep(
    ctx: RunContext,
    sites: Sequence[Site],
    alphas: Sequence[float],
    signs: Sequence[float] | None = None,
) -> torch.Tensor:
    """Metric ``[len(alphas), n]``: site ``i`` scaled by ``alphas[a] × signs[i]`` (clean prompts)."""
    signs = list(signs) if signs is not None else [1.0] * len(sites)
    outputs = _scaled_outputs(ctx, sites, signs, alphas)
    return torch.stack([ctx.metric(out, ctx.prompts).float().cpu() for out in outputs])
