"""Ablation: replace node activations by zero, their mean, another prompt's value, or ``α ×`` themselves.

Entry point: :func:`ablate`. The edit machinery (:class:`~circuitspec.engine.edits.Edit`,
:func:`~circuitspec.engine.edits.edits_for`, :func:`~circuitspec.engine.edits.run_edits`) lives in
``circuitspec.engine.edits`` and is re-exported here; the edited pass starts at the first ablated block
from the clean run's cached residual stream.

Mean ablation (our choice): a node pinned to a role gets the mean over prompts of its activation
at each prompt's role position (role-aligned); a node at every position gets the per-position mean
over the prompts that are real (not padding) at that position. Resample ablation takes the
activation of another prompt (a seeded derangement), at its own role position for pinned nodes and
at the same absolute positions otherwise. All sources come from the clean run of the prompt set, except
a mean over a separate reference set (``mean_from``, ``circuitspec.engine.reference_sets``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.edits import (
    Edit,
    copies_per_pass,
    edits_for,
    run_edits,
    start_hooks,
    tile_site,
)
from circuitspec.engine.prompts import derangement
from circuitspec.engine.reference_sets import reference_mean
from circuitspec.engine.sites import Site

__all__ = [
    "Edit",
    "Method",
    "ablate",
    "ablate_circuits",
    "ablation_source",
    "copies_per_pass",
    "edits_for",
    "run_edits",
    "tile_site",
]

Method = Literal["zero", "mean", "resample", "soft"]


def _role_aligned(site: Site, act: torch.Tensor, per_row: torch.Tensor) -> torch.Tensor:
    """An activation-shaped tensor holding ``per_row[i]`` at row i's position (zeros elsewhere)."""
    out = torch.zeros_like(act)
    rows = torch.arange(act.shape[0], device=act.device)
    assert site.positions is not None, "role-aligned sources are for nodes pinned to a role"
    pos = site.positions.to(act.device)
    if site.head is not None:
        out[rows, pos, site.head] = per_row
    else:
        out[rows, pos] = per_row
    return out


def _position_mean(act: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Per-position mean over the prompts that are real at that position; 0 where none is."""
    real = (torch.arange(act.shape[1])[None, :] < lengths[:, None]).to(act.device, act.dtype)
    real = real.reshape(*real.shape, *([1] * (act.dim() - 2)))
    total = (act * real).sum(0, keepdim=True)
    count = real.sum(0, keepdim=True).clamp(min=1)
    return (total / count).expand_as(act)


def ablation_source(
    ctx: RunContext, site: Site, method: str, seed: int = 0, reference: RunContext | None = None
) -> torch.Tensor | None:
    """What ``method`` writes at ``site`` (activation-shaped, for the clean batch); None for soft.
    ``reference``: the prompts a mean is taken over instead of the claim's own (``mean_from``)."""
    if method == "soft":
        return None
    _, cache = ctx.clean([site.hook_name])
    act = cache[site.hook_name]
    if method == "zero":
        return torch.zeros_like(act)
    if method == "mean" and reference is not None:
        return reference_mean(reference, site, act)
    if method == "mean":
        if site.positions is None:
            return _position_mean(act, ctx.prompts.lengths)
        whole = Site(site.node, site.hook_name, site.head, None, site.positions).select(act)
        return _role_aligned(site, act, whole.mean(0, keepdim=True).expand_as(whole))
    if method == "resample":
        perm = torch.as_tensor(derangement(len(ctx.prompts), seed), device=act.device)
        if site.positions is None:
            return act[perm]
        whole = Site(site.node, site.hook_name, site.head, None, site.positions).select(act)
        return _role_aligned(site, act, whole[perm])
    raise ValueError(f"unknown ablation method '{method}' (valid: zero, mean, resample, soft)")


def ablate_circuits(
    ctx: RunContext,
    circuits: Sequence[Sequence[Site]],
    method: Method = "mean",
    alpha: float | None = None,
    seed: int = 0,
    reference: RunContext | None = None,
) -> torch.Tensor:
    """Metric ``[len(circuits), n]`` of the clean prompts with each circuit's sites ablated by ``method``
    (one copy of the prompt batch per circuit). ``soft`` multiplies by ``alpha`` (which may be negative);
    ``reference``: the prompts a mean ablation averages over (default: the clean prompts themselves)."""
    if method == "soft" and alpha is None:
        raise ValueError("soft ablation needs alpha")
    names = sorted({s.hook_name for circuit in circuits for s in circuit})
    ctx.need(start_hooks(names, ctx.adapter.arch))  # where the edited passes start
    _, cache = ctx.clean(names)
    sites = [site for circuit in circuits for site in circuit]
    sources = {id(site): ablation_source(ctx, site, method, seed, reference) for site in sites}
    edits = edits_for(circuits, sources, {name: cache[name].shape for name in names}, alpha)
    logits = run_edits(ctx, ctx.prompts.tokens, edits, copies=len(circuits))
    n = len(ctx.prompts)
    return torch.stack([ctx.metric(logits[c * n : (c + 1) * n], ctx.prompts) for c in range(len(circuits))])


def ablate(
    ctx: RunContext,
    sites: Sequence[Site],
    method: Method = "mean",
    alpha: float | None = None,
    seed: int = 0,
    reference: RunContext | None = None,
) -> torch.Tensor:
    """Metric ``[n]`` of the clean prompts with every site in ``sites`` ablated by ``method`` (a mean
    over ``reference``'s prompts when given)."""
    return ablate_circuits(ctx, [list(sites)], method, alpha, seed, reference)[0]
