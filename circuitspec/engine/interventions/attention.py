"""Attention probability of a head from one role's token to another's.

Entry point: :func:`attention_prob` reads ``hook_pattern[b, head, source_pos, destination_pos]``
from the shared clean run (``source`` is the query position, ``destination`` the key position).
"""

from __future__ import annotations

from typing import Any

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.sites import Site
from circuitspec.measurement import AttentionPattern, AttentionRow, Measurement

from .measuring import MeasurementBuilder, claim_sites

__all__ = ["attention_pattern", "attention_prob", "attention_rows", "mean_pattern", "measure", "view_prompts"]

VIEW_PROMPTS = 3  # prompts per claim whose attention rows the report shows
VIEW_HEADS = 4  # heads per prompt shown (a claim over a large group shows its first ones)


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


def view_prompts(value: torch.Tensor, k: int = VIEW_PROMPTS) -> list[int]:
    """The prompts an attention view shows: largest, median and smallest ``value`` (distinct, in that
    order; ties go to the earliest prompt), so the view spans the range the statistic summarises."""
    if value.numel() == 0:
        return []
    values = value.tolist()
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))  # largest first
    smallest = min(range(len(values)), key=lambda i: (values[i], i))
    picks = [order[0], order[len(order) // 2], smallest]
    return list(dict.fromkeys(picks))[:k]


def attention_rows(ctx: RunContext, site: Site, source: str, prompts: list[int]) -> list[AttentionRow]:
    """Head ``site``'s attention from role ``source`` over each chosen prompt's tokens, read from the
    shared clean run's pattern (no pass); empty when the prompt set cannot decode its tokens."""
    decode = ctx.prompts.decode
    node = site.node
    if decode is None or node.layer is None or node.head is None:
        return []
    _, cache = ctx.clean([f"blocks.{node.layer}.attn.hook_pattern"])
    pattern = cache[f"blocks.{node.layer}.attn.hook_pattern"]
    queries = ctx.prompts.positions(source)
    roles = {**ctx.prompts.role_positions, "end": ctx.prompts.lengths - 1}
    rows = []
    for i in prompts:
        length, query = int(ctx.prompts.lengths[i]), int(queries[i])
        ids = ctx.prompts.tokens[i, :length].tolist()
        rows.append(
            AttentionRow(
                prompt=i,
                head=f"L{node.layer}H{node.head}",
                query=query,
                tokens=[decode([token]) for token in ids],
                probs=pattern[i, node.head, query, :length].float().cpu().tolist(),
                roles={role: int(at[i]) for role, at in roles.items()},
            )
        )
    return rows


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """An ``attention`` claim: mean over target heads of P(source attends to destination)."""
    b = MeasurementBuilder(ctx, claim, seed)
    sites = claim_sites(ctx, graph, claim)
    probs = torch.stack([attention_prob(ctx, s, claim.source, claim.destination) for s in sites])
    value = probs.mean(0)
    b.arrays(value=value)
    heads = list({(s.node.layer, s.node.head): s for s in sites}.values())
    for site in heads:  # one plot per head
        b.plot(attention_pattern(ctx, site))
    shown = view_prompts(value)
    for site in heads[:VIEW_HEADS]:
        for row in attention_rows(ctx, site, claim.source, shown):
            b.attention_row(row)
    return b.build()
