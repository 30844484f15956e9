"""Induction scores of every head on repeated random token sequences (no intervention).

Entry points: :func:`repeated_sequences` builds ``[n, (BOS,) r_0 … r_{T−1}, r_0 … r_{T−1}]`` with
``T`` distinct tokens per sequence (seeded), so each token's first occurrence is unique;
:func:`induction_scores` runs them once (counted) and reads every layer's ``hook_pattern``. A head's
score on a sequence is TransformerLens' induction score: its mean attention from each second-half
token to the token after that token's first occurrence, i.e. the mean of the pattern's diagonal at
offset ``1 − T`` over the second-half queries. The stripe is taken inside the hook, so no whole
pattern is kept.
"""

from __future__ import annotations

from typing import Any

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.memory import memory_budget, row_bytes
from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import HeadGrid, Measurement, TargetValues

from .measuring import MeasurementBuilder

__all__ = ["induction_scores", "measure", "repeated_sequences"]


def repeated_sequences(
    n: int, seq_len: int, d_vocab: int, seed: int, bos: int | None = None, avoid: tuple[int, ...] = ()
) -> torch.Tensor:
    """``[n, (1 +) 2·seq_len]`` token ids: ``seq_len`` distinct random ids (never one in ``avoid``),
    repeated once, after ``bos`` when given. Seeded with a CPU generator, so the same on every device."""
    allowed = torch.ones(d_vocab, dtype=torch.bool)
    allowed[[i for i in avoid if 0 <= i < d_vocab]] = False
    pool = allowed.nonzero().squeeze(1)
    if seq_len > pool.numel():
        raise CircuitSpecError(
            f"induction: seq_len {seq_len} needs that many distinct tokens; the vocabulary has {pool.numel()}"
        )
    gen = torch.Generator().manual_seed(seed)
    halves = torch.stack([pool[torch.randperm(pool.numel(), generator=gen)[:seq_len]] for _ in range(n)])
    tokens = torch.cat([halves, halves], dim=1)
    if bos is not None:
        tokens = torch.cat([torch.full((n, 1), bos, dtype=torch.long), tokens], dim=1)
    return tokens


def induction_scores(ctx: RunContext, tokens: torch.Tensor, seq_len: int) -> torch.Tensor:
    """``[n, n_layers, n_heads]`` induction score of every head on each sequence of ``tokens``
    (built by :func:`repeated_sequences`; a leading BOS is allowed), in chunks that fit memory."""
    adapter = ctx.adapter
    arch = adapter.arch
    n, length = tokens.shape
    first_query = length - seq_len  # the second half's first token
    scores = torch.zeros(n, arch.n_layers, arch.n_heads)
    step = max(1, memory_budget(adapter.device) // row_bytes(arch, length, logits=0))

    def stripe(layer: int, rows: slice) -> Any:
        def read(pattern: torch.Tensor, hook: Any) -> None:
            # pattern [rows, heads, q, k]; key = query − seq_len + 1 for every second-half query
            diagonal = pattern.diagonal(offset=1 - seq_len, dim1=-2, dim2=-1)  # [rows, heads, q − T + 1]
            second_half = diagonal[..., first_query - (seq_len - 1) :]
            scores[rows, layer] = second_half.float().mean(-1).cpu()

        return read

    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        chunk = tokens[rows]
        hooks = [(f"blocks.{layer}.attn.hook_pattern", stripe(layer, rows)) for layer in range(arch.n_layers)]
        ctx.counter.add(chunk.shape[0], int(chunk.numel()))  # a pass outside the prompt set: counted here
        adapter.forward(chunk, hooks, stop_at_layer=arch.n_layers)  # the blocks only, no unembedding
    return scores


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """An ``induction`` claim: per sequence the targets' mean induction score; each head's mean as a grid."""
    b = MeasurementBuilder(ctx, claim, seed)
    arch = ctx.adapter.arch
    tokenizer = ctx.tokenizer
    bos = getattr(tokenizer, "bos_id", None)
    avoid = tuple(i for i in (bos, getattr(tokenizer, "pad_id", None)) if i is not None)
    sequence_seed = seed if claim.seed is None else claim.seed
    tokens = repeated_sequences(claim.sequences, claim.seq_len, arch.d_vocab, sequence_seed, bos, avoid)
    scores = induction_scores(ctx, tokens, claim.seq_len)  # [n, layers, heads]
    targets = [(node.layer, node.head) for node in graph.targets(claim.id)]
    per_target = {f"L{layer}H{head}": scores[:, layer, head] for layer, head in targets}
    b.arrays(value=torch.stack(list(per_target.values())).mean(0))
    b.plot(HeadGrid(scores.mean(0).tolist(), "induction score (mean over sequences)"))
    if len(per_target) > 1:
        b.plot(TargetValues({name: v.numpy().astype("float64") for name, v in per_target.items()}))
    m = b.measurement
    m.n_prompts = claim.sequences
    m.prompt_labels = [f"random sequence {i} (seed {sequence_seed})" for i in range(claim.sequences)]
    b.note(induction_seq_len=claim.seq_len, induction_sequences=claim.sequences, induction_seed=sequence_seed)
    return b.build()
