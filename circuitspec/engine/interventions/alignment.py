"""The ``alignment`` claim: read two sites (two models, or one model twice), fit a linear map on the
``fit`` prompts, and measure how the source's offsets from neutral transfer to the target's.

Reading happens while each model is loaded (:func:`read_sites`, one clean run per prompt set); the
measurement is numpy on the saved activations (:func:`measure`), once both sides are read. The
geometry (maps, principal angles, PCA) is :mod:`circuitspec.directions.geometry`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from circuitspec.directions.geometry import (
    LinearMap,
    evaluate_map,
    fit_least_squares,
    fit_procrustes,
    pca_subspace,
    subspace_overlap,
)
from circuitspec.measurement import Measurement

__all__ = ["SiteActivations", "measure", "overlap_table", "read_sites"]


@dataclass
class SiteActivations:
    """One side of an alignment claim: activations ``[n, width]`` of the fit prompts (exploration rows)
    and of the evaluation prompts (the verdict's rows), rows aligned across the two sides."""

    fit: np.ndarray
    evaluate: np.ndarray
    labels: list[str]  # per evaluation prompt: its template id (the emotion category)


def read_sites(
    loaded_model: Any, spec: Any, claim: Any, side: int, rows: dict[str, list[Any]]
) -> SiteActivations:
    """Side ``side`` (0 source, 1 target) of ``claim`` read on ``loaded_model``: the ``fit`` templates on
    ``rows['fit']`` and the claim's ``data`` templates on ``rows['evaluate']``."""
    from circuitspec.claims.alignment_checks import fit_templates
    from circuitspec.engine.context import RunContext
    from circuitspec.engine.metrics import logit_diff
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.engine.steering import collect

    def read(template_ids: list[str], chosen: list[Any]) -> tuple[np.ndarray, list[str]]:
        prompts = build_prompt_set(
            spec.data, chosen, loaded_model.tokenizer, template_ids, seed=spec.data.seed
        )
        ctx = RunContext.of_loaded(loaded_model, prompts, logit_diff)
        return collect(ctx, claim.sites[side], claim.pooling), list(prompts.template_ids)

    fit_ids = [t for ids in fit_templates(spec, claim.fit) for t in ids or []]
    evaluate_ids = _evaluation_templates(spec, claim)
    fit, _ = read(fit_ids, rows["fit"])
    evaluate, labels = read(evaluate_ids, rows["evaluate"])
    return SiteActivations(fit, evaluate, labels)


def _evaluation_templates(spec: Any, claim: Any) -> list[str]:
    """The claim's ``data`` templates (ids or tags; all when it names none)."""
    from circuitspec.claims.alignment_checks import fit_templates

    if claim.data is None:
        return [t.id for t in spec.data.templates]
    return [t for ids in fit_templates(spec, claim.data) for t in ids or []]


def _fit(kind: str, x: np.ndarray, y: np.ndarray) -> LinearMap:
    return fit_least_squares(x, y) if kind == "least_squares" else fit_procrustes(x, y)


def _offset_cosines(fitted: LinearMap, source: SiteActivations, target: SiteActivations) -> np.ndarray:
    """Per evaluation prompt: cos((h_s − μ_s) W, h_t − μ_t), μ the fit prompts' means."""
    mapped = fitted.direction(source.evaluate - source.fit.mean(axis=0))
    own = target.evaluate - target.fit.mean(axis=0)
    norms = np.linalg.norm(mapped, axis=1) * np.linalg.norm(own, axis=1)
    dots = np.einsum("ij,ij->i", mapped, own)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def overlap_table(source: SiteActivations, target: SiteActivations, ks: list[int]) -> list[dict[str, Any]]:
    """Per k: the overlap (mean cos² of the principal angles) between the target's k-dimensional PCA
    subspace of held-out offsets and the source's, mapped by least squares and by Procrustes (and
    unmapped when both are equally wide), beside k / width, two random subspaces' expected overlap."""
    maps = {kind: _fit(kind, source.fit, target.fit) for kind in ("least_squares", "procrustes")}
    src = source.evaluate - source.fit.mean(axis=0)
    tgt = target.evaluate - target.fit.mean(axis=0)
    width = tgt.shape[1]
    table = []
    for k in ks:
        if k > min(src.shape[0] - 1, width, src.shape[1]):
            continue
        target_basis = pca_subspace(tgt, k).basis
        source_basis = pca_subspace(src, k).basis
        row: dict[str, Any] = {"k": k, "random": k / width}
        for kind, fitted in maps.items():
            row[kind] = subspace_overlap(fitted.subspace(source_basis), target_basis)
        if src.shape[1] == width:
            row["unmapped"] = subspace_overlap(source_basis, target_basis)
        table.append(row)
    return table


def _shuffled_means(claim: Any, source: SiteActivations, target: SiteActivations, seed: int) -> np.ndarray:
    """Per shuffled map (``random_baseline.n`` of them): the mean offset cosine of a map fitted with the
    fit prompts' pairing permuted, which keeps both geometries but breaks the correspondence."""
    if claim.random_baseline is None:
        return np.zeros(0)
    rng = np.random.default_rng([seed, claim.random_baseline.seed])
    means = []
    for _ in range(claim.random_baseline.n):
        order = rng.permutation(source.fit.shape[0])
        shuffled = _fit(claim.map, source.fit, target.fit[order])
        means.append(float(_offset_cosines(shuffled, source, target).mean()))
    return np.asarray(means)


def measure(sides: tuple[SiteActivations, SiteActivations], claim: Any, seed: int) -> Measurement:
    """The claim's per-prompt offset cosines, per-category means, held-out fit quality, the overlap
    table and the shuffled-map control."""
    source, target = sides
    fitted = _fit(claim.map, source.fit, target.fit)
    value = _offset_cosines(fitted, source, target)
    categories = sorted(set(source.labels))
    label_array = np.asarray(source.labels)
    per_category = {c: float(value[label_array == c].mean()) for c in categories}
    held_out = evaluate_map(fitted, source.evaluate, target.evaluate)
    measurement = Measurement(claim.id, claim.kind, int(value.size), arrays={"value": value}, seed=seed)
    random = _shuffled_means(claim, source, target, seed)
    measurement.random_baseline = random if random.size else None
    measurement.prompt_labels = list(source.labels)
    measurement.extra = {
        "models": list(claim.models),
        "sites": list(claim.sites),
        "map": claim.map,
        "fit_prompts": int(source.fit.shape[0]),
        "widths": [int(source.fit.shape[1]), int(target.fit.shape[1])],
        "offset_cosine_by_category": per_category,
        "held_out_r2": held_out.r2,
        "held_out_activation_cosine": held_out.mean_cosine,
        "subspace_overlap": overlap_table(source, target, claim.k),
    }
    return measurement
