"""Shared clean / corrupted runs across prompt sets: a prompt set whose prompts all appear in a larger
one reads its runs from the larger one's, row by row, instead of running them again.

Claims select templates by id or tag, so a hypothesis typically has a prompt set of every template
and smaller sets of a few; without sharing, the small sets' clean and corrupted runs repeat work the
large set's runs already did. A prompt is the same in both sets when its template, data row and
token ids agree (the corrupted twin is checked separately: twins are drawn per selection). Slicing is
exact: in a causal model position ``p`` reads only tokens up to ``p``, and an encoder masks padding
keys, so a prompt's activations do not depend on how much padding the batch has.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch

from .prompts import PromptSet

__all__ = ["SharedSource", "link_to_superset", "slice_run"]

# hooks whose last two axes are (query position, key position); every other hook has position at axis 1
_PAIRWISE = ("hook_pattern", "hook_attn_scores")


@dataclass(frozen=True)
class SharedSource:
    """Where a prompt set's shared run comes from: ``rows`` of the larger set's run, ``width`` positions."""

    context: Any  # the larger prompt set's RunContext
    rows: torch.Tensor
    width: int


def _row_index(small: PromptSet, large: PromptSet, twins: bool) -> torch.Tensor | None:
    """Index of each of ``small``'s prompts in ``large`` (None when one is missing or differs)."""
    where = {
        (template, tuple(sorted(row.items()))): i
        for i, (template, row) in enumerate(zip(large.template_ids, large.rows, strict=True))
    }
    small_tokens = small.corrupt_tokens if twins else small.tokens
    large_tokens = large.corrupt_tokens if twins else large.tokens
    index = []
    for i, (template, row) in enumerate(zip(small.template_ids, small.rows, strict=True)):
        j = where.get((template, tuple(sorted(row.items()))))
        length = int(small.lengths[i])
        if j is None or int(large.lengths[j]) != length:
            return None
        if not torch.equal(small_tokens[i, :length], large_tokens[j, :length]):
            return None
        index.append(j)
    return torch.tensor(index, dtype=torch.long)


def link_to_superset(small_cache: dict[str, Any], small: PromptSet, large_context: Any) -> list[str]:
    """Point ``small``'s shared runs at ``large_context``'s where every prompt matches; the runs linked."""
    linked = []
    for key, twins in (("clean", False), ("corrupt", True)):
        rows = _row_index(small, large_context.prompts, twins)
        if rows is not None:
            small_cache[f"{key}:from"] = SharedSource(large_context, rows, int(small.tokens.shape[1]))
            linked.append(key)
    return linked


def _slice(name: str, tensor: torch.Tensor, rows: torch.Tensor, width: int) -> torch.Tensor:
    picked = tensor[rows.to(tensor.device)]
    if picked.dim() < 2:
        return picked
    if name.endswith(_PAIRWISE):
        return picked[..., :width, :width]
    return picked[:, :width]


def slice_run(
    run: tuple[torch.Tensor, dict[str, torch.Tensor]],
    source: SharedSource,
    names: Collection[str] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The rows and positions of ``source`` taken from the larger set's run (logits and the activations
    in ``names``, default all): the smaller set keeps no copy of what only the larger one reads."""
    logits, cache = run
    logits = logits[source.rows.to(logits.device)]
    if logits.dim() == 3:  # [rows, pos, vocab]; an encoder's sentence embeddings are [rows, d]
        logits = logits[:, : source.width]
    return logits, {
        name: _slice(name, act, source.rows, source.width)
        for name, act in cache.items()
        if names is None or name in names
    }
