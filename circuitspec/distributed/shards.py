"""Merging prompt shards (``verify --ray --shard-prompts K``) into one Verification, before statistics.

Each shard task returns an unjudged Verification of its claims (:mod:`circuitspec.engine.shards`): a
claim that splits over its prompts has one Measurement per shard, each over a contiguous block of its
prompts; a whole claim has one, from the shard that ran it. :func:`merge_measurements` concatenates a
split claim's per-prompt arrays (top-level and every sweep point), prompt labels and per-target plot
values in shard order, which is prompt order, and sums the costs; :func:`merge_verifications` then
judges the merged measurements once, so intervals, p-values and the family-wise correction see the
same arrays an unsharded run gives them. Torch-free: it runs on the driver.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from circuitspec import pipeline
from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement, RunCost, SweepPoint, TargetValues

__all__ = ["merge_measurements", "merge_verifications"]


def _same(a: Any, b: Any) -> bool:
    """Plain equality for notes and plot payloads (numpy arrays compared element-wise)."""
    try:
        return bool(np.all(a == b)) if isinstance(a, np.ndarray) else bool(a == b)
    except (TypeError, ValueError):
        return repr(a) == repr(b)


def _concat(claim_id: str, what: str, parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-prompt arrays of every shard, joined in shard order; the shards must name the same arrays."""
    names = list(parts[0])
    if any(list(p) != names for p in parts):
        raise CircuitSpecError(f"{claim_id}: the prompt shards measured different {what}; cannot merge them")
    return {name: np.concatenate([p[name] for p in parts]) for name in names}


def _merge_sweeps(claim_id: str, parts: Sequence[Measurement]) -> list[SweepPoint]:
    xs = [point.x for point in parts[0].sweep]
    if any([point.x for point in p.sweep] != xs for p in parts):
        raise CircuitSpecError(f"{claim_id}: the prompt shards swept different points; cannot merge them")
    return [
        SweepPoint(x, _concat(claim_id, f"arrays at {x}", [p.sweep[i].arrays for p in parts]))
        for i, x in enumerate(xs)
    ]


def _merge_plots(claim_id: str, parts: Sequence[Measurement]) -> list[Any]:
    """Per-target values are per prompt (joined); any other payload must be the same on every shard
    (claims whose plots average over the prompts run whole, never split: ``claims.shard_rules``)."""
    if any(len(p.plots) != len(parts[0].plots) for p in parts):
        raise CircuitSpecError(f"{claim_id}: the prompt shards drew different plots; cannot merge them")
    merged: list[Any] = []
    for i, payload in enumerate(parts[0].plots):
        others = [p.plots[i] for p in parts[1:]]
        targets = [o for o in others if isinstance(o, TargetValues)]
        if isinstance(payload, TargetValues) and len(targets) == len(others):
            joined = _concat(claim_id, "targets", [payload.values, *(o.values for o in targets)])
            merged.append(TargetValues(joined, payload.title))
        elif all(_same(payload, o) for o in others):
            merged.append(payload)
        else:
            raise CircuitSpecError(
                f"{claim_id}: its plot '{type(payload).__name__}' differs between prompt shards"
            )
    return merged


def _merge_notes(claim_id: str, parts: Sequence[Measurement]) -> dict:
    notes = dict(parts[0].extra)
    for p in parts[1:]:
        if set(p.extra) != set(notes) or any(not _same(notes[k], p.extra[k]) for k in notes):
            raise CircuitSpecError(f"{claim_id}: its notes differ between prompt shards; cannot merge them")
    return notes


def _total_cost(parts: Sequence[Measurement]) -> RunCost:
    return RunCost(
        sum(p.cost.forward_passes for p in parts),
        sum(p.cost.tokens for p in parts),
        sum(p.cost.seconds for p in parts),
        sum(p.cost.layer_passes for p in parts),
    )


def merge_measurements(parts: Sequence[Measurement]) -> Measurement:
    """One claim's shard Measurements (in shard order) as the one Measurement of its whole prompt set;
    a shard that could not measure it makes the merge that error (never a partial result)."""
    if not parts:
        raise ValueError("no measurements to merge")
    first = parts[0]
    if len(parts) == 1:
        return first
    claim_id = first.claim_id
    failed = next((p for p in parts if p.error is not None), None)
    if failed is not None:
        return Measurement(
            claim_id, first.kind, sum(p.n_prompts for p in parts), error=failed.error, seed=first.seed,
            cost=_total_cost(parts),
        )  # fmt: skip
    if any(p.random_baseline is not None for p in parts) or any(p.attention_rows for p in parts):
        raise CircuitSpecError(
            f"{claim_id}: random baselines and attention views are measured whole, not split"
        )
    return dataclasses.replace(
        first,
        n_prompts=sum(p.n_prompts for p in parts),
        arrays=_concat(claim_id, "arrays", [p.arrays for p in parts]),
        sweep=_merge_sweeps(claim_id, parts),
        plots=_merge_plots(claim_id, parts),
        extra=_merge_notes(claim_id, parts),
        cost=_total_cost(parts),
        prompt_labels=[label for p in parts for label in p.prompt_labels],
    )


def merge_verifications(parts: Sequence[Any], split: str | None = None) -> Any:
    """The shards' unjudged Verifications (in shard order) as one judged Verification: every claim's
    measurements merged, then the verdicts of the whole family at once (``split`` as given to the run)."""
    first = parts[0]
    measurements: dict[str, Measurement] = {}
    for claim in first.graph.claims:
        got = [p.measurements[claim.id] for p in parts if claim.id in p.measurements]
        if not got:
            raise CircuitSpecError(f"{claim.id}: no prompt shard measured it")
        measurements[claim.id] = merge_measurements(got)
    merged = dataclasses.replace(
        first, measurements=measurements, outcomes=[], seconds=max(p.seconds for p in parts)
    )
    return pipeline.judge_verification(merged, split)
