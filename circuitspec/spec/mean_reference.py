"""Where a mean ablation takes its mean from, when not from the claim's own prompts (no torch).

``mean_from: {data: [neutral], split: explore}`` on an ``ablation`` claim with ``method: mean``: the
mean activation comes from the clean runs of a separate reference set (the circuits report's "average
of the activations from a bigger reference set of text prompts"), so the ablated value does not
depend on the prompts being measured. Kept apart from :mod:`.claim_models` so that file stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from .claim_base import StrictModel

__all__ = ["MeanReference", "reference_templates"]


class MeanReference(StrictModel):
    """The reference prompts a mean ablation averages over: templates (ids or tags) and a row split."""

    data: list[str] | None = Field(default=None, min_length=1)
    """Template ids or tags whose prompts give the mean (default: every template)."""
    split: Literal["explore", "test", "all"] | None = None
    """The rows of the reference prompts: explore, test or all (default: the claim's own split)."""


def reference_templates(templates: Sequence[Any], names: list[str] | None) -> list[str]:
    """The template ids ``names`` (ids or tags) select, in file order (all when None).

    Raises ``ValueError(index, message)`` naming the first unknown name and its index in ``names``.
    """
    ids = [t.id for t in templates]
    if names is None:
        return ids
    chosen: set[str] = set()
    for j, name in enumerate(names):
        matched = [t.id for t in templates if t.id == name or name in (t.tags or ())]
        if not matched:
            valid = ", ".join([*ids, *sorted({f"tag {tag}" for t in templates for tag in t.tags or ()})])
            raise ValueError(j, f"unknown template or tag '{name}' (valid: {valid})")
        chosen.update(matched)
    return [i for i in ids if i in chosen]
