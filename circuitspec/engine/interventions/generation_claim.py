"""The ``generation`` claim: continue the prompts with the targets scaled by α on every generated step,
score each continuation (``circuitspec.text_metrics``) and compare with the same generation without the
intervention (the control, α = 1).

One sweep point per α: ``intervened`` is the intervened text's score, ``clean`` the control's and
``value`` their difference (``flip``: the per-prompt flip indicator, so ``mean`` is the flip rate).
The generated texts go to ``Measurement.extra["generated"]`` for the report; a ``levenshtein`` claim
also records each α's % change of the mean distance against the control (``distance_change_pct``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from circuitspec import text_metrics
from circuitspec.engine.context import RunContext
from circuitspec.engine.generation import Generated, GenerationConfig, StepEdit, chat_prompts, generate
from circuitspec.engine.sites import Site
from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement

from .measuring import MeasurementBuilder, claim_sites

__all__ = ["measure"]

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """One point per α (top-level arrays: the last α listed)."""
    b = MeasurementBuilder(ctx, claim, seed)
    tokenizer = ctx.tokenizer
    if tokenizer is None:
        raise CircuitSpecError("a generation claim needs the model's tokenizer on the run context")
    sites = claim_sites(ctx, graph, claim)
    signs = [float(claim.signs.get(s.node.text, claim.signs.get(s.node.component, 1.0))) for s in sites]
    prompts = ctx.prompts
    ids = [prompts.tokens[i, : int(prompts.lengths[i])].tolist() for i in range(len(prompts))]
    if claim.chat:
        ids, sites = _in_chat(claim, tokenizer, ids, sites)
    config = GenerationConfig(
        max_new_tokens=claim.max_new_tokens,
        temperature=claim.temperature,
        top_k=claim.top_k,
        seed=seed,
        stop=tuple(claim.stop),
        batch_size=claim.batch_size,
    )
    control = generate(ctx.adapter, tokenizer, ids, (), config, ctx.counter)
    score = _scorer(claim, ctx, tokenizer)
    clean = score(control)
    generated: dict[str, list[str]] = {"control": control.texts}
    changes: dict[str, float] = {}
    for alpha in claim.alphas:
        if all(float(alpha) * sign == 1.0 for sign in signs):
            out = control  # every factor is 1: the control itself
        else:
            edits = [
                StepEdit(site, scale=float(alpha) * sign) for site, sign in zip(sites, signs, strict=True)
            ]
            out = generate(ctx.adapter, tokenizer, ids, edits, config, ctx.counter)
        intervened = score(out)
        if claim.score == "flip":
            value = text_metrics.flips(control.texts, out.texts, _targets(claim, ctx))
        else:
            value = intervened - clean
        b.sweep("alpha", float(alpha), value=value, clean=clean, intervened=intervened)
        generated[f"alpha={float(alpha):g}"] = out.texts
        if claim.score == "levenshtein":
            changes[f"{float(alpha):g}"] = text_metrics.percent_change(intervened, clean)
    b.arrays(**b.measurement.sweep[-1].arrays)
    b.note(generated=generated)
    if changes:
        b.note(distance_change_pct=changes)
    return b.build()


def _in_chat(
    claim: Any, tokenizer: Any, ids: list[list[int]], sites: list[Site]
) -> tuple[list[list[int]], list[Site]]:
    """The prompts inside the model's chat template, and the sites moved with their roles."""
    wrapped = chat_prompts(tokenizer, ids)
    if wrapped is None:
        raise CircuitSpecError(f"claim '{claim.id}': chat: true, but this model has no chat template")
    ids, shifts = wrapped
    moved = torch.tensor(shifts)
    return ids, [s if s.positions is None else replace(s, positions=s.positions + moved) for s in sites]


def _scorer(claim: Any, ctx: RunContext, tokenizer: Any) -> Any:
    """Per-prompt score of a generation, as the claim's ``score`` asks."""
    if claim.score == "sentiment":
        return lambda out: np.array([text_metrics.sentiment(t) for t in out.texts])
    if claim.score == "keywords":
        return lambda out: np.array([text_metrics.keyword_frequency(t, claim.lexicon) for t in out.texts])
    if claim.score == "flip":
        targets = _targets(claim, ctx)

        def on_target(out: Generated) -> np.ndarray:
            labels = [text_metrics.sentiment_label(text_metrics.sentiment(t)) for t in out.texts]
            return np.array([float(label == want) for label, want in zip(labels, targets, strict=True)])

        return on_target
    originals = [tokenizer.encode(_filled(claim.original, row, claim.id))[0] for row in ctx.prompts.rows]

    def distance(out: Generated) -> np.ndarray:  # token-level: the model's own tokens
        return np.array(
            [text_metrics.token_distance(t, o) for t, o in zip(out.tokens, originals, strict=True)]
        )

    return distance


def _targets(claim: Any, ctx: RunContext) -> list[str]:
    """The target sentiment per prompt: the claim's label, or a data-row field's value."""
    target = claim.target_sentiment
    if not target.startswith("{"):
        return [target] * len(ctx.prompts)
    out = []
    for row in ctx.prompts.rows:
        value = _filled(target, row, claim.id).strip().lower()
        label = "positive" if value.startswith("pos") else "negative" if value.startswith("neg") else None
        if label is None:
            raise CircuitSpecError(
                f"claim '{claim.id}': target_sentiment {target} is '{value}' in a data row "
                "(valid: a value starting with 'pos' or 'neg')"
            )
        out.append(label)
    return out


def _filled(pattern: str, row: dict[str, str], claim_id: str) -> str:
    """``pattern`` with each ``{field}`` replaced by the data row's value (one-line error if missing)."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in row:
            fields = ", ".join(sorted(row))
            raise CircuitSpecError(
                f"claim '{claim_id}': '{{{match.group(1)}}}' is not a data field (valid: {fields})"
            )
        return str(row[match.group(1)])

    return _FIELD.sub(value, pattern)
