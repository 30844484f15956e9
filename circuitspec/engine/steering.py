"""Directions read through the engine, and steering: ``h' = h + α·e`` at a node and role.

- :func:`collect` reads a node's activation per prompt from the shared clean run: at the node's role
  (``pooling="token"``, the emotion paper's token-level reading) or at each prompt's last token
  (``pooling="final"``, sentence-final). :func:`group_direction` turns two prompt groups (two run
  contexts on one model) into a mean-difference direction (``circuitspec.directions.geometry``).
- :class:`Shift` is the injection as an :class:`~circuitspec.engine.edits.Edit` (the edit contract:
  ``mask``, ``apply``, ``take``, ``same_as``), so it runs through ``run_edits``' partial passes from
  the cached stream, chains with other edits of the same hook (``chain_edits``) and can later be
  handed to generation unchanged.
- :func:`steer` runs any number of (node, vector, α) pushes batched, one copy of the prompt batch
  each; :func:`steering_sweep` runs a node × α grid with, per seed, a random direction of the same
  norm (``numpy.random.default_rng(seed)``) over the same α, and returns a :class:`SteeringGrid`
  whose :meth:`~SteeringGrid.measurement` is a ``Measurement`` (α sweep, random-direction baseline).
- :func:`steering_site` checks a vector against a node for generation, which adds it through
  ``StepEdit(site, shift=…)`` with a :class:`Shift` on every generated step (the steering claim's text
  scores, ``interventions/steering_claim.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from circuitspec.directions.geometry import MeanDifference, mean_difference
from circuitspec.directions.store import Provenance, Stored, load
from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement, SweepPoint
from circuitspec.spec.nodes import NodeKind, NodeRef, parse_node

from .context import RunContext
from .edits import Edit, copies_per_pass, run_edits, start_hooks
from .sites import Site, resolve_site

__all__ = [
    "Push",
    "Shift",
    "SteeringGrid",
    "collect",
    "group_direction",
    "layer_directions",
    "load_for",
    "provenance_for",
    "random_direction",
    "reading_node",
    "steer",
    "steering_site",
    "steering_sweep",
]

Pooling = Literal["token", "final"]
_NOT_A_VECTOR = (NodeKind.HEAD_PATTERN, NodeKind.LOGITS)


def _node(node: NodeRef | str) -> NodeRef:
    if isinstance(node, NodeRef):
        return node
    try:
        return parse_node(node)
    except ValueError as exc:
        raise CircuitSpecError(f"'{node}' is not a node name ({exc})") from None


def reading_node(node: NodeRef | str, pooling: Pooling = "token") -> NodeRef:
    """The node read for ``pooling``: as named (``token``: it must name a role), or at ``@end``
    (``final``)."""
    ref = _node(node)
    if ref.kind in _NOT_A_VECTOR:
        raise CircuitSpecError(f"'{ref.text}' is not an activation vector: read a head, MLP or stream node")
    if pooling == "final":
        return parse_node(f"{ref.component}@end")
    if pooling != "token":
        raise CircuitSpecError(f"pooling '{pooling}' (valid: token, final)")
    if ref.role is None:
        raise CircuitSpecError(f"'{ref.text}' names no role: token-level reading needs '{ref.text}@role'")
    return ref


def collect(ctx: RunContext, node: NodeRef | str, pooling: Pooling = "token") -> np.ndarray:
    """Per-prompt activations ``[n, width]`` (float64) at ``node`` from the shared clean run."""
    site = resolve_site(reading_node(node, pooling), ctx.prompts, ctx.adapter.arch)
    _, cache = ctx.clean([site.hook_name])
    if site.hook_name not in cache:
        raise CircuitSpecError(f"this model has no hook '{site.hook_name}' for '{site.node.text}'")
    act = site.select(cache[site.hook_name])
    return act.reshape(act.shape[0], -1).double().cpu().numpy()


def group_direction(
    group: RunContext, baseline: RunContext, node: NodeRef | str, pooling: Pooling = "token"
) -> MeanDifference:
    """``mean(group) − mean(baseline)`` at ``node`` (two prompt sets on one model), unit-normalised."""
    return mean_difference(collect(group, node, pooling), collect(baseline, node, pooling))


def provenance_for(
    node: NodeRef | str,
    pooling: Pooling,
    model: str,
    groups: Sequence[str],
    n: Sequence[int],
    kind: Literal["direction", "subspace"] = "direction",
    method: str = "mean_difference",
) -> Provenance:
    """The provenance of a direction or subspace read at ``node`` (its role and layer filled in)."""
    ref = reading_node(node, pooling)
    return Provenance(
        model=model,
        node=ref.component,
        kind=kind,
        method=method,
        pooling=pooling,
        groups=tuple(groups),
        n=tuple(int(x) for x in n),
        role=ref.role,
        layer=ref.layer,
    )


def load_for(ctx: RunContext, path: str | Path, node: NodeRef | str | None = None) -> Stored:
    """A stored direction or subspace checked against this model: its width must be ``node``'s here (by
    default the node it was read at, at its role); otherwise a one-line error."""
    stored = load(path)
    ref = (
        _node(node)
        if node is not None
        else _node(f"{stored.provenance.node}@{stored.provenance.role or 'end'}")
    )
    width = collect(ctx, ref, "token" if ref.role else "final").shape[1]
    return load(path, width=width, what=f"{ref.component} of this model")


def random_direction(width: int, norm: float, seed: int) -> np.ndarray:
    """A direction drawn uniformly on the sphere of radius ``norm`` (``default_rng(seed)``: one per seed)."""
    vector = np.random.default_rng(seed).standard_normal(width)
    return vector * (float(norm) / float(np.linalg.norm(vector)))


class Shift(Edit):
    """Add ``delta`` (activation-shaped, zero outside ``mask``) to a hook's activation: ``h + α·e``."""

    def __init__(self, mask: torch.Tensor, delta: torch.Tensor) -> None:
        super().__init__(mask=mask)
        self.delta = delta

    def apply(self, act: torch.Tensor) -> torch.Tensor:
        mask = self.mask.to(act.device)
        return torch.where(mask, act + self.delta.to(act.device, act.dtype), act)

    def take(self, rows: torch.Tensor) -> Edit:
        return Shift(self.mask[rows.to(self.mask.device)], self.delta[rows.to(self.delta.device)])

    def same_as(self, other: Edit) -> bool:
        return (
            isinstance(other, Shift)
            and torch.equal(self.mask, other.mask)
            and torch.equal(self.delta, other.delta)
        )


