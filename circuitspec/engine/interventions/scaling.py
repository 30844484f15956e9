"""Activation scaling: multiply node activations by α (the paper's value vectors at a role, α = ±2^k).

Entry point: :func:`scale_sweep`. Works on any site: a head's value vector ``L7H5.v@role``
(``hook_v``), a head's output (``hook_z``), an MLP output, a neuron, a residual site. All α run
batched: the prompt batch is repeated once per α (in chunks that keep the logits under a memory
budget) and each copy is scaled by its own α.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.ablation import LOGIT_BUDGET, Edit, copies_per_pass, tile_site
from circuitspec.engine.sites import Site

__all__ = ["LOGIT_BUDGET", "scale_sweep"]


def scale_sweep(
    ctx: RunContext,
    sites: Sequence[Site],
    alphas: Sequence[float],
    signs: Sequence[float] | None = None,
) -> torch.Tensor:
    """Metric ``[len(alphas), n]``: site ``i`` scaled by ``alphas[a] × signs[i]`` (clean prompts)."""
    signs = list(signs) if signs is not None else [1.0] * len(sites)
    prompts = ctx.prompts
    n = len(prompts)
    names = sorted({s.hook_name for s in sites})
    _, cache = ctx.clean(names)
    out: list[torch.Tensor] = []
    step = copies_per_pass(ctx, len(alphas))
    for start in range(0, len(alphas), step):
        chunk = [float(a) for a in alphas[start : start + step]]
        copies = len(chunk)
        hooks = []
        for site, sign in zip(sites, signs, strict=True):
            shape = (copies * n, *cache[site.hook_name].shape[1:])
            mask = tile_site(site, copies).mask(torch.zeros(shape, dtype=torch.bool))
            factor = (torch.tensor(chunk) * sign).repeat_interleave(n)
            edit = Edit(mask=mask, scale=factor)
            hooks.append((site.hook_name, lambda act, hook, e=edit: e.apply(act)))
        logits, _ = ctx.run(prompts.tokens.repeat(copies, 1), fwd_hooks=hooks, last_only=True)
        metric = torch.stack([ctx.metric(logits[i * n : (i + 1) * n], prompts) for i in range(copies)])
        out.append(metric.float().cpu())
    return torch.cat(out)
