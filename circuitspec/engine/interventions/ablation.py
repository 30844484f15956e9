"""Ablation: replace node activations by zero, their mean, another prompt's value, or ``α ×`` themselves.

Entry point: :func:`ablate`. The edit machinery here (:class:`Edit`, :func:`edits_for`,
:func:`run_edits`) is shared by patching, scaling, faithfulness and random circuits: an edit is a
boolean mask over one hook's activation plus what to write where the mask is True, stacked over
several node sets along the batch axis so N circuits run in one pass.

Mean ablation (our choice): a node pinned to a role gets the mean over prompts of its activation
at each prompt's role position (role-aligned); a node at every position gets the per-position mean
over the prompts that are real (not padding) at that position. Resample ablation takes the
activation of another prompt (a seeded derangement), at its own role position for pinned nodes and
at the same absolute positions otherwise. All sources come from the clean run of the prompt set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.prompts import derangement
from circuitspec.engine.sites import Site

__all__ = [
    "LOGIT_BUDGET",
    "Edit",
    "Method",
    "ablate",
    "ablation_source",
    "copies_per_pass",
    "edits_for",
    "run_edits",
    "tile_site",
]

Method = Literal["zero", "mean", "resample", "soft"]


@dataclass
class Edit:
    """Where (``mask``) and what (``values``, or ``scale`` × the activation itself) to write on a hook."""

    mask: torch.Tensor
    values: torch.Tensor | None = None
    scale: torch.Tensor | float | None = None

    def apply(self, act: torch.Tensor) -> torch.Tensor:
        mask = self.mask.to(act.device)
        if self.values is not None:
            new = self.values.to(act.device, act.dtype)
        else:
            scale = self.scale
            if isinstance(scale, torch.Tensor):
                scale = scale.to(act.device, act.dtype).reshape(-1, *([1] * (act.dim() - 1)))
            new = act * scale
        return torch.where(mask, new, act)


LOGIT_BUDGET = 2**26  # float elements one copy of the batch may take per pass (256 MiB in float32)


def copies_per_pass(ctx: RunContext, wanted: int) -> int:
    """How many copies of the prompt batch fit one pass under :data:`LOGIT_BUDGET` (at least 1).

    A copy costs its end-token logits plus, roughly, eight residual-sized activations per position
    (interventions unembed only the last token, see ``RunContext.run(last_only=True)``).
    """
    prompts = ctx.prompts
    cfg = ctx.model.cfg
    per_copy = len(prompts) * (cfg.d_vocab + 8 * prompts.tokens.shape[1] * max(cfg.d_model, cfg.d_mlp or 0))
    return max(1, min(wanted, LOGIT_BUDGET // max(per_copy, 1)))


def tile_site(site: Site, times: int) -> Site:
    """The same site for a batch repeated ``times`` along the batch axis."""
    if site.positions is None or times == 1:
        return site
    return replace(site, positions=site.positions.repeat(times))


def _role_aligned(site: Site, act: torch.Tensor, per_row: torch.Tensor) -> torch.Tensor:
    """An activation-shaped tensor holding ``per_row[i]`` at row i's position (zeros elsewhere)."""
    out = torch.zeros_like(act)
    rows = torch.arange(act.shape[0], device=act.device)
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


def ablation_source(ctx: RunContext, site: Site, method: str, seed: int = 0) -> torch.Tensor | None:
    """What ``method`` writes at ``site`` (activation-shaped, for the clean batch); None for soft."""
    if method == "soft":
        return None
    _, cache = ctx.clean([site.hook_name])
    act = cache[site.hook_name]
    if method == "zero":
        return torch.zeros_like(act)
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


def edits_for(
    circuits: Sequence[Sequence[Site]],
    sources: dict[int, torch.Tensor | None],
    shapes: dict[str, torch.Size],
    alpha: float | None = None,
) -> dict[str, Edit]:
    """Stack each circuit's edits along the batch axis: circuit c acts on rows ``c·n … (c+1)·n``.

    ``sources[id(site)]`` is what to write at the site (activation-shaped ``[n, ...]``) or None to
    scale the activation by ``alpha``; ``shapes`` gives each hook's ``[n, ...]`` shape.
    """
    hooks = sorted({site.hook_name for circuit in circuits for site in circuit})
    edits: dict[str, Edit] = {}
    for hook in hooks:
        shape = shapes[hook]
        masks, values = [], []
        scaled = False
        given = [v for v in sources.values() if v is not None]
        dtype = given[0].dtype if given else torch.float32  # keep float64 sources exact
        for circuit in circuits:
            mask = torch.zeros(shape, dtype=torch.bool)
            value = torch.zeros(shape, dtype=dtype)
            for site in circuit:
                if site.hook_name != hook:
                    continue
                site_mask = site.mask(mask)
                mask |= site_mask
                source = sources[id(site)]
                if source is None:
                    scaled = True
                else:
                    value = torch.where(site_mask, source.to(value.dtype).cpu(), value)
            masks.append(mask)
            values.append(value)
        edits[hook] = Edit(
            mask=torch.cat(masks),
            values=None if scaled else torch.cat(values),
            scale=alpha if scaled else None,
        )
    return edits


def run_edits(ctx: RunContext, tokens: torch.Tensor, edits: dict[str, Edit], copies: int = 1) -> torch.Tensor:
    """One counted pass over ``tokens`` repeated ``copies`` times with ``edits`` applied; logits."""
    batch = tokens.repeat(copies, 1) if copies > 1 else tokens
    hooks = [(name, lambda act, hook, e=edit: e.apply(act)) for name, edit in edits.items()]
    logits, _ = ctx.run(batch, fwd_hooks=hooks, last_only=True)
    return logits


def _shapes(ctx: RunContext, sites: Sequence[Site]) -> dict[str, torch.Size]:
    _, cache = ctx.clean([s.hook_name for s in sites])
    return {s.hook_name: cache[s.hook_name].shape for s in sites}


def ablate(
    ctx: RunContext, sites: Sequence[Site], method: Method = "mean", alpha: float | None = None, seed: int = 0
) -> torch.Tensor:
    """Metric ``[n]`` of the clean prompts with every site in ``sites`` ablated by ``method``.

    ``soft`` multiplies the activation by ``alpha`` (which may be negative).
    """
    if method == "soft" and alpha is None:
        raise ValueError("soft ablation needs alpha")
    sources = {id(site): ablation_source(ctx, site, method, seed) for site in sites}
    edits = edits_for([list(sites)], sources, _shapes(ctx, sites), alpha=alpha)
    logits = run_edits(ctx, ctx.prompts.tokens, edits)
    return ctx.metric(logits, ctx.prompts)
