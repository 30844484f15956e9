"""Prompt sets: templates × data rows → padded token batches with role positions.

(Contract; the builder is implemented by the engine work.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["PromptSet"]


@dataclass
class PromptSet:
    """A batch of clean prompts with their corrupted twins, right-padded.

    - ``tokens`` / ``corrupt_tokens``: LongTensor ``[n, max_len]`` (BOS included where the model
      wants one), right-padded with ``pad_id``; clean and corrupt twins have equal lengths.
    - ``lengths``: LongTensor ``[n]`` real lengths; ``end`` = lengths − 1.
    - ``role_positions``: role → LongTensor ``[n]`` (position of the role's last token).
    - ``desired`` / ``undesired``: LongTensor ``[n]`` answer token ids (clean prompts);
      ``corrupt_desired`` / ``corrupt_undesired`` for the twins (default: the same).
    - ``rows``: the data row each prompt was filled from (slot → value), for equivalence classes.
    - ``template_ids``: which template each prompt came from.
    """

    tokens: torch.Tensor
    corrupt_tokens: torch.Tensor
    lengths: torch.Tensor
    role_positions: dict[str, torch.Tensor]
    desired: torch.Tensor
    undesired: torch.Tensor
    corrupt_desired: torch.Tensor
    corrupt_undesired: torch.Tensor
    rows: list[dict[str, str]]
    template_ids: list[str]
    texts: list[str] = field(default_factory=list)
    corrupt_texts: list[str] = field(default_factory=list)
    pad_id: int = 0

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def positions(self, role: str) -> torch.Tensor:
        """Per-prompt position of ``role`` (``end`` is the last real token)."""
        if role == "end":
            return self.lengths - 1
        if role not in self.role_positions:
            raise KeyError(f"role '{role}' is not defined by these prompts (defined: {', '.join(sorted(self.role_positions))}, end)")
        return self.role_positions[role]

    @property
    def attention_mask(self) -> torch.Tensor:
        """``[n, max_len]`` 1 on real tokens, 0 on padding."""
        ar = torch.arange(self.tokens.shape[1])
        return (ar[None, :] < self.lengths[:, None]).long()
