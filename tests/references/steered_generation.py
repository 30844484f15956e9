"""Steered greedy generation the slow way: one prompt at a time, a full TransformerLens pass per new
token, no key/value cache, no padding, and ``h + vector`` as a plain hook at one token position (or at
every position, generated ones included).

The reference the steering claim's text scores are tested against; nothing of the engine is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["greedy_shift_loop"]


def greedy_shift_loop(
    model: Any,
    prompt: Sequence[int],
    max_new_tokens: int,
    hook_name: str,
    vector: np.ndarray,
    position: int | None = None,
    head: int | None = None,
) -> list[int]:
    """New token ids after ``prompt`` with ``hook_name[:, position(, head)] += vector`` on every pass
    (``position`` None: every position)."""
    add = torch.as_tensor(np.asarray(vector, dtype=np.float64))

    def shift(act: torch.Tensor, hook: Any) -> torch.Tensor:
        act = act.clone()
        where = slice(None) if position is None else position
        if head is None:
            act[:, where] += add.to(act.dtype)
        else:
            act[:, where, head] += add.to(act.dtype)
        return act

    tokens = torch.tensor([list(prompt)])
    new: list[int] = []
    for _ in range(max_new_tokens):
        with torch.inference_mode():
            logits = model.run_with_hooks(tokens, fwd_hooks=[(hook_name, shift)])
        nxt = int(logits[0, -1].argmax())
        new.append(nxt)
        tokens = torch.cat([tokens, torch.tensor([[nxt]])], dim=1)
    return new
