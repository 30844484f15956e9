"""The ``steering`` claim's YAML model (no torch): ``h + α·e`` at a node, against random directions.

Kept out of :mod:`.claim_models` (which imports it into the ``ClaimSpec`` union) so that file stays
small; the shared claim fields come from :mod:`.claim_base`.
:class:`TextGenerationSettings` holds how a claim generates and scores text when it measures generated
continuations (a steering claim with ``score:``); any generating claim kind can derive from it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from .claim_base import TextScore, _ClaimBase
from .names import finite_numbers

__all__ = ["SteeringClaim", "TextGenerationSettings", "missing_score_input"]

_BASE = set(_ClaimBase.model_fields)
_SCORE_INPUTS = {"flip": "target_sentiment", "levenshtein": "original", "keywords": "lexicon"}


def missing_score_input(claim: Any) -> str | None:
    """The field a claim's text ``score`` needs and lacks (``flip``: target_sentiment, …), or None."""
    wanted = _SCORE_INPUTS.get(str(getattr(claim, "score", None)))
    return wanted if wanted is not None and getattr(claim, wanted, None) is None else None


class TextGenerationSettings(_ClaimBase):
    """How a claim continues its prompts and scores the text (used when it has a text ``score``)."""

    target_sentiment: str | None = Field(
        default=None, pattern=r"^(positive|negative|\{[A-Za-z_][A-Za-z0-9_]*\})$"
    )
    """score flip only: positive, negative, or '{field}', a data-row field naming it per prompt."""
    original: str | None = Field(default=None, min_length=1)
    """score levenshtein only: the original sentence, filled from the data row, e.g. '{sentence}'."""
    lexicon: Literal["gratitude", "anger", "apology"] | None = None
    """score keywords only: the keyword list counted (circuitspec/data/lexicons)."""
    max_new_tokens: int = Field(default=20, ge=1, le=512)
    """With a text score: how many tokens to generate at most (1 to 512)."""
    temperature: float = Field(default=0.0, ge=0.0, le=100.0)
    """With a text score: 0 is greedy; above 0 samples, seeded by the run's seed and each prompt's index."""
    top_k: int | None = Field(default=None, ge=1)
    """With a text score, sampling only: keep the k likeliest tokens."""
    stop: list[str] = Field(default_factory=list)
    """With a text score: stop strings; a continuation ends before the first one (EOS always stops)."""
    batch_size: int = Field(default=8, ge=1, le=4096)
    """With a text score: prompts generated together (left-padded, one key/value cache)."""
    chat: bool = False
    """With a text score: put each prompt in the model's chat template as the user's message."""


class SteeringClaim(TextGenerationSettings):
    """Inject ``h + α·e`` at one node (``e``: a direction file saved by ``circuitspec directions``) and
    compare with random directions of the same norm, one per seed.

    Per prompt, ``value`` is the change at each α of the metric (``metric``) or, with ``score``, of the
    generated text's score against the unsteered generation; the verdict reads the last α listed, and
    the random-direction control (each random direction's mean change there) gives the percentile and
    empirical p-value, so ``effect > 0`` reads 'steering beats random directions'. A node with a role
    (``resid_pre7@word``) is shifted at that token; without one (``resid_pre7``) at every position, and
    while generating at every generated token too (the emotion paper's ``h' = h + αe``). A layer sweep
    is several targets with ``each: true`` (one claim per node).
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
    """Random directions of the same norm for the control (one per seed, from the run's seed); 0: none.
    With a text score each is one more generation, at the last alpha only: keep it small."""
    score: TextScore | None = None
    """Measure generated text instead of `metric`: sentiment (VADER compound), flip (to
    target_sentiment), levenshtein (token edit distance to `original`) or keywords (share of words in
    `lexicon`), of greedy or sampled continuations with the direction added, against the unsteered ones.
    """
    _direction_path: str | None = PrivateAttr(default=None)  # resolved against the hypothesis' folder

    @field_validator("alphas")
    @classmethod
    def _finite_alphas(cls, value: list[float]) -> list[float]:
        return finite_numbers(value, "alpha")

    @model_validator(mode="after")
    def _supported(self) -> SteeringClaim:
        if self.random_baseline is not None:
            raise ValueError(
                "a steering claim's control is `random_directions: N` (random directions of the same "
                "norm), not `random_baseline`"
            )
        expectation = self.expectation
        if expectation.form == "trend" and len(set(self.alphas)) < 2:
            raise ValueError(f"'{self.expect}' needs at least two different alphas (got {self.alphas})")
        if expectation.statistic == "percentile" and self.random_directions == 0:
            raise ValueError(f"'{self.expect}' compares with random directions: set random_directions ≥ 1")
        if self.score is None:
            settings = sorted(self.model_fields_set & set(TextGenerationSettings.model_fields) - _BASE)
            if settings:
                raise ValueError(f"{', '.join(settings)}: only with a text `score` (this claim reads metric)")
            return self
        wanted = missing_score_input(self)
        if wanted is not None:
            raise ValueError(f"score '{self.score}' needs '{wanted}'")
        if expectation.form == "trend" and expectation.statistic == "percentile":
            raise ValueError(
                f"'{self.expect}': with a text score the random directions run at the last alpha only "
                "(each is a generation); judge the percentile there, e.g. 'percentile >= 0.95'"
            )
        return self

    @property
    def direction_path(self) -> str:
        """The direction file, resolved against the hypothesis' folder once the claim is compiled."""
        return self._direction_path or self.direction
