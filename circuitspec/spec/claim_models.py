"""The claims of a hypothesis file as pydantic v2 models (no torch, no model needed).

One model per claim kind, joined in the :data:`ClaimSpec` union (discriminated by ``kind``); the
claim registry (``circuitspec.claims.registry``) names each model. Kept apart from
:mod:`.schema` (the rest of the file), which re-exports every name here.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from .alignment_claim import AlignmentClaim
from .claim_base import (  # re-exported: the shared claim fields live there
    SPLITS,
    Metric,
    RandomBaseline,
    SplitName,
    StrictModel,
    TextScore,
    _ClaimBase,
    claim_model_names,
)
from .induction_claim import InductionClaim
from .learned_claim import LearnedScalingClaim
from .mean_reference import MeanReference
from .names import finite_numbers
from .screens import ScreenClaim
from .steering_claim import SteeringClaim, TextGenerationSettings, missing_score_input

__all__ = [
    "CLAIM_KINDS",
    "SPLITS",
    "AblationClaim",
    "ActivationPatchingClaim",
    "AttentionClaim",
    "AttributionClaim",
    "BehaviourClaim",
    "CausalScrubbingClaim",
    "ClaimSpec",
    "FaithfulnessClaim",
    "GenerationClaim",
    "LogitLensClaim",
    "Metric",
    "PathPatchingClaim",
    "RandomBaseline",
    "ScalingClaim",
    "SplitName",
    "SteeringClaim",
    "StrictModel",
    "claim_model_names",
]


# --------------------------------------------------------------------------- claims

CLAIM_KINDS = (
    "attribution",
    "logit_lens",
    "attention",
    "ablation",
    "activation_patching",
    "path_patching",
    "causal_scrubbing",
    "scaling",
    "faithfulness",
    "behaviour",
    "generation",
    "steering",
    "induction",
    "alignment",
    "screen",
    "learned_scaling",
)


class BehaviourClaim(_ClaimBase):
    """The model does the task: the clean prompts' metric, per prompt (no intervention, no targets).

    ``mean > 1`` asks for a mean logit difference, ``success_rate >= 0.9`` for an accuracy (the
    share of prompts whose desired answer beats the undesired one); ``data`` picks templates or tags.
    Other claims name it in ``require`` to be judged only where the model does the task.
    """

    kind: Literal["behaviour"]
    """behaviour: the model does the task on the clean prompts (no targets)."""


class AttributionClaim(_ClaimBase):
    """Direct logit attribution of the targets (summed) at the end token."""

    kind: Literal["attribution"]
    """attribution: direct logit attribution of the targets at the end token."""


class LogitLensClaim(_ClaimBase):
    """Accumulated logit lens; ``at`` picks one residual site, else a sweep over layers."""

    kind: Literal["logit_lens"]
    """logit_lens: the accumulated logit lens, at one residual site or swept over layers."""
    at: str | None = None
    """One residual site (resid_pre<l>, resid_mid<l>, resid_post<l>, optionally @role); omit it to sweep over
    layers.
    """
    top_tokens: int | None = Field(default=None, ge=1, le=50)
    """Also keep the k likeliest tokens at every site and position of a few prompts (a report table)."""


class AttentionClaim(_ClaimBase):
    """Attention probability of the target heads from role ``source`` to role ``destination``."""

    kind: Literal["attention"]
    """attention: attention probability of the target heads from `source` to `destination`."""
    source: str = "end"
    """The role attended from (the query position); default end."""
    destination: str
    """The role attended to (the key position)."""


class AblationClaim(_ClaimBase):
    kind: Literal["ablation"]
    """ablation: replace the targets' activations (zero, mean, resample or soft)."""
    method: Literal["zero", "mean", "resample", "soft"] = "mean"
    """How to ablate: zero, mean (over the prompts), resample (from another prompt) or soft (× alpha)."""
    alpha: float | None = None
    """Soft ablation only: the factor the activation is multiplied by."""
    mean_from: MeanReference | None = None
    """Mean ablation only: take the mean over these reference prompts ({data, split}), not the claim's own."""


class ActivationPatchingClaim(_ClaimBase):
    kind: Literal["activation_patching"]
    """activation_patching: patch the targets between the clean and corrupted runs."""
    direction: Literal["denoising", "noising"] = "denoising"
    """denoising (clean activations into the corrupted run) or noising (corrupted into clean)."""


