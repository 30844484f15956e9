"""Shape checks of single nodes and dictionaries: plain functions returning an error text or None."""

from __future__ import annotations

from typing import Any

from circuitspec.spec.geometry import query_heads
from circuitspec.spec.nodes import NodeKind, NodeRef, parse_node
from circuitspec.spec.schema import ModelShape

__all__ = ["article", "dictionary_error", "node_error"]

_MLP_KINDS = (NodeKind.MLP, NodeKind.MLP_IN, NodeKind.MLP_NEURON)


def article(number: int) -> str:
    """The article before a number read aloud: 'an 8-layer', 'an 11-layer', 'a 12-layer'."""
    digits = str(number)
    eleven_or_eighteen = digits.startswith(("11", "18")) and len(digits) % 3 == 2
    return "an" if digits.startswith("8") or eleven_or_eighteen else "a"


def _layer_range(shape: ModelShape) -> str:
    n = shape.n_layers
    return f"{article(n)} {n}-layer model (valid: 0–{n - 1})"


def node_error(node: NodeRef, shape: ModelShape, dictionaries: dict[str, Any]) -> str | None:
    """Why ``node`` does not fit ``shape`` and the declared dictionaries, or None."""
    if node.layer is not None and not 0 <= node.layer < shape.n_layers:
        return f"layer {node.layer} of '{node.text}' out of range for {_layer_range(shape)}"
    if node.head is not None and not 0 <= node.head < shape.n_heads:
        return (
            f"head {node.head} of '{node.text}' out of range for a model with {shape.n_heads} heads per "
            f"layer (valid: 0–{shape.n_heads - 1})"
        )
    if node.is_kv:
        try:
            query_heads(node, shape.n_heads, shape.n_kv_heads)
        except ValueError as exc:
            return str(exc)
    if node.kind in _MLP_KINDS and shape.d_mlp is None:
        return f"'{node.text}' names an MLP but this model has no MLPs (attention-only)"
    if node.kind is NodeKind.MLP_NEURON:
        assert shape.d_mlp is not None and node.index is not None
        if node.index >= shape.d_mlp:
            return (
                f"neuron {node.index} of '{node.text}' out of range for d_mlp = {shape.d_mlp} "
                f"(valid: 0–{shape.d_mlp - 1})"
            )
    if node.is_feature:
        return _feature_error(node, dictionaries)
    return None


def _feature_error(node: NodeRef, dictionaries: dict[str, Any]) -> str | None:
    name = node.dictionary
    if name not in dictionaries:
        declared = ", ".join(dictionaries) or "none"
        return (
            f"feature node '{node.text}' needs dictionary '{name}' declared under "
            f"model.dictionaries (declared: {declared})"
        )
    d_sae = dictionaries[name].d_sae
    assert node.index is not None
    if node.index >= d_sae:
        return (
            f"feature {node.index} of '{node.text}' out of range for dictionary '{name}' with "
            f"d_sae = {d_sae} (valid: 0–{d_sae - 1})"
        )
    return None


def dictionary_error(key: str, shape: ModelShape) -> str | None:
    """Why the dictionary declared at site ``key`` (``MLP0.tc``) does not fit ``shape``, or None."""
    node = parse_node(f"{key}[0]")
    if node.layer is not None and not 0 <= node.layer < shape.n_layers:
        return f"dictionary '{key}' sits at layer {node.layer}, out of range for {_layer_range(shape)}"
    return None
