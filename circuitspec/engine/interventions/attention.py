"""Attention probability of a head from one role's token to another's.

Entry point: :func:`attention_prob` reads ``hook_pattern[b, head, source_pos, destination_pos]``
from the shared clean run (``source`` is the query position, ``destination`` the key position).
"""

from __future__ import annotations

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.sites import Site

__all__ = ["attention_prob", "mean_pattern"]


def attention_prob(
    ctx: RunContext, site: Site, source: str = "end", destination: str = "end"
) -> torch.Tensor:
    """``[n]`` probability that head ``site`` at role ``source`` attends to role ``destination``."""
    node = site.node
    if node.layer is None or node.head is None:
        raise ValueError(f"'{node}' is not an attention head")
    hook = f"blocks.{node.layer}.attn.hook_pattern"
    _, cache = ctx.clean([hook])
    pattern = cache[hook]  # [n, heads, q, k]
    rows = torch.arange(pattern.shape[0])
    q = ctx.prompts.positions(source)
    k = ctx.prompts.positions(destination)
    return pattern[rows, node.head, q, k].float().cpu()


def mean_pattern(ctx: RunContext, site: Site) -> list[list[float]]:
    """The head's attention pattern averaged over the prompts of the longest length (for plots)."""
    node = site.node
    hook = f"blocks.{node.layer}.attn.hook_pattern"
    _, cache = ctx.clean([hook])
    lengths = ctx.prompts.lengths
    longest = lengths == lengths.max()
    length = int(lengths.max())
    return cache[hook][longest, node.head, :length, :length].float().mean(0).cpu().tolist()
