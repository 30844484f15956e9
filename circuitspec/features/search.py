"""Greedy feature-circuit search (Dunefsky et al. 2024; contrastive-sentiment-mechanisms §4, §6.2).

Entry point: :func:`greedy_feature_search`. Starting from a target read at the end token — the
logit difference ``W_U[desired] − W_U[undesired]`` through the final LayerNorm, or a transcoder
feature's encoder row ``W_enc[:, f]`` through its layer's LN2 — every upstream component gets its
exact *direct* contribution to the target, with each LayerNorm's scale frozen at the clean run:

- transcoder feature ``g`` of layer ``m``: ``a_g(end) · (W_dec[g] · read)``;
- head ``LmHh``: ``(z[end, h] @ W_O[m, h]) · read``;
- ``embed`` / ``pos_embed``: the embedding at the end token ``· read``;

where ``read`` is the target direction pulled back through the LayerNorm (``w ⊙ d``, centred,
divided by the clean scale). The top ``k`` components by mean |contribution| over the prompts are
kept; kept features become the next target, heads and embeddings end a path (they are read at the
end token only; attention to other positions is not followed). Biases and the transcoders' error
terms are not candidates. :func:`to_yaml_snippet` writes the found paths as a ``paths:`` block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from circuitspec.engine.prompts import PromptSet
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.nodes import NodeKind, NodeSyntaxError, parse_node

__all__ = ["SearchPath", "direct_contributions", "greedy_feature_search", "to_yaml_snippet"]


@dataclass(frozen=True)
class SearchPath:
    """One chain found by the search, upstream first and ending at the search's target.

    ``contributions[i]`` / ``scores[i]`` are the mean signed / mean absolute direct contribution
    of ``nodes[i]`` to ``nodes[i + 1]`` over the prompts.
    """

    nodes: tuple[str, ...]
    contributions: tuple[float, ...]
    scores: tuple[float, ...]

    @property
    def chain(self) -> str:
        """The path in circuitspec's grammar, e.g. ``MLP0.tc[12]@end -> MLP1.tc[88]@end -> logits``."""
        return " -> ".join(self.nodes)


def _transcoders(model: Any) -> dict[int, Any]:
    """``{layer: Transcoder}`` for every transcoder spliced into ``model`` (at ``ln2`` → ``mlp_out``)."""
    found = {}
    for hook_in, sae in getattr(model, "acts_to_saes", {}).items():
        parts = hook_in.split(".")
        if len(parts) == 4 and parts[0] == "blocks" and parts[2:] == ["ln2", "hook_normalized"]:
            found[int(parts[1])] = sae
    if not found:
        raise CircuitSpecError(
            "feature search needs transcoders spliced in (declare them under model.dictionaries)"
        )
    return found


def _through_layernorm(model: Any, direction: torch.Tensor, weight: Any, scale: torch.Tensor) -> torch.Tensor:
    """Pull ``direction [n, d]`` read after a LayerNorm back to the residual stream (scale frozen)."""
    norm = model.cfg.normalization_type
    read = direction * weight if norm in ("LN", "RMS") and weight is not None else direction
    if norm in ("LN", "LNPre"):
        read = read - read.mean(-1, keepdim=True)
    if norm in ("LN", "LNPre", "RMS", "RMSPre"):
        read = read / scale.reshape(-1, 1)
    return read


def _clean_cache(model: Any, prompts: PromptSet, layers: list[int]) -> dict[str, torch.Tensor]:
    """End-token activations ``[n, ...]`` of every hook the search reads, from one clean run."""
    n_layers = model.cfg.n_layers
    wanted = {"hook_embed", "hook_pos_embed", "ln_final.hook_scale"}
    wanted |= {f"blocks.{m}.attn.hook_z" for m in range(n_layers)}
    wanted |= {f"blocks.{m}.ln2.hook_scale" for m in layers}
    wanted |= {f"blocks.{m}.hook_mlp_out.hook_sae_acts_post" for m in layers}
    with torch.no_grad():
        _, cache = model.run_with_cache(prompts.tokens, names_filter=lambda name: name in wanted)
    rows, ends = torch.arange(len(prompts)), prompts.lengths - 1
    return {name: cache[name][rows, ends] for name in cache}


def _target_read(model: Any, prompts: PromptSet, cache: dict[str, torch.Tensor], target: str) -> torch.Tensor:
    """The residual-stream direction ``[n, d_model]`` whose dot product is the target's linear input."""
    if target == "logits":
        direction = (model.W_U[:, prompts.desired] - model.W_U[:, prompts.undesired]).T
        return _through_layernorm(
            model, direction, getattr(model.ln_final, "w", None), cache["ln_final.hook_scale"]
        )
    node = parse_node(target)
    layer, feature = node.layer, node.index
    assert layer is not None and feature is not None
    encoder = _transcoders(model)[layer].W_enc[:, feature]
    direction = encoder[None].expand(len(prompts), -1)
    return _through_layernorm(
        model, direction, getattr(model.blocks[layer].ln2, "w", None), cache[f"blocks.{layer}.ln2.hook_scale"]
    )


