"""The ``learned_scaling`` claim: a saved learned intervention applied at ``β = ±beta``, per prompt.

The file (``circuitspec learn``) gives the method, the locations and the parameters; one counted pass of
2N rows runs the prompts at ``+beta`` and ``−beta`` (``circuitspec.engine.learning.per_prompt``), the clean
run is the shared one. Arrays: ``delta_plus`` / ``delta_minus`` (logit(desired) − logit(undesired) at
``±beta``), ``kl_plus`` / ``kl_minus`` (KL(intervened ‖ clean) at the last token), ``clean``,
``effectiveness`` (the paper's per-prompt E₀), ``flip`` (min(Δ⁺, −Δ⁻)) and ``value`` per the claim's
``score`` (see ``LearnedScalingClaim``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.learning import check_locations, per_prompt
from circuitspec.learned.interventions import from_parameters
from circuitspec.learned.store import load
from circuitspec.measurement import Measurement

from .measuring import MeasurementBuilder

__all__ = ["measure", "values"]


def values(arrays: dict[str, np.ndarray], score: str, max_kl: float | None) -> dict[str, np.ndarray]:
    """The per-prompt ``effectiveness``, ``flip``, ``kl`` and ``value`` (the ``score`` chosen) arrays."""
    plus, minus = arrays["delta_plus"], arrays["delta_minus"]
    effectiveness = -(np.maximum(0.0, -plus) + np.maximum(0.0, minus))
    flip = np.minimum(plus, -minus)
    kl = (arrays["kl_plus"] + arrays["kl_minus"]) / 2
    value = {"flip": flip, "effectiveness": effectiveness, "kl": kl}[score]
    if score == "flip" and max_kl is not None:
        over = np.maximum(arrays["kl_plus"], arrays["kl_minus"]) > max_kl
        value = np.where(over, np.minimum(flip, 0.0), flip)
    return {"effectiveness": effectiveness, "flip": flip, "kl": kl, "value": value}


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """Load the file, apply it at ``±beta`` to every prompt, and fill the per-prompt arrays."""
    b = MeasurementBuilder(ctx, claim, seed)
    stored = load(claim.scalars_path)
    locations = stored.locations
    check_locations(ctx, locations, claim.scalars)
    theta = torch.as_tensor(stored.theta, dtype=torch.float32)
    intervention = from_parameters(stored.provenance.method, locations, theta).to(ctx.device)
    arrays = per_prompt(ctx, intervention, float(claim.beta))
    b.arrays(**arrays, **values(arrays, claim.score, claim.max_kl))
    count = int((np.abs(stored.theta) > 0.01).sum())
    b.note(
        scalars=claim.scalars,
        scalars_sha256=stored.sha256,
        method=stored.provenance.method,
        locations=len(locations),
        non_negligible=count,
        beta=float(claim.beta),
        provenance={k: v for k, v in asdict(stored.provenance).items() if k != "locations"},
        flipped_both_ways=float(((arrays["delta_plus"] > 0) & (arrays["delta_minus"] < 0)).mean()),
    )
    return b.build()
