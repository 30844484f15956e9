"""The claims of a hypothesis file as pydantic v2 models (no torch, no model needed).

One model per claim kind, joined in the :data:`ClaimSpec` union (discriminated by ``kind``); the
claim registry (``circuitspec.claims.registry``) names each model. Kept apart from
:mod:`.schema` (the rest of the file), which re-exports every name here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

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
    "GenerationClaim",
    "LogitLensClaim",
    "Metric",
    "PathPatchingClaim",
    "RandomBaseline",
    "ScalingClaim",
    "SplitName",
    "SteeringClaim",
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
    "generation",
    "steering",
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

    @model_validator(mode="after")
    def _percentile_is_for_steering(self) -> _ClaimBase:
        kind = getattr(self, "kind", None)
        if self.expectation.statistic == "percentile" and kind != "steering":
            raise ValueError(
                f"'{self.expect}': the percentile among random directions is a steering statistic, "
                f"not one of {kind} claims (beating random circuits: add random_baseline)"
            )
        return self

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


TextScore = Literal["sentiment", "flip", "levenshtein", "keywords"]


class GenerationClaim(_ClaimBase):
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
    target_sentiment: str | None = Field(
        default=None, pattern=r"^(positive|negative|\{[A-Za-z_][A-Za-z0-9_]*\})$"
    )
    """flip only: positive, negative, or '{field}', a data-row field naming it per prompt."""
    original: str | None = Field(default=None, min_length=1)
    """levenshtein only: the original sentence, filled from the data row, e.g. '{sentence}'."""
    lexicon: Literal["gratitude", "anger", "apology"] | None = None
    """keywords only: the keyword list counted."""
    max_new_tokens: int = Field(default=20, ge=1, le=512)
    """How many tokens to generate at most (1 to 512)."""
    temperature: float = Field(default=0.0, ge=0.0, le=100.0)
    """0: greedy; above 0: sampling, seeded by the run's seed and each prompt's index."""
    top_k: int | None = Field(default=None, ge=1)
    """Sampling only: keep the k likeliest tokens."""
    stop: list[str] = Field(default_factory=list)
    """Stop strings: a continuation ends before the first one it produces (EOS always stops)."""
    batch_size: int = Field(default=8, ge=1, le=4096)
    """Prompts generated together (left-padded, one key/value cache)."""
    chat: bool = False
    """Put each prompt in the model's chat template as the user's message (an error where it has none)."""

    @field_validator("alphas")
    @classmethod
    def _finite_alphas(cls, value: list[float]) -> list[float]:
        return finite_numbers(value, "alpha")

    @model_validator(mode="after")
    def _score_needs_its_input(self) -> GenerationClaim:
        needs = {"flip": "target_sentiment", "levenshtein": "original", "keywords": "lexicon"}
        wanted = needs.get(self.score)
        if wanted is not None and getattr(self, wanted) is None:
            raise ValueError(f"score '{self.score}' needs '{wanted}'")
        if self.expectation.form == "trend" and len(set(self.alphas)) < 2:
            raise ValueError(f"'{self.expect}' needs at least two different alphas (got {self.alphas})")
        return self


class SteeringClaim(_ClaimBase):
    """Inject ``h + α·e`` at one node and role (``e``: a direction file saved by ``circuitspec
    directions``) and compare with random directions of the same norm, one per seed.

    Per prompt, ``value`` is the metric's change at each α; the verdict reads the last α listed, and the
    random-direction control (each random direction's mean change there) gives the percentile and
    empirical p-value, so ``effect > 0`` reads 'steering beats random directions'. A layer sweep is
    several targets with ``each: true`` (one claim per node).
    """

    kind: Literal["steering"]
    """steering: add alpha × a saved direction at the target and compare with random directions."""
    direction: str = Field(min_length=1)
    """A direction file written by `circuitspec directions` (.safetensors), relative to the hypothesis file;
    its raw mean difference (unit × norm) is added, so alpha = 1 adds the whole difference of means.
    """
    alphas: list[float] = Field(min_length=1)
    """The factors of the direction to sweep (finite numbers); the verdict reads the last one listed."""
    random_directions: int = Field(default=20, ge=0, le=10_000)
    """Random directions of the same norm for the control (one per seed, from the run's seed); 0: none."""
    score: Literal["sentiment", "flip", "levenshtein", "keywords"] | None = None
    """Not supported yet: steering is measured with `metric` (text scores are for generation claims)."""
    _direction_path: str | None = PrivateAttr(default=None)  # resolved against the hypothesis' folder

    @field_validator("alphas")
    @classmethod
    def _finite_alphas(cls, value: list[float]) -> list[float]:
        return finite_numbers(value, "alpha")

    @model_validator(mode="after")
    def _supported(self) -> SteeringClaim:
        if self.score is not None:
            raise ValueError("steering with a text score is not supported yet (measure it with `metric`)")
        if self.random_baseline is not None:
            raise ValueError(
                "a steering claim's control is `random_directions: N` (random directions of the same "
                "norm), not `random_baseline`"
            )
        if self.expectation.form == "trend" and len(set(self.alphas)) < 2:
            raise ValueError(f"'{self.expect}' needs at least two different alphas (got {self.alphas})")
        if self.expectation.statistic == "percentile" and self.random_directions == 0:
            raise ValueError(f"'{self.expect}' compares with random directions: set random_directions ≥ 1")
        return self

    @property
    def direction_path(self) -> str:
        """The direction file, resolved against the hypothesis' folder once the claim is compiled."""
        return self._direction_path or self.direction


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
    ],
    Field(discriminator="kind"),
]
