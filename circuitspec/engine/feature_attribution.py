"""Direct logit attribution of dictionary features (transcoder / SAE nodes) for ``attribution`` claims.

Lives in the engine because the planner runs it on the shared clean cache; the feature tools above the
engine (:mod:`circuitspec.features`) splice the dictionaries this reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from circuitspec.claims.hooks import dla_hooks
from circuitspec.engine.adapter import ModelAdapter
from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.logit_attribution import answer_direction, final_norm_reader
from circuitspec.engine.sites import Site

__all__ = ["feature_logit_attribution", "spliced_dictionary"]


def spliced_dictionary(adapter: ModelAdapter, site: Site) -> Any:
    """The sae-lens dictionary whose activations live on ``site.hook_name``."""
    sae = adapter.dictionary(site.hook_name.removesuffix(".hook_sae_acts_post"))
    if sae is None:
        raise ValueError(
            f"feature node '{site.node}' needs dictionary '{site.node.dictionary}' spliced in "
            "(declare it under model.dictionaries)"
        )
    return sae


def feature_logit_attribution(ctx: RunContext, sites: Sequence[Site]) -> torch.Tensor:
    """Summed per-prompt direct logit attribution ``[n]`` of feature sites at the end token.

    ``a_f(end) · W_dec[f]`` through the final LayerNorm with the clean run's cached scale (the
    same linearisation as head / MLP DLA) onto ``W_U[:, desired] − W_U[:, undesired]``.
    """
    prompts = ctx.prompts
    _, cache = ctx.clean([*dla_hooks(ctx.adapter.arch), *(s.hook_name for s in sites)])
    rows = torch.arange(len(prompts))
    ends = prompts.lengths - 1
    read = final_norm_reader(ctx, cache, answer_direction(ctx))
    total = torch.zeros(len(prompts))
    for site in sites:
        if site.node.role not in (None, "end"):
            raise ValueError(
                f"'{site.node}': direct logit attribution is read at the end token, not at @{site.node.role}"
            )
        sae = spliced_dictionary(ctx.adapter, site)
        acts = cache[site.hook_name][rows, ends, site.index]  # [n]
        total += (acts[:, None] * sae.W_dec[site.index][None] * read).sum(-1).float().cpu()
    return total
