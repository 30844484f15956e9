"""Activation patching between the clean prompts and their corrupted twins.

Entry point: :func:`activation_patch` — *denoising* runs the corrupted prompts with the clean
activations patched in at the sites; *noising* runs the clean prompts with the corrupted ones.
:func:`patching_sweep` patches one residual-stream site kind at every layer × role position.
Metrics always use the clean prompts' answers so clean, corrupted and patched runs are comparable.
Patched passes start at the first patched block (``circuitspec.engine.edits.run_edits``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.edits import copies_per_pass, edits_for, run_edits, start_hooks
from circuitspec.engine.sites import Site, resolve_site
from circuitspec.spec.nodes import parse_node

__all__ = ["Direction", "activation_patch", "patch_circuits", "patching_sweep"]

Direction = Literal["denoising", "noising"]


def _runs(
    ctx: RunContext, direction: Direction, names: Sequence[str], passes: Sequence[Sequence[str]] = ()
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(tokens the patched run sees, activations patched in) for ``direction``. Each patched pass (the
    hooks it edits: ``passes``, default one pass over ``names``) starts at its first patched block from
    the shared run's cached stream, which is asked for here."""
    arch = ctx.adapter.arch
    ctx.need([hook for edited in (passes or [names]) for hook in start_hooks(edited, arch)])
    if direction == "denoising":
        _, source = ctx.clean(names)
        return ctx.prompts.corrupt_tokens, source
    if direction == "noising":
        _, source = ctx.corrupted(names)
        return ctx.prompts.tokens, source
    raise ValueError(f"unknown patching direction '{direction}' (valid: denoising, noising)")


def patch_circuits(
    ctx: RunContext, circuits: Sequence[Sequence[Site]], direction: Direction = "denoising"
) -> torch.Tensor:
    """Metric ``[len(circuits), n]`` (clean answers) with each circuit's sites patched together."""
    names = sorted({s.hook_name for circuit in circuits for s in circuit})
    tokens, source = _runs(ctx, direction, names)
    edits = edits_for(
        circuits,
        {id(s): source[s.hook_name] for circuit in circuits for s in circuit},
        {k: source[k].shape for k in names},
    )
    logits = run_edits(ctx, tokens, edits, copies=len(circuits))
    n = len(ctx.prompts)
    return torch.stack([ctx.metric(logits[c * n : (c + 1) * n], ctx.prompts) for c in range(len(circuits))])


def activation_patch(
    ctx: RunContext, sites: Sequence[Site], direction: Direction = "denoising"
) -> torch.Tensor:
    """Metric ``[n]`` (clean answers) of the patched run; all ``sites`` are patched together."""
    return patch_circuits(ctx, [list(sites)], direction)[0]


def patching_sweep(
    ctx: RunContext,
    site_kind: str = "resid_pre",
    roles: Sequence[str] | None = None,
    direction: Direction = "denoising",
) -> tuple[torch.Tensor, list[str]]:
    """Patch ``site_kind<L>@role`` alone for every layer L and role: metric grid ``[layers, roles, n]``.

    ``roles`` defaults to every role of the prompt set plus ``end``. All layer × role patches run
    in one batched pass (each patch gets its own copy of the batch).
    """
    roles = list(roles) if roles is not None else [*sorted(ctx.prompts.role_positions), "end"]
    n_layers = ctx.adapter.arch.n_layers
    cells = [
        resolve_site(parse_node(f"{site_kind}{layer}@{role}"), ctx.prompts)
        for layer in range(n_layers)
        for role in roles
    ]
    names = sorted({s.hook_name for s in cells})
    step = copies_per_pass(ctx, len(cells))
    chunks = [[s.hook_name for s in cells[start : start + step]] for start in range(0, len(cells), step)]
    tokens, source = _runs(ctx, direction, names, chunks)
    n = len(ctx.prompts)
    values: list[torch.Tensor] = []
    for start in range(0, len(cells), step):
        chunk = cells[start : start + step]
        edits = edits_for(
            [[s] for s in chunk],
            {id(s): source[s.hook_name] for s in chunk},
            {k: source[k].shape for k in names},
        )
        logits = run_edits(ctx, tokens, edits, copies=len(chunk))
        values.extend(ctx.metric(logits[i * n : (i + 1) * n], ctx.prompts) for i in range(len(chunk)))
    return torch.stack(values).reshape(n_layers, len(roles), n), roles