def _check_target(model: Any, target: str) -> str:
    """``'logits'`` or the bare feature name ``MLP<l>.tc[<f>]`` of a spliced transcoder."""
    if target == "logits":
        return target
    try:
        node = parse_node(target)
    except NodeSyntaxError as exc:
        raise CircuitSpecError(str(exc)) from None
    if node.kind is not NodeKind.TRANSCODER_FEATURE or node.role not in (None, "end"):
        raise CircuitSpecError(
            f"search target '{target}' must be 'logits' or a transcoder feature at the end token"
        )
    if node.layer not in _transcoders(model):
        raise CircuitSpecError(f"search target '{target}': transcoder '{node.dictionary}' is not spliced in")
    return node.component


def direct_contributions(
    model: Any, prompts: PromptSet, target: str = "logits", *, _cache=None
) -> dict[str, torch.Tensor]:
    """Per-prompt direct contribution ``[n]`` to ``target`` of every component upstream of it.

    ``target`` is ``'logits'`` (the logit difference) or a transcoder feature ``MLP<l>.tc[<f>]``
    (its encoder pre-activation). Keys are node names at ``@end``.
    """
    target = _check_target(model, target)
    transcoders = _transcoders(model)
    cache = _cache if _cache is not None else _clean_cache(model, prompts, sorted(transcoders))
    read = _target_read(model, prompts, cache, target)
    if target == "logits":
        last_head_layer, last_feature_layer = model.cfg.n_layers - 1, model.cfg.n_layers - 1
    else:
        layer = parse_node(target).layer
        assert layer is not None
        last_head_layer, last_feature_layer = layer, layer - 1
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for hook, name in (("hook_embed", "embed"), ("hook_pos_embed", "pos_embed")):
            if hook in cache:
                out[f"{name}@end"] = (cache[hook] * read).sum(-1)
        for m in range(last_head_layer + 1):
            z = cache[f"blocks.{m}.attn.hook_z"]  # [n, n_heads, d_head]
            per_head = torch.einsum("nhe,hed->nhd", z, model.W_O[m])
            for h, values in enumerate((per_head * read[:, None]).sum(-1).T):
                out[f"L{m}H{h}@end"] = values
        for m in sorted(layer for layer in transcoders if layer <= last_feature_layer):
            acts = cache[f"blocks.{m}.hook_mlp_out.hook_sae_acts_post"]  # [n, d_sae]
            per_feature = acts * (read @ transcoders[m].W_dec.T.to(read.dtype))
            for f, values in enumerate(per_feature.T):
                out[f"MLP{m}.tc[{f}]@end"] = values
    return {name: values.float().cpu() for name, values in out.items()}


def greedy_feature_search(
    model: Any, prompts: PromptSet, target: str = "logits", k: int = 3, depth: int = 2
) -> list[SearchPath]:
    """Greedy top-``k`` direct-attribution search from ``target`` back toward the embeddings.

    ``model`` has transcoders spliced in (``features.splice``); ``prompts`` are the clean prompts
    (their ``desired`` / ``undesired`` define the logit difference). Each of at most ``depth`` hops
    keeps the ``k`` upstream components with the largest mean |direct contribution|; kept
    transcoder features are expanded further, everything else ends its path. Paths are returned
    depth-first, strongest first.
    """
    if k < 1 or depth < 1:
        raise CircuitSpecError(f"feature search needs k >= 1 and depth >= 1 (got k={k}, depth={depth})")
    target = _check_target(model, target)
    cache = _clean_cache(model, prompts, sorted(_transcoders(model)))
    root = "logits" if target == "logits" else f"{target}@end"

    def expand(
        node: str,
        suffix: tuple[str, ...],
        contribs: tuple[float, ...],
        scores: tuple[float, ...],
        hops_left: int,
    ) -> list[SearchPath]:
        bare = node.removesuffix("@end")
        candidates = direct_contributions(model, prompts, bare, _cache=cache) if hops_left else {}
        if not candidates:
            return [SearchPath((node, *suffix), contribs, scores)] if suffix else []
        ranked = sorted(candidates.items(), key=lambda item: -float(item[1].abs().mean()))[:k]
        paths: list[SearchPath] = []
        for name, values in ranked:
            chain = (node, *suffix)
            step_contribs = (float(values.mean()), *contribs)
            step_scores = (float(values.abs().mean()), *scores)
            if parse_node(name).kind is NodeKind.TRANSCODER_FEATURE and hops_left > 1:
                paths += expand(name, chain, step_contribs, step_scores, hops_left - 1)
            else:
                paths.append(SearchPath((name, *chain), step_contribs, step_scores))
        return paths

    return expand(root, (), (), (), depth)


def to_yaml_snippet(paths: list[SearchPath], prefix: str = "search") -> str:
    """A ``paths:`` block (``<prefix>_1: "A -> B -> logits"`` ...) to paste into a hypothesis file."""
    lines = ["paths:"]
    for i, path in enumerate(paths, start=1):
        lines.append(
            f"  # mean direct contributions per hop: {', '.join(f'{c:+.4g}' for c in path.contributions)}"
        )
        lines.append(f'  {prefix}_{i}: "{path.chain}"')
    return "\n".join(lines) + "\n"
