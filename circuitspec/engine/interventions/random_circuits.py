"""The "beats random circuits" baseline: the claim's statistic on N random node sets.

Entry point: :func:`random_baseline`. :func:`random_node_sets` draws, with a seed, N sets with the
same number of nodes of each kind as the claim's targets (a head for a head, an MLP for an MLP, a
neuron for a neuron, ... keeping each node's role); the sets then run batched, several circuits per
forward pass, each on its own copy of the prompt batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.ablation import ablation_source, copies_per_pass, edits_for, run_edits
from circuitspec.engine.interventions.faithfulness import complement_edits, fully_ablated
from circuitspec.engine.interventions.logit_attribution import direct_logit_attribution
from circuitspec.engine.sites import Site, resolve_site
from circuitspec.spec.nodes import NodeKind, NodeRef, parse_node

__all__ = ["random_baseline", "random_node_sets", "statistic"]


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
    """``count`` seeded random node sets, each matching ``targets`` kind for kind without repeats."""
    rng = np.random.default_rng(seed)
    sets: list[list[NodeRef]] = []
    for _ in range(count):
        chosen: list[NodeRef] = []
        for node in targets:
            for _attempt in range(1000):
                pick = _draw(node, cfg, rng)
                if pick.text not in {c.text for c in chosen}:
                    break
            chosen.append(pick)
        sets.append(chosen)
    return sets


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


def random_baseline(
    ctx: RunContext,
    kind: str,
    node_sets: Sequence[Sequence[NodeRef]],
    stat: str,
    *,
    method: str = "mean",
    alpha: float | None = None,
    direction: str = "denoising",
    seed: int = 0,
) -> np.ndarray:
    """The statistic ``stat`` of a ``kind`` claim run on each node set: ``[len(node_sets)]``.

    Node sets drawn twice are run once (the statistic of a set is deterministic given the seed).
    """
    prompts = ctx.prompts
    keys = [tuple(sorted(node.text for node in nodes)) for nodes in node_sets]
    distinct = list(dict.fromkeys(keys))
    first = {key: node_sets[keys.index(key)] for key in distinct}
    circuits = [[resolve_site(node, prompts) for node in first[key]] for key in distinct]
    values = dict(
        zip(distinct, _statistics(ctx, kind, circuits, stat, method, alpha, direction, seed), strict=True)
    )
    return np.array([values[key] for key in keys])


def _statistics(ctx, kind, circuits: list[list[Site]], stat, method, alpha, direction, seed) -> list[float]:
    """The statistic of each circuit, batched several circuits per pass."""
    prompts = ctx.prompts
    if kind == "attribution":
        return [statistic({"value": direct_logit_attribution(ctx, c).numpy()}, stat) for c in circuits]
    clean_logits, _ = ctx.clean()
    clean = ctx.metric(clean_logits, prompts).float().cpu().numpy()
    if kind == "faithfulness":  # its baseline is the fully ablated run, not the corrupted prompts
        corrupt = fully_ablated(ctx, method, seed).numpy()
    else:
        corrupt = ctx.metric(ctx.corrupted()[0], prompts).float().cpu().numpy()
    step = copies_per_pass(ctx, len(circuits))
    results: list[float] = []
    for start in range(0, len(circuits), step):
        chunk = circuits[start : start + step]
        for value in _run_chunk(ctx, kind, chunk, method, alpha, direction, seed):
            results.append(statistic(_arrays(kind, direction, value.numpy(), clean, corrupt), stat))
    return results


def _run_chunk(ctx, kind, chunk: list[list[Site]], method, alpha, direction, seed) -> list[torch.Tensor]:
    prompts = ctx.prompts
    n = len(prompts)
    names = sorted({s.hook_name for c in chunk for s in c})
    if kind == "ablation":
        _, cache = ctx.clean(names)
        sources = {id(s): ablation_source(ctx, s, method, seed) for c in chunk for s in c}
        edits = edits_for(chunk, sources, {k: cache[k].shape for k in names}, alpha=alpha)
        tokens = prompts.tokens
    elif kind == "activation_patching":
        if direction == "denoising":
            _, source = ctx.clean(names)
            tokens = prompts.corrupt_tokens
        else:
            _, source = ctx.corrupted(names)
            tokens = prompts.tokens
        edits = edits_for(
            chunk, {id(s): source[s.hook_name] for c in chunk for s in c}, {k: source[k].shape for k in names}
        )
    elif kind == "faithfulness":
        edits = complement_edits(ctx, chunk, method, seed)
        tokens = prompts.tokens
    else:
        raise ValueError(f"random-circuit baselines are not available for {kind} claims")
    logits = run_edits(ctx, tokens, edits, copies=len(chunk))
    return [ctx.metric(logits[i * n : (i + 1) * n], prompts).float().cpu() for i in range(len(chunk))]


def _arrays(
    kind: str, direction: str, intervened: np.ndarray, clean: np.ndarray, corrupt: np.ndarray
) -> dict[str, np.ndarray]:
    """The arrays a claim of ``kind`` reports (same rules as the planner), for :func:`statistic`."""
    if kind == "activation_patching" and direction == "denoising":
        return {"value": intervened - corrupt, "clean": clean, "corrupt": corrupt, "intervened": intervened}
    return {"value": intervened - clean, "clean": clean, "corrupt": corrupt, "intervened": intervened}
