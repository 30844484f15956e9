"""The ``alignment`` claim (a cross-model claim) as a pydantic model (no torch).

The emotion-circuits paper's §5 and §7: a linear map fitted on neutral prompts from one model's
activations to another's, then asked how well the source's offsets from neutral (its emotion
directions) land on the target's own on held-out prompts, with the subspace overlap for k = 1…10
beside it. Kept apart from :mod:`.claim_models`, which joins it into the claim union.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .claim_base import _ClaimBase
from .nodes import parse_node

__all__ = ["AlignmentClaim"]


class AlignmentClaim(_ClaimBase):
    """Map one model's activations onto another's (or one site onto another of the same model).

    Per held-out prompt of the claim's ``data`` templates, ``value`` is the cosine between the source's
    offset from its neutral mean, mapped (``(h_s − μ_s) W``), and the target's own offset ``h_t − μ_t``;
    ``μ`` and the map come from the ``fit`` prompts on the exploration rows. ``random_baseline: {n: N}``
    compares with N maps fitted on shuffled pairings (source row i with a random target row), which keep
    each model's geometry but lose the correspondence.
    """

    kind: Literal["alignment"]
    """alignment: fit a linear map between two models' activations and test how emotion offsets transfer."""
    models: list[str] = Field(min_length=2, max_length=2)
    """The source and the target model (names in `models:`); the same name twice compares two sites."""
    sites: list[str] = Field(min_length=2, max_length=2)
    """Where the source and the target are read, e.g. [resid_post14@word, resid_post8@word]."""
    pooling: Literal["token", "final"] = "token"
    """token: at each site's role; final: at each prompt's last token (the emotion paper compares both)."""
    fit: list[str] = Field(min_length=1)
    """Template ids or tags whose prompts fit the map and the neutral means (exploration rows when split)."""
    map: Literal["least_squares", "procrustes"] = "least_squares"
    """least_squares (any linear map) or procrustes (rotation only)."""
    k: list[int] = Field(default_factory=lambda: list(range(1, 11)))
    """Subspace dimensions for the overlap table (PCA of the held-out offsets in each model)."""

    @field_validator("sites")
    @classmethod
    def _sites_are_nodes(cls, value: list[str]) -> list[str]:
        for site in value:
            parse_node(site)
        return value

    @field_validator("k")
    @classmethod
    def _positive_dimensions(cls, value: list[int]) -> list[int]:
        if not value or any(k < 1 for k in value):
            raise ValueError("k: subspace dimensions are whole numbers from 1")
        return sorted(set(value))

    @model_validator(mode="after")
    def _no_targets(self) -> AlignmentClaim:
        if self.targets:
            raise ValueError("an alignment claim reads `sites`, not `targets`")
        if self.model is not None:
            raise ValueError("an alignment claim names its two models in `models`, not `model`")
        if self.models[0] == self.models[1] and self.sites[0] == self.sites[1]:
            raise ValueError("the same model at the same site: nothing to align")
        return self