@dataclass(frozen=True)
class Push:
    """One steered copy of the prompt batch: ``alpha × vector`` added at ``node`` (at its role's token; at
    every position when it names no role)."""

    node: NodeRef | str
    vector: np.ndarray
    alpha: float


def _checked_sites(ctx: RunContext, pushes: Sequence[Push]) -> tuple[list[Site], dict[str, torch.Tensor]]:
    """Each push's site, and the clean activations of their hooks; a vector of the wrong width is an error."""
    sites = [resolve_site(_node(p.node), ctx.prompts, ctx.adapter.arch) for p in pushes]
    hooks = sorted({s.hook_name for s in sites})
    ctx.need(start_hooks(hooks, ctx.adapter.arch))
    _, cache = ctx.clean(hooks)
    for site, push in zip(sites, pushes, strict=True):
        if site.node.kind in _NOT_A_VECTOR or site.hook_name not in cache:
            raise CircuitSpecError(f"cannot steer at '{site.node.text}': not an activation vector here")
        selected = site.select(cache[site.hook_name])
        width = int(np.prod(selected.shape[1:] if site.positions is not None else selected.shape[2:]))
        if np.asarray(push.vector).size != width:
            raise CircuitSpecError(
                f"a steering vector of width {np.asarray(push.vector).size} at '{site.node.text}', "
                f"which is {width} wide in this model"
            )
    return sites, cache


def steering_site(ctx: RunContext, node: NodeRef | str, vector: np.ndarray) -> Site:
    """``node`` resolved against the prompts, once ``vector`` is checked to fit it (one-line error if not):
    where generation adds ``α·vector`` (:class:`~circuitspec.engine.generation.StepEdit` ``shift``)."""
    (site,), _ = _checked_sites(ctx, [Push(node, vector, 1.0)])
    return site


def _shifts(
    sites: Sequence[Site], pushes: Sequence[Push], cache: dict[str, torch.Tensor], n: int
) -> dict[str, Edit]:
    """One :class:`Shift` per hook, copy ``c`` (rows ``c·n … (c+1)·n``) adding push ``c``'s ``α·e``."""
    edits: dict[str, Edit] = {}
    for hook in sorted({s.hook_name for s in sites}):
        shape = cache[hook].shape
        masks, deltas = [], []
        for site, push in zip(sites, pushes, strict=True):
            mask = torch.zeros(shape, dtype=torch.bool)
            delta = torch.zeros(shape, dtype=cache[hook].dtype)
            if site.hook_name == hook:
                mask = site.mask(mask)
                value = torch.as_tensor(np.asarray(push.vector, dtype=np.float64) * float(push.alpha))
                count = int(mask.sum()) // value.numel()
                delta[mask] = value.to(delta.dtype).flatten().repeat(count)
            masks.append(mask)
            deltas.append(delta)
        edits[hook] = Shift(torch.cat(masks), torch.cat(deltas))
    return edits


