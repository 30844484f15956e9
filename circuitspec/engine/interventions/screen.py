"""The ``screen`` claim: the kind in ``of`` measured on every cell of a grid, one sweep point per cell.

Each cell's per-prompt arrays are exactly what the single-target claim of kind ``of`` on that cell
reports (the same kernels: ``direct_logit_attribution``, ``attention_prob``, the ablation and
patching claims' ``circuit_arrays``); ablation and patching run the cells as stacked circuits, so a
layer × head screen costs one edited batch per chunk of cells, not one pass per cell. The grid
layout travels in ``Measurement.extra["screen"]``; the report draws the judged cells as a heatmap
(``reports/screen_plots.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitspec.claims.screens import single_claim
from circuitspec.engine.context import RunContext
from circuitspec.engine.sites import Site
from circuitspec.measurement import Measurement
from circuitspec.spec.screens import cell_position

from .measuring import MeasurementBuilder, claim_sites, to_numpy

__all__ = ["CHUNK", "cell_arrays", "difference_values", "measure"]

CHUNK = 32  # cells whose edited copies of the prompt batch run together (bounds memory)


def _attribution(ctx: RunContext, sites: list[Site], versus: tuple[str, ...]) -> list[dict[str, np.ndarray]]:
    from .logit_attribution import direct_logit_attribution

    if ctx.adapter.arch.encoder:
        raise ValueError("attribution screens read logits; an encoder has none (screen ablation instead)")
    values = [to_numpy(direct_logit_attribution(ctx, [s])) for s in sites]
    if versus:
        second = np.array([t in versus for t in ctx.prompts.template_ids])
        return [{"value": difference_values(x, second)} for x in values]
    clean = to_numpy(ctx.metric(ctx.clean()[0], ctx.prompts))
    return [{"value": x, "clean": clean} for x in values]


def difference_values(x: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per-prompt values whose mean is mean(x | first group) − mean(x | second group) and whose
    standard error is the unpaired (Welch) one: the difference's empirical influence values,
    Δ + (N / n_g)(x − mean_g) with the sign of each prompt's group g.

    Hand-written because the statistics layer resamples one array of paired per-prompt values; these
    let its interval methods judge an unpaired difference of means without a two-sample path.
    """
    n, n_second = x.size, int(second.sum())
    if n_second < 2 or n - n_second < 2:
        raise ValueError(f"a difference of groups needs 2 prompts in each ({n - n_second} and {n_second})")
    first_mean, second_mean = float(x[~second].mean()), float(x[second].mean())
    out = np.empty_like(x, dtype=np.float64)
    out[~second] = n / (n - n_second) * (x[~second] - first_mean)
    out[second] = -n / n_second * (x[second] - second_mean)
    return out + (first_mean - second_mean)


def _attention(ctx: RunContext, sites: list[Site], claim: Any) -> list[dict[str, np.ndarray]]:
    from .attention import attention_prob

    return [{"value": to_numpy(attention_prob(ctx, s, claim.source, claim.destination))} for s in sites]


def _edited(ctx: RunContext, sites: list[Site], single: Any, seed: int) -> list[dict[str, np.ndarray]]:
    """Ablation / activation patching: each cell a one-site circuit, ``CHUNK`` circuits per batch."""
    from . import ablation_claim, activation_patching_claim

    out: list[dict[str, np.ndarray]] = []
    for start in range(0, len(sites), CHUNK):
        circuits = [[site] for site in sites[start : start + CHUNK]]
        if single.kind == "ablation":
            out += ablation_claim.circuit_arrays(ctx, circuits, single, seed)
        else:
            out += activation_patching_claim.circuit_arrays(ctx, circuits, single)
    return out


def cell_arrays(
    ctx: RunContext, claim: Any, graph: Any, seed: int
) -> tuple[list[Site], list[dict[str, np.ndarray]]]:
    """Every cell's site and per-prompt arrays, in the order of ``graph.targets(claim.id)``."""
    sites = claim_sites(ctx, graph, claim)
    if claim.of == "attribution":
        return sites, _attribution(ctx, sites, claim.versus_templates)
    if claim.of == "attention":
        return sites, _attention(ctx, sites, claim)
    return sites, _edited(ctx, sites, single_claim(claim, sites[0].node.text), seed)


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """A ``screen`` claim: one sweep point per cell (x = the cell's name) and the grid's layout."""
    b = MeasurementBuilder(ctx, claim, seed)
    sites, arrays = cell_arrays(ctx, claim, graph, seed)
    cells = [site.node.text for site in sites]
    for cell, cell_values in zip(cells, arrays, strict=True):
        b.sweep("cell", cell, **cell_values)
    positions = [cell_position(site.node) for site in sites]
    b.note(
        screen={
            "of": claim.of,
            "cells": cells,
            "positions": [list(p) for p in positions],
            "named": list(claim.named_cells),
            "cell_family": claim.cell_family,
        }
    )
    return b.build()
