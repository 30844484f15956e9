"""One shard of a hypothesis' prompts measured (``verify --ray --shard-prompts K``), for a later merge.

Shard ``(i, k)`` of a run measures, for every claim that splits over its prompts
(:func:`circuitspec.claims.registry.splits_over_prompts`), the ``i``-th of ``k`` contiguous blocks of
that claim's prompt set, and every claim that does not split (a whole claim) whose turn it is: whole
claims are dealt round-robin over the shards, each measured on its full prompt set as an unsharded run
measures it. Prompt sets are built from the full rows exactly as ``planner.run_claims`` builds them
(same sampling, same corrupted twins), and only then sliced, so block ``i`` holds the same
prompts an unsharded run holds at those rows. What a split claim reads from the whole set, a mean
ablation's means, it still reads from the whole set: its shard context links to a context over the
full prompt set (:func:`~circuitspec.engine.reference_sets.link_whole_set`), whose clean run this shard
then computes. The merge is :mod:`circuitspec.distributed.shards` (torch-free, on the driver).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from circuitspec.claims.registry import splits_over_prompts
from circuitspec.claims.shard_rules import reads_whole_set_mean
from circuitspec.errors import CircuitSpecError
from circuitspec.graph.circuit import CircuitGraph
from circuitspec.measurement import Measurement

from .context import release_runs
from .models import LoadedModel
from .planner import _prompt_sets, extend_to_sources, measure_claim, prompt_key
from .prompts import PromptSet
from .reference_sets import link_whole_set, reference_links

__all__ = ["check_shard", "run_claims_on_shard", "shard_plan", "shard_rows"]

Key = tuple[str, ...]


def check_shard(shard: tuple[int, int]) -> None:
    """A one-line error unless ``shard`` is ``(index, count)`` with ``0 <= index < count``."""
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise CircuitSpecError(
            f"prompt shard {index} of {count}: write (index, count) with 0 <= index < count"
        )


def shard_rows(n: int, shard: tuple[int, int]) -> slice:
    """The contiguous block of ``n`` prompts shard ``(index, count)`` measures (sizes differ by at most 1)."""
    index, count = shard
    return slice(index * n // count, (index + 1) * n // count)


def shard_plan(graph: CircuitGraph, shard: tuple[int, int]) -> dict[str, bool]:
    """The claims shard ``(index, count)`` measures, in file order: True for a block of a split claim's
    prompts, False for a whole claim (the ``j``-th whole claim goes to shard ``j % count``)."""
    check_shard(shard)
    index, count = shard
    plan: dict[str, bool] = {}
    whole = 0
    for claim in graph.claims:
        if splits_over_prompts(claim):
            plan[claim.id] = True
            continue
        if whole % count == index:
            plan[claim.id] = False
        whole += 1
    return plan


def _last_uses(
    graph: CircuitGraph, plan: dict[str, bool], shared: dict[Key, Any], split: str | None
) -> tuple[dict[Key, int], dict[Key, int]]:
    """Per full prompt set and per sliced one, the index of the last claim this shard runs that reads it."""
    full: dict[Key, int] = {}
    sliced: dict[Key, int] = {}
    for index, claim in enumerate(graph.claims):
        if claim.id not in plan:
            continue
        key = prompt_key(graph, claim, split)
        if plan[claim.id]:
            sliced[key] = index
        if not plan[claim.id] or reads_whole_set_mean(claim):
            full[key] = index
    return extend_to_sources(full, shared), sliced


def run_claims_on_shard(
    graph: CircuitGraph,
    loaded: LoadedModel,
    rows: Sequence[dict],
    base_dir: Path,
    shard: tuple[int, int],
    seed: int | None = None,
    split: str | None = None,
) -> dict[str, Measurement]:
    """The Measurements of the claims shard ``shard`` measures (:func:`shard_plan`): a split claim's
    covers its block of prompts (none when the block is empty), a whole claim's its full prompt set."""
    seed = graph.hypothesis.seed if seed is None else seed
    plan = shard_plan(graph, shard)
    shared = _prompt_sets(graph, loaded, rows, split)
    last_full, last_sliced = _last_uses(graph, plan, shared, split)
    sliced: dict[Key, tuple[PromptSet, dict[str, Any]]] = {}
    results: dict[str, Measurement] = {}
    for index, claim in enumerate(graph.claims):
        if claim.id not in plan:
            continue
        key = prompt_key(graph, claim, split)
        prompts, counter, cache = shared[key]
        if isinstance(prompts, str):
            results[claim.id] = Measurement(claim.id, claim.kind, 0, error=prompts, seed=seed)
        elif not plan[claim.id]:
            results[claim.id] = measure_claim(graph, claim, loaded, prompts, counter, cache, seed=seed)
        else:
            if key not in sliced:
                sliced[key] = (prompts.take(shard_rows(len(prompts), shard)), _slice_cache(cache))
            part, part_cache = sliced[key]
            if len(part):  # more shards than prompts: this one has none of them
                if reads_whole_set_mean(claim):
                    link_whole_set(part_cache, claim.id, loaded.model, loaded.tokenizer, shared[key])
                results[claim.id] = measure_claim(graph, claim, loaded, part, counter, part_cache, seed=seed)
        for done in [k for k, last in last_full.items() if last == index]:
            release_runs(shared[done][2])
        for done in [k for k, last in last_sliced.items() if last == index and k in sliced]:
            release_runs(sliced[done][1])
    return results


def _slice_cache(full_cache: dict[str, Any]) -> dict[str, Any]:
    """A sliced set's cache: the hooks its claims read, and the ``mean_from`` reference links."""
    cache: dict[str, Any] = {"_needed": set(full_cache["_needed"]), "_declared": True}
    return cache | reference_links(full_cache)
