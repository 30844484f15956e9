"""Causal scrubbing, batched: one component call per non-leaf tree node on rows ``n × samples``.

For an original prompt ``x`` the scrubbed run is built from the logits down, as in Redwood's
``run_scrub``: a receiver's input along an edge from sender ``p`` is ``p``'s output on a prompt drawn
from ``x``'s class for ``p``'s fields, ``p``'s own inputs scrubbed the same way (treeified); every
other contribution takes its value on one random other prompt ``r`` shared by the whole tree; a leaf
is read whole from its drawn prompt. Because a pre-norm residual stream is a sum, a receiver's
scrubbed input is ``input(r) + Σ_edges (value_p − p(r))``: components are evaluated through the
model adapter (a layer's attention, an MLP), the logits need only the final norm and unembedding,
and the only forward pass is the shared clean run.
"""

from __future__ import annotations

from typing import Any

import torch

from circuitspec.claims.hooks import path_run_hooks
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.geometry import receive_channels

from ..context import RunContext
from ..paths.deltas import own_activation, to_resid
from ..paths.jobs import input_hook, receiver_inputs
from ..sites import position_mask
from .hypothesis import Component, ScrubPlan, TreeNode

__all__ = ["clean_run", "scrub"]


def clean_run(ctx: RunContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The shared clean run with the activations path methods read (one pass for every claim)."""
    return ctx.clean(path_run_hooks(ctx.adapter.arch))


def _term(
    ctx: RunContext, comp: Component, cache: dict[str, torch.Tensor], idx: torch.Tensor
) -> torch.Tensor:
    """``comp``'s term in the residual stream on prompts ``idx`` (from the clean cache)."""
    return to_resid(ctx.adapter, comp.node, own_activation(comp.node, cache, idx))


def _evaluate(ctx: RunContext, comp: Component, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """One batched call of one component on its scrubbed pre-norm inputs; its residual-stream term."""
    layer = int(comp.node.layer or 0)
    if "mlp_in" in inputs:
        return ctx.adapter.mlp_call(layer, inputs["mlp_in"])
    z = ctx.adapter.attn_call(layer, inputs["q"], inputs["k"], inputs["v"])[:, :, comp.node.head]
    return to_resid(ctx.adapter, comp.node, z)


def _inputs(
    ctx: RunContext, plan: ScrubPlan, tree: TreeNode, values: dict[int, torch.Tensor], cache: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """The tree node's scrubbed input per channel: the random prompt's, each child edge's term swapped."""
    arch, device = ctx.adapter.arch, ctx.device
    randoms = torch.as_tensor(plan.randoms)
    inputs = {
        receive_channels(part)[0]: cache[input_hook(part, arch)][randoms].clone()
        for part in receiver_inputs(tree.component.node)
    }
    for child_index in tree.children:
        edge = plan.nodes[child_index].edge
        assert edge is not None
        rows = torch.as_tensor(tree.inputs)
        mask = position_mask(edge.sender_role, ctx.prompts, rows, device)
        mask = mask * position_mask(edge.receiver_role, ctx.prompts, rows, device)
        inputs[edge.channel] += mask * (values[child_index] - _term(ctx, edge.sender, cache, randoms))
    return inputs


def scrub(ctx: RunContext, plan: ScrubPlan) -> tuple[torch.Tensor, dict[str, int]]:
    """Batched scrubbed end-token logits ``[B, vocab]`` for every row of ``plan``; plus call counts."""
    if not ctx.adapter.arch.stream_is_sum:
        raise CircuitSpecError(
            "causal scrubbing splits the residual stream into a sum of component outputs, and this "
            "model's stream is renormalised after every sublayer (post-norm)"
        )
    _, cache = clean_run(ctx)
    values: dict[int, torch.Tensor] = {}
    calls = 0
    with torch.inference_mode():
        for index in reversed(range(len(plan.nodes))):  # children always come after their parent
            tree = plan.nodes[index]
            if not tree.children and index != 0:  # a leaf: read whole from its drawn prompt
                values[index] = _term(ctx, tree.component, cache, torch.as_tensor(tree.inputs))
                continue
            inputs = _inputs(ctx, plan, tree, values, cache)
            if index == 0:  # the root: the logits
                ends = ctx.prompts.lengths[torch.as_tensor(plan.originals)] - 1
                logits = ctx.adapter.unembed_at(inputs["logits"], ends)
                return logits, {"component_calls": calls, "tree_nodes": len(plan.nodes)}
            values[index] = _evaluate(ctx, tree.component, inputs)
            calls += 1
    raise AssertionError("the plan has no root")
