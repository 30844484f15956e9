"""The ``learned_scaling`` claim's YAML model (no torch): a saved learned intervention, verified per prompt.

Kept out of :mod:`.claim_models` (which imports it into the ``ClaimSpec`` union) so that file stays
small. This module is imported from the middle of :mod:`.claim_models`, after ``_ClaimBase`` exists.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from .claim_base import _ClaimBase

__all__ = ["LearnedScalingClaim"]


class LearnedScalingClaim(_ClaimBase):
    """Apply a learned intervention saved by ``circuitspec learn`` at ``β = +beta`` and ``β = −beta`` and
    measure, per prompt, whether it flips the answer both ways and how far it moves the distribution.

    Per prompt: ``Δ⁺`` / ``Δ⁻`` = logit(desired) − logit(undesired) at ``β = ±beta`` and ``KL⁺`` / ``KL⁻`` =
    KL(intervened ‖ clean) at the last token (the activation-scaling paper's direction). ``score`` picks
    ``value``: ``flip`` = min(Δ⁺, −Δ⁻), positive when the intervention favours the desired answer at +β
    and the undesired one at −β (with ``max_kl``: capped at 0 on prompts whose larger KL exceeds it, so
    ``success_rate`` is the share flipped both ways within the KL budget); ``effectiveness`` = the
    paper's per-prompt E₀ = −[max(0, −Δ⁺) + max(0, Δ⁻)] (≤ 0, 0 = flipped); ``kl`` = (KL⁺ + KL⁻)/2.
    The locations come from the file (no ``targets``); ``metric`` is not used.
    """

    kind: Literal["learned_scaling"]
    """learned_scaling: a learned intervention (circuitspec learn) flips the answer, within a KL budget."""
    scalars: str = Field(min_length=1)
    """The file written by `circuitspec learn` (.safetensors), relative to the hypothesis file."""
    beta: float = Field(default=1.0, gt=0)
    """The strength |β| the intervention is applied at (both signs); 1 is what it was trained for."""
    score: Literal["flip", "effectiveness", "kl"] = "flip"
    """What `value` is per prompt: flip (min(Δ⁺, −Δ⁻)), effectiveness (the paper's E₀) or kl."""
    max_kl: float | None = Field(default=None, ge=0)
    """score flip only: a prompt counts as flipped only when KL(run ‖ clean) ≤ max_kl at both signs."""
    _scalars_path: str | None = PrivateAttr(default=None)  # resolved against the hypothesis' folder

    @field_validator("beta", "max_kl")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return value

    @model_validator(mode="after")
    def _fits(self) -> LearnedScalingClaim:
        if self.max_kl is not None and self.score != "flip":
            raise ValueError("max_kl applies to score flip (with score kl, put the bound in `expect`)")
        if self.random_baseline is not None:
            raise ValueError("a learned_scaling claim has no random-circuit baseline")
        if self.expectation.form == "trend":
            raise ValueError(f"'{self.expect}': a learned_scaling claim has no sweep to trend over")
        if self.targets:
            raise ValueError("a learned_scaling claim takes its locations from the file: remove `targets`")
        return self

    @property
    def scalars_path(self) -> str:
        """The file, resolved against the hypothesis' folder once the claim is compiled."""
        return self._scalars_path or self.scalars
