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
    """Unknown keys are errors; parsed values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    seed: int = 0

    _seed = field_validator("seed")(non_negative_seed)


class _ClaimBase(_Strict):
    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-\.]*$")
    description: str = ""
    targets: list[str] = Field(default_factory=list)
    data: list[str] | None = None  # template ids or tags (None: every template)
    metric: Metric = "logit_diff"
    expect: str
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    random_baseline: RandomBaseline | None = None
    each: bool = False  # one claim per target (per member of a group), ids '<id>[<target>]'
    require: list[str] = Field(default_factory=list)  # claim ids that must pass, else inconclusive
    split: SplitName | None = None  # the rows it runs on (default: the hypothesis' verification split)
    min_n: int | None = Field(default=None, ge=2)  # overrides the hypothesis' min_n for this claim
    tolerance: float | None = Field(default=None, ge=0)  # regression tolerance on the statistic
    tolerance_ci_widths: float | None = Field(default=None, ge=0)  # ... in units of CI width

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


class AttributionClaim(_ClaimBase):
    """Direct logit attribution of the targets (summed) at the end token."""

    kind: Literal["attribution"]


class LogitLensClaim(_ClaimBase):
    """Accumulated logit lens; ``at`` picks one residual site, else a sweep over layers."""

    kind: Literal["logit_lens"]
    at: str | None = None


class AttentionClaim(_ClaimBase):
    """Attention probability of the target heads from role ``source`` to role ``destination``."""

    kind: Literal["attention"]
    source: str = "end"  # the query position (attends *from*)
    destination: str  # the key position (attends *to*)


class AblationClaim(_ClaimBase):
    kind: Literal["ablation"]
    method: Literal["zero", "mean", "resample", "soft"] = "mean"
    alpha: float | None = None  # soft ablation: activation × alpha


class ActivationPatchingClaim(_ClaimBase):
    kind: Literal["activation_patching"]
    direction: Literal["denoising", "noising"] = "denoising"


class PathPatchingClaim(_ClaimBase):
    """Targets are path names or edge strings 'A -> B'; each edge is patched sender→receiver."""

    kind: Literal["path_patching"]
    mlps: Literal["frozen", "recomputed"] = "frozen"
    direction: Literal["noising", "denoising"] = "noising"


class CausalScrubbingClaim(_ClaimBase):
    """Targets are the hypothesis' paths / nodes; ``equivalence`` says what each node reads.

    ``equivalence`` maps a node (or ``default``) to the data-row fields whose values a
    resampled input must share with the original, e.g. ``{L7H5: [s_con]}``.
    """

    kind: Literal["causal_scrubbing"]
    equivalence: dict[str, list[str]] = Field(default_factory=dict)
    samples: int = Field(default=1, ge=1, le=64)


class ScalingClaim(_ClaimBase):
    """Scale the targets' activations by each α (value vectors at a role: the paper's α = ±2^k)."""

    kind: Literal["scaling"]
    alphas: list[float] = Field(min_length=1)
    signs: dict[str, float] = Field(default_factory=dict)  # per-target multiplier of α
    interaction: bool = False  # also run each target alone, report effect(AB) − effect(A) − effect(B)

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
    method: Literal["zero", "mean", "resample"] = "mean"


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
