"""The ``steering`` claim: add ``α·e`` at one node and role over the claim's α, against random directions.

``e`` is the claim's direction file (``circuitspec directions``), added as its raw mean difference
(unit × norm). One sweep point per α (``value``: steered − unsteered per prompt); the top-level arrays
and the random-direction control (``random_baseline``: each random direction's mean change) are at the
last α listed, the point the verdict reads, so the percentile-vs-random statistics and the report's
histogram of random baselines apply unchanged. Two ways to measure:

- ``metric`` (no ``score``): :func:`circuitspec.engine.steering.steering_sweep` runs the α sweep and, per
  seed, a random direction of the same norm at every α, in batched partial passes.
- ``score`` (a text score): the prompts are continued by :func:`circuitspec.engine.generation.generate`
  with ``StepEdit(site, shift=α·e)`` (a :class:`~circuitspec.engine.steering.Shift`) active on every
  step, scored by the generation claim's scorer against the same generation without the shift (α = 0
  is that control itself). Where the shift acts: the emotion paper adds ``h + αe`` to the residual
  stream of the whole sequence, generated tokens included, which is a node named without a role
  (``resid_pre7``: every position, every step); a node with a role (``resid_pre7@word``) is shifted at
  that prompt token only, in the prompt pass, and reaches generated tokens through the cached keys and
  values. Each random direction is one more generation, so they run at the verdict's α only.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from circuitspec import text_metrics
from circuitspec.directions.store import Stored, load
from circuitspec.engine.context import RunContext
from circuitspec.engine.generation import Generated, GenerationConfig, StepEdit, generate
from circuitspec.engine.sites import Site
from circuitspec.engine.steering import random_direction, steering_site, steering_sweep
from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement

from .generation_claim import _in_chat, _scorer, _targets
from .measuring import MeasurementBuilder

__all__ = ["control_seeds", "measure", "prompt_percentiles"]


def control_seeds(seed: int, n: int) -> list[int]:
    """``n`` seeds for the random directions, derived from the run's seed (``numpy.random.SeedSequence``):
    the same run seed always draws the same control."""
    return [int(s) for s in np.random.SeedSequence(int(seed)).generate_state(n)] if n else []


def prompt_percentiles(value: np.ndarray, random: np.ndarray) -> dict[str, np.ndarray]:
    """Per prompt, the share of random directions whose change is below the direction's (ties count
    half): ``{"percentile": [n]}`` in 0..1, or nothing without random directions (``random`` ``[seeds, n]``).

    Hand-written rather than ``scipy.stats.percentileofscore`` per prompt: one vectorized comparison.
    """
    if random.shape[0] == 0:
        return {}
    below = (random < value).mean(axis=0) + 0.5 * (random == value).mean(axis=0)
    return {"percentile": below}


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """The α sweep at the claim's one target, with ``random_directions`` random controls."""
    b = MeasurementBuilder(ctx, claim, seed)
    (node,) = graph.targets(claim.id)
    stored = load(claim.direction_path)
    if stored.provenance.kind != "direction":
        raise CircuitSpecError(
            f"claim '{claim.id}': '{claim.direction}' holds a {stored.provenance.kind}, not a direction"
        )
    vector = stored.direction().raw
    seeds = control_seeds(seed, claim.random_directions)
    if claim.score is not None:
        random_means = _text_sweep(ctx, b, claim, node, vector, seeds, seed)
    else:
        random_means = _metric_sweep(ctx, b, claim, node, vector, seeds)
    if claim.expectation.statistic == "percentile":  # the comparison is the statistic itself
        b.note(random_direction_means=[float(x) for x in random_means])
    elif seeds:
        b.measurement.random_baseline = random_means
    _provenance_notes(b, claim, stored, seeds)
    return b.build()