class PathPatchingClaim(_ClaimBase):
    """Targets are path names or edge strings 'A -> B'; each edge is patched sender→receiver."""

    kind: Literal["path_patching"]
    """path_patching: patch only along the target paths / edges, sender to receiver."""
    mlps: Literal["frozen", "recomputed"] = "frozen"
    """MLPs off the path: frozen at their clean values, or recomputed."""
    direction: Literal["noising", "denoising"] = "noising"
    """noising (corrupted values sent along the path) or denoising."""
    alpha: float | None = None
    """Soft path patching: the senders send alpha × their own activation (of the run patched) instead."""

    @field_validator("alpha")
    @classmethod
    def _finite_alpha(cls, value: float | None) -> float | None:
        return None if value is None else finite_numbers([value], "alpha")[0]


class CausalScrubbingClaim(_ClaimBase):
    """Targets are the hypothesis' paths / nodes; ``equivalence`` says what each node reads.

    ``equivalence`` maps a node (or ``default``) to the data-row fields whose values a
    resampled input must share with the original, e.g. ``{L7H5: [s_con]}``.
    """

    kind: Literal["causal_scrubbing"]
    """causal_scrubbing: resample inputs the hypothesis says are irrelevant and measure recovery."""
    equivalence: dict[str, list[str]] = Field(default_factory=dict)
    """Per node (or `default`): the data-row fields a resampled input must share with the original."""
    samples: int = Field(default=1, ge=1, le=64)
    """Resamples per prompt (1 to 64)."""


class ScalingClaim(_ClaimBase):
    """Scale the targets' activations by each α (value vectors at a role: the paper's α = ±2^k)."""

    kind: Literal["scaling"]
    """scaling: multiply the targets' activations by each alpha."""
    alphas: list[float] = Field(min_length=1)
    """The factors to sweep (finite numbers; negative ones flip the activation)."""
    signs: dict[str, float] = Field(default_factory=dict)
    """Per-target multiplier of alpha, e.g. {L7H5: -1}."""
    interaction: bool = False
    """Also run each target alone and report effect(AB) − effect(A) − effect(B)."""

    @field_validator("alphas")
    @classmethod
    def _finite_alphas(cls, value: list[float]) -> list[float]:
        return finite_numbers(value, "alpha")

    @model_validator(mode="after")
    def _a_trend_needs_two_alphas(self) -> ScalingClaim:
        if self.expectation.form == "trend" and len(set(self.alphas)) < 2:
            raise ValueError(f"'{self.expect}' needs at least two different alphas (got {self.alphas})")
        return self


class FaithfulnessClaim(_ClaimBase):
    """Ablate everything outside the targets (nodes, groups, paths); report normalized recovery."""

    kind: Literal["faithfulness"]
    """faithfulness: ablate everything outside the targets and report the recovered share."""
    method: Literal["zero", "mean", "resample"] = "mean"
    """How the rest of the model is ablated: zero, mean or resample."""


class GenerationClaim(TextGenerationSettings):
    """Generate continuations with the targets scaled by each α on every step, and score the text.

    The control is the same generation without the intervention; per prompt, ``value`` is the score of
    the intervened text minus the control's (``flip``: 1 where the control misses the target sentiment
    and the intervened text has it, so its mean is the flip rate).
    """

    kind: Literal["generation"]
    """generation: continue the prompts with the targets scaled by alpha on every generated token."""
    alphas: list[float] = Field(min_length=1)
    """The factors to sweep (finite numbers; 1 is the control itself)."""
    signs: dict[str, float] = Field(default_factory=dict)
    """Per-target multiplier of alpha, e.g. {L7H5: -1}."""
    score: TextScore
    """The text metric per prompt: sentiment (VADER compound), flip (to target_sentiment), levenshtein
    (token edit distance to `original`) or keywords (share of words in `lexicon`).
    """

    @field_validator("alphas")
    @classmethod
    def _finite_alphas(cls, value: list[float]) -> list[float]:
        return finite_numbers(value, "alpha")

    @model_validator(mode="after")
    def _score_needs_its_input(self) -> GenerationClaim:
        wanted = missing_score_input(self)
        if wanted is not None:
            raise ValueError(f"score '{self.score}' needs '{wanted}'")
        if self.expectation.form == "trend" and len(set(self.alphas)) < 2:
            raise ValueError(f"'{self.expect}' needs at least two different alphas (got {self.alphas})")
        return self


ClaimSpec = Annotated[
    Union[
        AttributionClaim,
        LogitLensClaim,
        AttentionClaim,
        AblationClaim,
        ActivationPatchingClaim,
        PathPatchingClaim,
        CausalScrubbingClaim,
        ScalingClaim,
        FaithfulnessClaim,
        BehaviourClaim,
        GenerationClaim,
        SteeringClaim,
        InductionClaim,
        ScreenClaim,
        AlignmentClaim,
        LearnedScalingClaim,
    ],
    Field(discriminator="kind"),
]
