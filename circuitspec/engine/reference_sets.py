"""Reference prompt sets for mean ablation (``mean_from``): planned like any prompt set, read by the claim.

A claim with ``mean_from: {data, split}`` takes its mean activation from a separate set of prompts
(its templates and rows), not from the prompts it measures. The planner gives that set a group of its
own (:func:`add_reference_groups`, so its clean run is shared and caches the claim's hooks) and hands
the claim's prompt set a run context over it (:func:`link_reference_sets`); the claim asks for it with
:func:`reference_context`, and :func:`reference_mean` is what the ablation writes.

The mean (our choice, as for the claim's own prompts): a node pinned to a role gets the mean over the
reference prompts of its activation at each one's role position; a node at every position gets, at
each position, the mean over the reference prompts real there, and at positions no reference prompt
reaches, the mean over every real reference token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from circuitspec.errors import CircuitSpecError
from circuitspec.spec.mean_reference import reference_templates
from circuitspec.spec.splits import claim_split

from .context import RunContext
from .sites import Site, resolve_site

__all__ = [
    "WHOLE_SET",
    "add_reference_groups",
    "link_reference_sets",
    "link_whole_set",
    "reference_context",
    "reference_key",
    "reference_links",
    "reference_mean",
]

_LINK = "_mean_from:"  # cache key prefix ("_": kept when the runs are released)
WHOLE_SET = "_whole_set:"  # a prompt shard's link to its whole prompt set, for the mean (engine.shards)


def reference_key(graph: Any, claim: Any, run_split: str | None = None) -> tuple[str, ...] | None:
    """The prompt-set key (split, *template ids) of the claim's ``mean_from``; None without one."""
    reference = getattr(claim, "mean_from", None)
    if reference is None or getattr(claim, "method", None) != "mean":
        return None
    split = reference.split or claim_split(claim, graph.hypothesis, run_split)
    return (split, *reference_templates(graph.hypothesis.data.templates, reference.data))


def add_reference_groups(groups: dict[tuple[str, ...], list[str]], graph: Any, run_split: str | None) -> None:
    """Add each claim to its reference set's group, so that set is built and caches the claim's hooks."""
    for claim in graph.claims:
        key = reference_key(graph, claim, run_split)
        if key is not None and claim.id not in groups.setdefault(key, []):
            groups[key].append(claim.id)


def _metric_unused(*args: Any, **kwargs: Any) -> torch.Tensor:
    raise RuntimeError("a reference prompt set gives activations only, never a metric")


def link_reference_sets(
    sets: dict[tuple[str, ...], tuple[Any, Any, dict[str, Any]]],
    graph: Any,
    model: Any,
    tokenizer: Any,
    own_key: Callable[[Any], tuple[str, ...]],
    run_split: str | None = None,
) -> None:
    """Give each ``mean_from`` claim's own prompt set a run context over its reference set (or the one-line
    reason that set could not be built); ``own_key(claim)`` is the planner's prompt-set key."""
    for claim in graph.claims:
        key = reference_key(graph, claim, run_split)
        if key is None:
            continue
        prompts, counter, cache = sets[key]
        link: RunContext | str = (
            prompts
            if isinstance(prompts, str)
            else RunContext(model, prompts, _metric_unused, counter, cache, tokenizer=tokenizer)
        )
        sets[own_key(claim)][2][f"{_LINK}{claim.id}"] = link


def reference_links(cache: dict[str, Any]) -> dict[str, Any]:
    """A prompt set's ``mean_from`` links (a shard's sliced set keeps them)."""
    return {key: link for key, link in cache.items() if key.startswith(_LINK)}


def link_whole_set(
    shard_cache: dict[str, Any], claim_id: str, model: Any, tokenizer: Any, whole: tuple[Any, Any, dict]
) -> None:
    """On a prompt shard, give the claim a run context over its whole prompt set (``whole``: prompts,
    counter, cache), so its mean ablation averages the whole set, as an unsharded run does."""
    prompts, counter, cache = whole
    link = RunContext(model, prompts, _metric_unused, counter, cache, tokenizer=tokenizer)
    shard_cache[f"{WHOLE_SET}{claim_id}"] = link


def reference_context(ctx: RunContext, claim: Any) -> RunContext | None:
    """The run context over the claim's reference prompts: its ``mean_from`` set; on a shard of its
    prompts (``engine.shards``), its whole prompt set; None otherwise (the mean over its own prompts)."""
    if getattr(claim, "mean_from", None) is None:
        claim_id = getattr(claim, "id", None)  # a bare settings object (no id): the mean over its own prompts
        return None if claim_id is None else ctx.cached(f"{WHOLE_SET}{claim_id}", lambda: None)
    link = ctx.cached(f"{_LINK}{claim.id}", lambda: "the claim was not planned with its reference prompts")
    if isinstance(link, str):
        raise CircuitSpecError(f"mean_from: {link}")
    return link


def reference_mean(reference: RunContext, site: Site, act: torch.Tensor) -> torch.Tensor:
    """What a mean ablation writes at ``site`` (shaped like the claim's activation ``act``), from the
    reference prompts' clean run (see the module docstring)."""
    _, cache = reference.clean([site.hook_name])
    ref_act = cache[site.hook_name].to(act.device, act.dtype)
    if site.positions is not None:
        ref_site = resolve_site(site.node, reference.prompts, reference.adapter.arch)
        whole = Site(site.node, site.hook_name, site.head, None, ref_site.positions).select(ref_act)
        mean = whole.mean(0, keepdim=True).expand(act.shape[0], *whole.shape[1:])
        out = torch.zeros_like(act)
        rows = torch.arange(act.shape[0], device=act.device)
        pos = site.positions.to(act.device)
        if site.head is not None:
            out[rows, pos, site.head] = mean
        else:
            out[rows, pos] = mean
        return out
    lengths = reference.prompts.lengths
    real = (torch.arange(ref_act.shape[1])[None, :] < lengths[:, None]).to(act.device, act.dtype)
    real = real.reshape(*real.shape, *([1] * (ref_act.dim() - 2)))
    count = real.sum(0)  # [pos_ref, 1, ...]
    per_position = (ref_act * real).sum(0) / count.clamp(min=1)
    overall = (ref_act * real).sum((0, 1)) / real.sum((0, 1))
    mean = overall.expand(act.shape[1:]).clone()
    k = min(act.shape[1], ref_act.shape[1])
    mean[:k] = torch.where(count[:k] > 0, per_position[:k], overall)
    return mean.unsqueeze(0).expand_as(act)