def _metric_sweep(
    ctx: RunContext, b: MeasurementBuilder, claim: Any, node: Any, vector: np.ndarray, seeds: list[int]
) -> np.ndarray:
    """The metric's α sweep (:func:`steering_sweep`); each random direction's mean change at the last α."""
    grid = steering_sweep(ctx, {node.text: vector}, claim.alphas, seeds)
    steered = grid.measurement(claim.id, node.text, alpha=float(claim.alphas[-1]))
    for j, point in enumerate(steered.sweep):
        ranks = prompt_percentiles(point.arrays["value"], grid.random[0, :, j] - grid.clean)
        b.sweep("alpha", point.x, **point.arrays, **ranks)
    b.arrays(**b.measurement.sweep[-1].arrays)
    b.note(**steered.extra)
    return steered.random_baseline if steered.random_baseline is not None else np.zeros(0)


def _text_sweep(
    ctx: RunContext,
    b: MeasurementBuilder,
    claim: Any,
    node: Any,
    vector: np.ndarray,
    seeds: list[int],
    seed: int,
) -> np.ndarray:
    """Generated text scored at each α against the unsteered generation; the random directions of the
    same norm at the last α (their per-prompt changes rank the direction's: ``percentile``)."""
    tokenizer, ids, site = _prompt_ids(ctx, claim, steering_site(ctx, node, vector))
    config = GenerationConfig(
        max_new_tokens=claim.max_new_tokens, temperature=claim.temperature, top_k=claim.top_k, seed=seed,
        stop=tuple(claim.stop), batch_size=claim.batch_size,
    )  # fmt: skip
    score = _scorer(claim, ctx, tokenizer)
    control = generate(ctx.adapter, tokenizer, ids, (), config, ctx.counter)
    clean = score(control)

    def steered(direction: np.ndarray, alpha: float) -> tuple[Generated, np.ndarray, np.ndarray]:
        """The generation with ``alpha × direction`` added, its scores and its change per prompt."""
        out = control
        if alpha != 0.0:  # α = 0 adds nothing: the control itself
            shift = torch.as_tensor(alpha * direction).reshape(1, -1).repeat(len(ids), 1)
            edit = StepEdit(site, shift=shift)
            out = generate(ctx.adapter, tokenizer, ids, [edit], config, ctx.counter)
        scores = score(out)
        if claim.score == "flip":
            return out, scores, text_metrics.flips(control.texts, out.texts, _targets(claim, ctx))
        return out, scores, scores - clean

    texts: dict[str, list[str]] = {"control": control.texts}
    last = float(claim.alphas[-1])
    norm = float(np.linalg.norm(vector))
    random = [steered(random_direction(vector.size, norm, s), last) for s in seeds]
    random_values = np.stack([value for _, _, value in random]) if random else np.zeros((0, len(ids)))
    for alpha in (float(a) for a in claim.alphas):
        out, scores, value = steered(vector, alpha)
        ranks = prompt_percentiles(value, random_values) if alpha == last else {}
        b.sweep("alpha", alpha, value=value, clean=clean, intervened=scores, **ranks)
        texts[f"alpha={alpha:g}"] = out.texts
    b.arrays(**b.measurement.sweep[-1].arrays)
    b.note(
        generated=texts,
        random_generated={f"seed={s}": out.texts for s, (out, _, _) in zip(seeds, random, strict=True)},
        node=node.text,
        alpha=last,
        norm=norm,
        seeds=list(seeds),
    )
    return random_values.mean(axis=1) if random else np.zeros(0)


def _prompt_ids(ctx: RunContext, claim: Any, site: Site) -> tuple[Any, list[list[int]], Site]:
    """The tokenizer, each prompt's token ids (in the chat template when the claim asks) and the site
    moved with them."""
    tokenizer = ctx.tokenizer
    if tokenizer is None:
        raise CircuitSpecError("a steering claim with a text score needs the model's tokenizer")
    prompts = ctx.prompts
    ids = [prompts.tokens[i, : int(prompts.lengths[i])].tolist() for i in range(len(prompts))]
    if claim.chat:
        ids, (site,) = _in_chat(claim, tokenizer, ids, [site])
    return tokenizer, ids, site


def _provenance_notes(b: MeasurementBuilder, claim: Any, stored: Stored, seeds: list[int]) -> None:
    b.note(
        direction=claim.direction,
        direction_sha256=stored.sha256,
        provenance=asdict(stored.provenance),
        random_directions=len(seeds),
    )
