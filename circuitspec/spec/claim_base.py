"""What every claim of a hypothesis file shares, as pydantic v2 models (no torch): the strict base model,
the common claim fields (`_ClaimBase`), metrics, row splits and the random-circuit baseline.

Each claim kind's model subclasses :class:`_ClaimBase` (in :mod:`.claim_models` or a file of its own);
:mod:`.claim_models` joins them into the ``ClaimSpec`` union. Kept apart so that a claim kind in its
own file imports this module, not the union (no import cycle).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .expectations import Expectation, parse_expectation
from .names import non_negative_seed

__all__ = [
    "SPLITS",
    "Metric",
    "RandomBaseline",
    "SplitName",
    "StrictModel",
    "TextScore",
    "_ClaimBase",
    "claim_model_names",
]


def claim_model_names(claim: Any) -> list[str]:
    """The model names a claim refers to (its ``model:``; a cross-model claim's ``models:``)."""
    names = list(getattr(claim, "models", None) or [])
    return names + ([claim.model] if claim.model is not None else [])


class StrictModel(BaseModel):
    """Unknown keys are errors; parsed values are immutable; a docstring under a field describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


_Strict = StrictModel



Metric = Literal["logit_diff", "prob_diff", "desired_prob", "kl", "kl_run_clean", "cosine", "distance_change"]

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
    """What is measured per prompt: logit_diff (desired − undesired logit), prob_diff, desired_prob, kl
    (KL(clean ‖ run)), kl_run_clean (KL(run ‖ clean)), cosine or distance_change (encoders).
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
    model: str | None = None
    """With `models:`, the one model (by name) this claim runs on (default: every model)."""

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


TextScore = Literal["sentiment", "flip", "levenshtein", "keywords"]
