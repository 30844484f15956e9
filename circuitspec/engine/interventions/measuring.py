"""The one way a claim's ``measure`` builds its :class:`Measurement`: seed, cost, arrays, plots.

Every claim kind's ``measure(ctx, claim, graph, seed) -> Measurement`` starts a
:class:`MeasurementBuilder`, adds per-prompt arrays (tensors become float64 numpy), sweep points
and typed plot payloads, and calls :meth:`~MeasurementBuilder.build`, which records the seed and
the passes / tokens / seconds the claim added to the shared :class:`PassCounter`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from circuitspec.claims import claim_kind
from circuitspec.engine.context import RunContext
from circuitspec.engine.sites import Site, resolve_site
from circuitspec.errors import one_line
from circuitspec.measurement import AttentionRow, Measurement, PlotPayload, RunCost, SweepPoint

__all__ = ["MeasurementBuilder", "claim_sites", "clean_corrupt", "fill_random_baseline", "to_numpy"]

Array = torch.Tensor | np.ndarray


def to_numpy(values: Array) -> np.ndarray:
    """Per-prompt values as a float64 numpy array."""
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy().astype(np.float64)
    return np.asarray(values, dtype=np.float64)


class MeasurementBuilder:
    """Collects one claim's results; :meth:`build` stamps seed and cost from the pass counter."""

    def __init__(self, ctx: RunContext, claim: Any, seed: int) -> None:
        self.ctx = ctx
        self.measurement = Measurement(claim.id, claim.kind, len(ctx.prompts), seed=seed)
        self.measurement.prompt_labels = list(ctx.prompts.texts)  # aligned with the arrays; no pass
        self._start = (
            ctx.counter.forward_passes,
            ctx.counter.tokens,
            ctx.counter.layer_passes,
            time.perf_counter(),
        )

    def arrays(self, **arrays: Array) -> MeasurementBuilder:
        self.measurement.arrays.update({name: to_numpy(values) for name, values in arrays.items()})
        return self

    def sweep(self, variable: str, x: float | int | str, **arrays: Array) -> MeasurementBuilder:
        self.measurement.sweep_variable = variable
        self.measurement.sweep.append(SweepPoint(x, {k: to_numpy(v) for k, v in arrays.items()}))
        return self

    def plot(self, payload: PlotPayload) -> MeasurementBuilder:
        self.measurement.plots.append(payload)
        return self

    def attention_row(self, row: AttentionRow) -> MeasurementBuilder:
        self.measurement.attention_rows.append(row)
        return self

    def note(self, **notes: Any) -> MeasurementBuilder:
        self.measurement.extra.update(notes)
        return self

    def build(self) -> Measurement:
        passes, tokens, layers, started = self._start
        counter = self.ctx.counter
        self.measurement.cost = RunCost(
            counter.forward_passes - passes,
            counter.tokens - tokens,
            time.perf_counter() - started,
            counter.layer_passes - layers,
        )
        return self.measurement


def claim_sites(ctx: RunContext, graph: Any, claim: Any) -> list[Site]:
    """The claim's targets resolved to per-prompt sites."""
    return [resolve_site(node, ctx.prompts, ctx.adapter.arch) for node in graph.targets(claim.id)]


def clean_corrupt(ctx: RunContext) -> tuple[np.ndarray, np.ndarray]:
    """The metric on the shared clean and corrupted runs."""
    clean_logits, _ = ctx.clean()
    corrupt_logits, _ = ctx.corrupted()
    return to_numpy(ctx.metric(clean_logits, ctx.prompts)), to_numpy(ctx.metric(corrupt_logits, ctx.prompts))


def fill_random_baseline(b: MeasurementBuilder, graph: Any, claim: Any, runner: Any) -> None:
    """Set ``random_baseline`` when the claim asks for one: its statistic on random circuits of the same
    shape, each run by ``runner`` (the claim kind's batched circuit runner; a note says why it cannot)."""
    if claim.random_baseline is None:
        return
    if not claim_kind(claim.kind).random_baseline:
        b.note(random_baseline_error=f"random-circuit baselines are not available for {claim.kind} claims")
        return
    from .random_circuits import random_baseline, random_node_sets

    expectation = claim.expectation
    stat = expectation.statistic if expectation.form != "trend" else "mean"
    spec = claim.random_baseline
    node_sets = random_node_sets(graph.targets(claim.id), b.ctx.adapter.arch, spec.n, spec.seed)
    try:
        b.measurement.random_baseline = random_baseline(b.ctx, node_sets, stat, runner)
    except ValueError as exc:  # the claim itself was measured; only its baseline is unavailable
        b.note(random_baseline_error=one_line(exc))