def steer(ctx: RunContext, pushes: Sequence[Push]) -> torch.Tensor:
    """End-token logits ``[len(pushes), n, vocab]`` (encoders: embeddings), push ``i`` applied to copy ``i``
    of the clean prompts; counted partial passes from the clean run's cached stream, in chunks of copies
    that fit the memory budget."""
    if not pushes:
        raise CircuitSpecError("nothing to steer: no (node, direction, alpha) given")
    sites, cache = _checked_sites(ctx, pushes)
    n = len(ctx.prompts)
    outputs: list[torch.Tensor] = []
    step = copies_per_pass(ctx, len(pushes))
    for start in range(0, len(pushes), step):
        chunk = slice(start, start + step)
        edits = _shifts(sites[chunk], pushes[chunk], cache, n)
        copies = len(sites[chunk])
        out = run_edits(ctx, ctx.prompts.tokens, edits, copies=copies, run="clean")
        outputs.extend(out[i * n : (i + 1) * n] for i in range(copies))
    return torch.stack(outputs)


@dataclass
class SteeringGrid:
    """A node × α steering sweep with its random-direction control, metric per prompt.

    ``clean`` ``[n]``; ``steered`` ``[nodes, alphas, n]``; ``random`` ``[nodes, seeds, alphas, n]`` (per
    seed a random direction of the steering vector's norm, ``norms`` ``[nodes]``)."""

    nodes: list[str]
    alphas: list[float]
    seeds: list[int]
    clean: np.ndarray
    steered: np.ndarray
    random: np.ndarray
    norms: np.ndarray

    def measurement(
        self, claim_id: str, node: str | None = None, alpha: float | None = None, kind: str = "steering"
    ) -> Measurement:
        """One node's α sweep as a :class:`Measurement`: per α a sweep point with ``value`` (steered −
        clean), ``intervened`` and ``clean``; top-level arrays at ``alpha`` (default: the largest |α|);
        ``random_baseline``: per seed, the mean change the random direction makes at that α."""
        i = self.nodes.index(node) if node is not None else 0
        if alpha is None:
            alpha = max(self.alphas, key=lambda a: (abs(a), a))
        j = self.alphas.index(alpha)
        m = Measurement(claim_id, kind, int(self.clean.shape[0]), sweep_variable="alpha")
        for a, steered in zip(self.alphas, self.steered[i], strict=True):
            arrays = {"value": steered - self.clean, "intervened": steered, "clean": self.clean}
            m.sweep.append(SweepPoint(a, arrays))
        m.arrays = dict(m.sweep[j].arrays)
        if self.seeds:
            m.random_baseline = (self.random[i, :, j] - self.clean).mean(axis=1)
        m.extra.update(node=self.nodes[i], alpha=alpha, norm=float(self.norms[i]), seeds=list(self.seeds))
        return m


def steering_sweep(
    ctx: RunContext,
    directions: Mapping[str, np.ndarray],
    alphas: Sequence[float],
    seeds: Sequence[int] = (),
) -> SteeringGrid:
    """Steer each node (``directions``: node name → vector, e.g. one per layer) at every α, and per seed a
    random direction of the same norm at the same α; the claim's metric per prompt (all batched)."""
    nodes, alphas, seeds = list(directions), [float(a) for a in alphas], [int(s) for s in seeds]
    pushes: list[Push] = []
    norms = []
    for node in nodes:
        vector = np.asarray(directions[node], dtype=np.float64).ravel()
        norms.append(float(np.linalg.norm(vector)))
        controls = [random_direction(vector.size, norms[-1], seed) for seed in seeds]
        pushes += [Push(node, v, a) for v in (vector, *controls) for a in alphas]
    logits = steer(ctx, pushes)
    metric = np.stack([ctx.metric(out, ctx.prompts).double().cpu().numpy() for out in logits])
    clean = ctx.metric(ctx.clean()[0], ctx.prompts).double().cpu().numpy()
    grid = metric.reshape(len(nodes), 1 + len(seeds), len(alphas), -1)
    return SteeringGrid(nodes, alphas, seeds, clean, grid[:, 0], grid[:, 1:], np.array(norms))


def layer_directions(
    group: RunContext,
    baseline: RunContext,
    template: str,
    layers: Sequence[int],
    pooling: Pooling = "token",
) -> dict[str, np.ndarray]:
    """Per layer, the unit mean-difference direction at ``template.format(layer=L)`` (``resid_pre{layer}@w``):
    the ``directions`` a layer × α :func:`steering_sweep` takes."""
    nodes = [template.format(layer=layer) for layer in layers]
    return {node: group_direction(group, baseline, node, pooling).unit for node in nodes}
