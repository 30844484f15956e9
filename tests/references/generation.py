"""Greedy generation the slow way: one prompt at a time, a full TransformerLens pass per new token, no
key/value cache, no padding, and the intervention as a plain hook that multiplies one head's slice of
a hook at one token position (or at every position) by a factor.

The reference ``circuitspec.engine.generation`` is tested against; nothing of the engine is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["greedy_hook_loop"]


def greedy_hook_loop(
    model: Any,
    prompt: Sequence[int],
    max_new_tokens: int,
    hook_name: str | None = None,
    head: int | None = None,
    position: int | None = None,
    factor: float = 1.0,
) -> list[int]:
    """New token ids after ``prompt`` with ``hook_name[:, position, head] *= factor`` on every pass
    (``position`` None: every position; ``head`` None: the whole activation at that position)."""

    def scale(act: torch.Tensor, hook: Any) -> torch.Tensor:
        act = act.clone()
        where = slice(None) if position is None else position
        if head is None:
            act[:, where] = act[:, where] * factor
        else:
            act[:, where, head] = act[:, where, head] * factor
        return act

    hooks = [(hook_name, scale)] if hook_name is not None else []
    tokens = torch.tensor([list(prompt)])
    new: list[int] = []
    for _ in range(max_new_tokens):
        with torch.inference_mode():
            logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
        nxt = int(logits[0, -1].argmax())
        new.append(nxt)
        tokens = torch.cat([tokens, torch.tensor([[nxt]])], dim=1)
    return new
