"""The "beats random circuits" baseline: the claim's statistic on N random node sets.

Entry point: :func:`random_baseline`. :func:`random_node_sets` draws, with a seed, N sets with the
same number of nodes of each kind as the claim's targets (a head for a head, an MLP for an MLP, a
neuron for a neuron, ... keeping each node's role); the sets then run batched, several circuits per
forward pass, each on its own copy of the prompt batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from circuitspec.engine.context import RunContext
from circuitspec.engine.edits import copies_per_pass
from circuitspec.engine.sites import Site, resolve_site
from circuitspec.spec.nodes import NodeKind, NodeRef, parse_node

__all__ = ["CircuitRunner", "random_baseline", "random_node_sets", "statistic"]


def _draw(node: NodeRef, cfg, rng: np.random.Generator) -> NodeRef:
    """A uniformly random node of ``node``'s kind (same channel, same role)."""
    role = f"@{node.role}" if node.role else ""
    layer = int(rng.integers(cfg.n_layers))
    head = int(rng.integers(cfg.n_heads))
    match node.kind:
        case NodeKind.HEAD:
            text = f"L{layer}H{head}"
        case NodeKind.HEAD_Q | NodeKind.HEAD_K | NodeKind.HEAD_V | NodeKind.HEAD_PATTERN:
            text = f"L{layer}H{head}.{node.component.rsplit('.', 1)[1]}"
        case NodeKind.KV_K | NodeKind.KV_V:
            text = f"L{layer}KV{int(rng.integers(cfg.n_kv_heads))}.{node.component[-1]}"
        case NodeKind.MLP:
            text = f"MLP{layer}"
        case NodeKind.MLP_IN:
            text = f"MLP{layer}.in"
        case NodeKind.MLP_NEURON:
            text = f"MLP{layer}.post[{int(rng.integers(cfg.d_mlp))}]"
        case NodeKind.RESID_PRE | NodeKind.RESID_MID | NodeKind.RESID_POST:
            text = f"{node.kind.value}{layer}"
        case _:
            raise ValueError(
                f"no random counterpart for '{node}' (heads, MLPs, neurons, residual sites only)"
            )
    return parse_node(text + role)


def random_node_sets(targets: Sequence[NodeRef], cfg, count: int, seed: int = 0) -> list[list[NodeRef]]:
    """``count`` seeded random node sets, each matching ``targets`` kind for kind without repeats and
    never the targets themselves: the baseline is *other* circuits of the same shape (on a small model
    a draw can hit the hypothesis' own circuit, which would tie with it by construction)."""
    rng = np.random.default_rng(seed)
    own = {node.text for node in targets}
    sets: list[list[NodeRef]] = []
    for _ in range(count):
        for _attempt in range(1000):
            chosen = _draw_set(targets, cfg, rng)
            if {node.text for node in chosen} != own:
                break
        sets.append(chosen)
    return sets


def _draw_set(targets: Sequence[NodeRef], cfg, rng: np.random.Generator) -> list[NodeRef]:
    """One random node set matching ``targets`` kind for kind, without repeats."""
    chosen: list[NodeRef] = []
    for node in targets:
        for _attempt in range(1000):
            pick = _draw(node, cfg, rng)
            if pick.text not in {c.text for c in chosen}:
                break
        chosen.append(pick)
    return chosen


def statistic(arrays: dict[str, np.ndarray], name: str) -> float:
    """The claim statistic ``name`` of one circuit's per-prompt arrays (see docs/ARCHITECTURE.md)."""
    if name in ("mean", "effect"):
        return float(np.mean(arrays["value"]))
    if name == "median":
        return float(np.median(arrays["value"]))
    if name == "success_rate":
        return float(np.mean(arrays.get("intervened", arrays["value"]) > 0))
    if name == "recovered":
        clean, corrupt = np.mean(arrays["clean"]), np.mean(arrays["corrupt"])
        return float((np.mean(arrays["intervened"]) - corrupt) / (clean - corrupt))
    raise ValueError(f"statistic '{name}' has no random-circuit baseline")


CircuitRunner = Callable[[list[list[Site]]], list[dict[str, np.ndarray]]]


def random_baseline(
    ctx: RunContext, node_sets: Sequence[Sequence[NodeRef]], stat: str, runner: CircuitRunner
) -> np.ndarray:
    """The statistic ``stat`` of each node set, ``[len(node_sets)]``.

    ``runner`` is the claim kind's own: the per-prompt arrays its claim reports, for several circuits
    at once (each on its own copy of the prompt batch). Node sets drawn twice run once (a set's
    statistic is deterministic given the seed); the rest run in chunks that fit one pass.
    """
    prompts = ctx.prompts
    keys = [tuple(sorted(node.text for node in nodes)) for nodes in node_sets]
    distinct = list(dict.fromkeys(keys))
    arch = ctx.adapter.arch
    circuits = [[resolve_site(n, prompts, arch) for n in node_sets[keys.index(key)]] for key in distinct]
    step = copies_per_pass(ctx, len(circuits))
    values: list[float] = []
    for start in range(0, len(circuits), step):
        values.extend(statistic(arrays, stat) for arrays in runner(circuits[start : start + step]))
    by_key = dict(zip(distinct, values, strict=True))
    return np.array([by_key[key] for key in keys])
