"""The shared runs path patching starts from, and its counted passes and read-outs.

The clean and corrupted runs are the run context's shared ones, cached with the activations the
claim registry declares for path methods (``circuitspec.claims.hooks.path_node_hooks``), so a path
claim after another claim on the same prompt set adds no clean or corrupted pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from circuitspec.claims.hooks import path_node_hooks
from circuitspec.spec.geometry import hook_name
from circuitspec.spec.nodes import NodeRef, parse_node

from ..context import Hook, RunContext

__all__ = ["MAX_ROWS_PER_PASS", "Runs", "forward", "get_runs", "read_out", "stream_entering"]

MAX_ROWS_PER_PASS = 512  # sequences per batched forward pass (memory bound)


@dataclass
class Runs:
    """The run being patched (``base``: clean when noising) and the run senders take values from."""

    base_logits: torch.Tensor
    base: dict[str, torch.Tensor]
    source: dict[str, torch.Tensor]
    base_tokens: torch.Tensor


def get_runs(ctx: RunContext, direction: str, nodes: Sequence[NodeRef], mlps: str = "frozen") -> Runs:
    """The shared clean and corrupted runs, as base and source for ``direction``, holding what paths
    through ``nodes`` read (:func:`circuitspec.claims.hooks.path_node_hooks`)."""
    names = sorted(path_node_hooks(nodes, ctx.adapter.arch, mlps))
    clean, corrupt = ctx.clean(names), ctx.corrupted(names)  # shared with the planner's other claims
    if direction == "denoising":
        return Runs(corrupt[0], corrupt[1], clean[1], ctx.prompts.corrupt_tokens)
    return Runs(clean[0], clean[1], corrupt[1], ctx.prompts.tokens)


def stream_entering(ctx: RunContext, runs: Runs, layer: int) -> torch.Tensor:
    """The base run's residual stream entering block ``layer`` (after the last block: the final stream)."""
    arch = ctx.adapter.arch
    if layer >= arch.n_layers:
        return runs.base[arch.final_hook]
    return runs.base[hook_name(parse_node(f"resid_pre{layer}"))]


def forward(
    ctx: RunContext, inputs: torch.Tensor, start: int | None, hooks: Sequence[Hook], stop: int | None = None
) -> torch.Tensor:
    """A counted batched pass from block ``start`` on the stream ``inputs`` (``start=None``: token ids
    from the embeddings); end-token logits (an encoder: embeddings), or the stream entering ``stop``."""
    stop = stop if stop is not None and stop < ctx.adapter.arch.n_layers else None
    return ctx.forward(inputs, hooks, start_at_layer=start, stop_at_layer=stop)


def read_out(ctx: RunContext, resid: torch.Tensor) -> torch.Tensor:
    """The output read from final streams of stacked prompt-set copies, no pass: end-token logits
    ``[rows, vocab]`` (only those positions normalised and unembedded), an encoder's embeddings."""
    copies = resid.shape[0] // len(ctx.prompts)
    ends = (ctx.prompts.lengths - 1).repeat(copies)
    return ctx.adapter.readout(resid, ends, ctx.attention_mask(resid.shape[0]))
