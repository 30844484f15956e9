"""The claims of a hypothesis file as pydantic v2 models (no torch, no model needed).

One model per claim kind, joined in the :data:`ClaimSpec` union (discriminated by ``kind``); the
claim registry (``circuitspec.claims.registry``) names each model. Kept apart from
:mod:`.schema` (the rest of the file), which re-exports every name here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .expectations import Expectation, parse_expectation
from .names import finite_numbers, non_negative_seed

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
    "LogitLensClaim",
    "Metric",
    "PathPatchingClaim",
    "RandomBaseline",
    "ScalingClaim",
    "SplitName",
    "StrictModel",
]


class StrictModel(BaseModel):
    """Unknown keys are errors; parsed values are immutable; a docstring under a field describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


_Strict = StrictModel


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
)

Metric = Literal["logit_diff", "prob_diff", "desired_prob", "kl", "cosine", "distance_change"]

SPLITS = ("explore", "test")  # the row splits ``data.split`` assigns; ``all`` selects every row
SplitName = Literal["explore", "test", "all"]


class RandomBaseline(_Strict):
    """'beats N random circuits of the same size and kind' (empirical p-value, +1 corrected)."""

    n: int = Field(default=100, ge=1, le=100_000)
    """How many random circuits of the same size and kind to draw (1 to 100,000)."""
    seed: int = 0
    """Seed of the random circuits (a whole number from 0)."""

    _seed = field_validator("seed")(non_negative_seed)


class _ClaimBase(_Strict):
    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-\.]*$")
    """The claim's id: a letter or '_', then letters, digits, '_', '-', '.'; unique in the file."""
    description: str = ""
    """Free text shown in the reports."""
    targets: list[str] = Field(default_factory=list)
    """What the claim acts on: node names (L7H5, MLP0@s_con), names of `nodes` groups, names of `paths` or
    edges 'A -> B'; one string or a list.
    """
    data: list[str] | None = None
    """Template ids or tags whose prompts the claim uses (default: every template)."""
    metric: Metric = "logit_diff"
    """What is measured per prompt: logit_diff (desired − undesired logit), prob_diff, desired_prob, kl,
    cosine or distance_change (encoders).
    """
    expect: str
    """The expectation: '<statistic> <op> <number>', '<statistic> increases|decreases with <variable>', 'no
    effect within <margin>' or '<statistic> within ±<margin>'; statistics: mean, median, effect,
    success_rate, recovered, interaction.
    """
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Confidence level of the claim's interval before family-wise correction (0.5 < c < 1)."""
    random_baseline: RandomBaseline | None = None
    """Also require the claim to beat random circuits of the same size and kind."""
    each: bool = False
    """Make one claim per target (per member of a group target), with ids '<id>[<target>]'."""
    require: list[str] = Field(default_factory=list)
    """Claim ids that must pass for this claim to be judged (else it is inconclusive); one id or a list."""
    split: SplitName | None = None
    """The rows it runs on: explore, test or all (default: the hypothesis' verification split)."""
    min_n: int | None = Field(default=None, ge=2)
    """Fewest prompts for a verdict on this claim (overrides the hypothesis' min_n); fewer is inconclusive."""
    tolerance: float | None = Field(default=None, ge=0)
    """Regression tolerance on the statistic (circuitspec regress / baseline)."""
    tolerance_ci_widths: float | None = Field(default=None, ge=0)
    """Regression tolerance in units of the interval's width."""

    @field_validator("expect")
    @classmethod
    def _expectation(cls, value: str) -> str:
        parse_expectation(value)
        return value

    @field_validator("targets", "require", mode="before")
    @classmethod
    def _targets_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def expectation(self) -> Expectation:
        return parse_expectation(self.expect)


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
    ],
    Field(discriminator="kind"),
]
