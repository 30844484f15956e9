"""Attention probability of a head from one role's token to another's.

Entry point: :func:`attention_prob` reads ``hook_pattern[b, head, source_pos, destination_pos]``
from the shared clean run (``source`` is the query position, ``destination`` the key position).
"""

from __future__ import annotations

from typing import Any

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.sites import Site
from circuitspec.measurement import AttentionPattern, Measurement

from .measuring import MeasurementBuilder, claim_sites

__all__ = ["attention_pattern", "attention_prob", "mean_pattern", "measure"]


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


def _position_labels(ctx: RunContext, length: int) -> list[str]:
    """A label per position of the longest prompts: its index, plus the role every one of them has there."""
    prompts = ctx.prompts
    longest = prompts.lengths == prompts.lengths.max()
    labels = [str(i) for i in range(length)]
    roles = {**prompts.role_positions, "end": prompts.lengths - 1}
    for role, positions in roles.items():
        at = positions[longest].unique()
        if at.numel() == 1 and 0 <= int(at) < length:
            labels[int(at)] += f" {role}"
    return labels


def attention_pattern(ctx: RunContext, site: Site) -> AttentionPattern:
    """The head's mean pattern with position labels (the report's attention plot)."""
    pattern = mean_pattern(ctx, site)
    node = site.node
    title = f"L{node.layer}H{node.head} attention (mean over the longest prompts)"
    return AttentionPattern(_position_labels(ctx, len(pattern)), pattern, title)


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """An ``attention`` claim: mean over target heads of P(source attends to destination)."""
    b = MeasurementBuilder(ctx, claim, seed)
    sites = claim_sites(ctx, graph, claim)
    probs = torch.stack([attention_prob(ctx, s, claim.source, claim.destination) for s in sites])
    b.arrays(value=probs.mean(0))
    for site in {(s.node.layer, s.node.head): s for s in sites}.values():  # one plot per head
        b.plot(attention_pattern(ctx, site))
    return b.build()
