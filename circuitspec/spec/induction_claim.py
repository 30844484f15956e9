"""The ``induction`` claim's YAML model (no torch): induction scores on repeated random sequences.

Kept out of :mod:`.claim_models` (which imports it into the ``ClaimSpec`` union) so that file stays
small; the shared claim fields come from :mod:`.claim_base`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .claim_base import _ClaimBase
from .names import non_negative_seed

__all__ = ["InductionClaim"]


class InductionClaim(_ClaimBase):
    """Induction scores of the target heads on repeated random token sequences (TransformerLens' score).

    Each of ``sequences`` sequences is ``seq_len`` distinct random tokens repeated once (after the
    model's BOS token where it has one); a head's score on a sequence is its mean attention from each
    second-half token to the token after that token's first occurrence. Per sequence, ``value`` is
    the mean score of the targets; the report draws every head's mean score as a layer × head grid.
    The claim does not read the templates' prompts (``data`` and ``metric`` are not used).
    """

    kind: Literal["induction"]
    """induction: the target heads' induction score on repeated random token sequences."""
    seq_len: int = Field(default=20, ge=2, le=4096)
    """Random tokens in each half of a sequence (2 to 4096); the model sees 2 × seq_len (+ BOS)."""
    sequences: int = Field(default=32, ge=2, le=100_000)
    """How many random sequences to score (each is one 'prompt' of the claim's statistics)."""
    seed: int | None = None
    """Seed of the random sequences (default: the run's seed)."""

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int | None) -> int | None:
        return None if value is None else non_negative_seed(value)
