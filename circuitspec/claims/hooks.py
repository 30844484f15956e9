"""Which activations each claim kind reads from the shared clean / corrupted runs (torch-free).

The planner asks every claim on a prompt set for these names before the first run, so the clean
and corrupted passes run once and cache all of them. ``cfg`` is the model's ``Architecture``
(``circuitspec.engine.architecture``: ``n_layers``, ``attn_only``, ``norm``, ``positions``); names the
model has no hook for are dropped by the run context.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from circuitspec.spec.geometry import hook_name, residual_input_hook, sender_hook
from circuitspec.spec.nodes import NodeKind, NodeRef

__all__ = [
    "dla_hooks",
    "lens_sites",
    "path_node_hooks",
    "path_run_hooks",
    "residual_hook",
]

_RESID = (NodeKind.RESID_PRE, NodeKind.RESID_MID, NodeKind.RESID_POST)


def dla_hooks(cfg: Any) -> list[str]:
    """The activations direct logit attribution reads from the clean run."""
    names = ["hook_embed"]
    if cfg.norm != "none":
        names.append("ln_final.hook_scale")
    if cfg.positions == "learned":
        names.append("hook_pos_embed")
    for layer in range(cfg.n_layers):
        names.append(f"blocks.{layer}.attn.hook_z")
        if getattr(cfg, "sublayer_output_norms", False):  # heads reach the stream through ln1_post
            names.append(f"blocks.{layer}.ln1_post.hook_scale")
        if not cfg.attn_only:
            names.append(f"blocks.{layer}.hook_mlp_out")
    return names


def lens_sites(n_layers: int, attn_only: bool = False) -> list[tuple[str, float]]:
    """``(hook-site label, x)`` in forward order; ``resid_post<l>`` is ``resid_pre<l+1>`` so only the last."""
    sites: list[tuple[str, float]] = []
    for layer in range(n_layers):
        sites.append((f"resid_pre{layer}", float(layer)))
        if not attn_only:
            sites.append((f"resid_mid{layer}", layer + 0.5))
    sites.append((f"resid_post{n_layers - 1}", float(n_layers)))
    return sites


def residual_hook(label: str) -> str:
    """The TransformerLens hook of a residual site label such as ``resid_mid3``."""
    for kind in _RESID:
        suffix = label[len(kind.value) :]
        if label.startswith(kind.value) and suffix.isdigit():
            return hook_name(NodeRef(label, kind, layer=int(suffix)))
    raise ValueError(f"'{label}' is not a residual-stream site (resid_pre/resid_mid/resid_post<l>)")


def path_run_hooks(cfg: Any) -> list[str]:
    """What path patching and causal scrubbing read from the clean and corrupted runs."""
    suffixes = (
        "attn.hook_z",
        "hook_mlp_out",
        "mlp.hook_post",
        "hook_resid_pre",
        "hook_resid_mid",
        "hook_resid_post",
        "hook_normalized_resid_post",  # post-LN encoders: the stream between blocks
    )
    wanted = ["hook_embed", "hook_pos_embed"]
    return wanted + [f"blocks.{layer}.{suffix}" for layer in range(cfg.n_layers) for suffix in suffixes]


# ------------------------------------------------------------------------ per kind: (claim, graph, cfg)


def no_hooks(claim: Any, graph: Any, cfg: Any) -> set[str]:
    """Kinds that read only the clean run's output (``behaviour``)."""
    return set()


def target_hooks(claim: Any, graph: Any, cfg: Any) -> set[str]:
    """Interventions on the targets (ablation, patching, scaling): each target's own activation."""
    return {hook_name(n) for n in graph.targets(claim.id) if n.kind is not NodeKind.LOGITS}


def attribution_hooks(claim: Any, graph: Any, cfg: Any) -> set[str]:
    return set(dla_hooks(cfg)) | {hook_name(n) for n in graph.targets(claim.id) if n.is_feature}


def attention_hooks(claim: Any, graph: Any, cfg: Any) -> set[str]:
    return {f"blocks.{n.layer}.attn.hook_pattern" for n in graph.targets(claim.id) if n.layer is not None}


def lens_hooks(claim: Any, graph: Any, cfg: Any) -> set[str]:
    labels = [claim.at] if claim.at else [label for label, _ in lens_sites(cfg.n_layers, cfg.attn_only)]
    return {residual_hook(label.split("@", 1)[0]) for label in labels}


def faithfulness_hooks(claim: Any, graph: Any, cfg: Any) -> set[str]:
    names = {f"blocks.{layer}.attn.hook_z" for layer in range(cfg.n_layers)}
    if not cfg.attn_only:
        names |= {f"blocks.{layer}.hook_mlp_out" for layer in range(cfg.n_layers)}
    return names


def path_node_hooks(nodes: Iterable[NodeRef], cfg: Any, mlps: str = "frozen") -> set[str]:
    """What path patching reads from the clean and corrupted runs for paths through ``nodes``.

    Where the stream is a sum and MLPs stay frozen (decoders), a receiver's patched input is its base
    input plus its senders' deltas (``engine/paths/sum_stream.py``): the runs need only each node's own
    activation and residual input, and the stream entering the blocks the receivers' passes start at.
    Otherwise (post-norm encoders, ``mlps: recomputed``) a frozen pass pins every component to its base
    value, so it needs them all (:func:`path_run_hooks`). At 1,200 SmolLM2 prompts the difference is
    ~15 GB of cached activations.
    """
    if mlps != "frozen" or not getattr(cfg, "stream_is_sum", False):
        return set(path_run_hooks(cfg))
    names = {cfg.final_hook}
    for node in nodes:
        for hook in (sender_hook, lambda n: residual_input_hook(n, cfg.n_layers, cfg.final_hook)):
            with contextlib.suppress(ValueError):  # a node that only sends, or only receives
                names.add(hook(node))
        if node.layer is not None:
            names |= {cfg.stream_entering(node.layer), cfg.stream_entering(node.layer + 1)}
    return names


def scrubbing_hooks(claim: Any, graph: Any, cfg: Any) -> set[str]:
    """Causal scrubbing splits the clean stream into every component's output: it reads them all."""
    return set(path_run_hooks(cfg))


def path_hooks(claim: Any, graph: Any, cfg: Any) -> set[str]:
    nodes = {node for edge in graph.edges(claim.id) for node in edge}
    return path_node_hooks(nodes, cfg, getattr(claim, "mlps", "frozen"))
