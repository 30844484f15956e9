"""Collapse a compiled circuit into its component graph: one node per model component.

The compiled graph's nodes are node *references* (``L0H0``, ``L0H0@end``, ``L0H0.v``,
``L0H0.v@s_con`` are four nodes of one head). For drawing, every reference is mapped to the model
component it lives in (a head, a shared key/value head, an MLP, an embedding, a residual site, the
logits), keeping the roles and groups of its references; an edge keeps its receiving channel and
the role it acts at as labels. Which component a reference belongs to is read from the parsed
:class:`~circuitspec.spec.nodes.NodeRef` (kind, layer, head; an SAE feature's site goes back
through ``parse_node``), never by matching its text, and where it sits in the forward pass from
``spec.geometry``. Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import networkx as nx

from circuitspec.spec.geometry import node_order
from circuitspec.spec.nodes import NodeKind, NodeRef, parse_node

from .circuit import CircuitGraph

__all__ = ["ComponentKind", "circuit_dict", "component_graph", "component_of", "edge_label", "merged_edges"]

ComponentKind = str  # "embed" | "pos_embed" | "head" | "kv_head" | "mlp" | "resid_pre" | ... | "logits"

_HEAD_KINDS = (NodeKind.HEAD, NodeKind.HEAD_Q, NodeKind.HEAD_K, NodeKind.HEAD_V, NodeKind.HEAD_PATTERN)
_MLP_KINDS = (NodeKind.MLP, NodeKind.MLP_IN, NodeKind.MLP_NEURON, NodeKind.TRANSCODER_FEATURE)
_SITE_KINDS = (NodeKind.EMBED, NodeKind.POS_EMBED, NodeKind.LOGITS)
_RESID_KINDS = (NodeKind.RESID_PRE, NodeKind.RESID_MID, NodeKind.RESID_POST)

#: the kind whose place in the forward pass stands for a component's (its column in a drawing)
_PLACE_KIND = {"head": NodeKind.HEAD, "kv_head": NodeKind.HEAD, "mlp": NodeKind.MLP}


def component_of(node: NodeRef) -> tuple[str, ComponentKind]:
    """The component a node reference lives in: ``(id, kind)``, e.g. ``L0H0.v@s_con`` → ``("L0H0", "head")``.

    Neurons and transcoder features belong to their MLP, an SAE feature to the site its SAE reads
    (``resid_pre5.sae[3]`` → ``resid_pre5``; ``mlp_out3.sae[3]`` → ``MLP3``).
    """
    if node.kind in _HEAD_KINDS:
        return f"L{node.layer}H{node.head}", "head"
    if node.is_kv:
        return f"L{node.layer}KV{node.kv_head}", "kv_head"
    if node.kind in _MLP_KINDS:
        return f"MLP{node.layer}", "mlp"
    if node.kind in _SITE_KINDS:
        return node.kind.value, node.kind.value
    if node.kind in _RESID_KINDS:
        return f"{node.kind.value}{node.layer}", node.kind.value
    if node.kind is NodeKind.SAE_FEATURE:
        site = (node.dictionary or "").rsplit(".", 1)[0]
        if site.startswith("mlp_out"):
            site = f"MLP{node.layer}"
        return component_of(parse_node(site))
    raise ValueError(f"'{node.text}': no component for node kind {node.kind.value}")


def _order(component: str, kind: ComponentKind, layer: int | None) -> float:
    """Where the component runs (a head's or an MLP's output), for layout and sorting."""
    place = _PLACE_KIND.get(kind)
    ref = parse_node(component) if place is None else NodeRef(component, place, layer=layer)
    return node_order(ref)


def _append(values: list[Any], items: Iterable[Any]) -> None:
    for item in items:
        if item is not None and item not in values:
            values.append(item)


def _add_reference(graph: nx.MultiDiGraph, ref: NodeRef, groups: list[str]) -> str:
    """Add (or extend) the component of ``ref``; returns its id."""
    component, kind = component_of(ref)
    if component not in graph:
        graph.add_node(
            component,
            kind=kind,
            layer=ref.layer,
            order=_order(component, kind, ref.layer),
            index=ref.head if ref.head is not None else ref.kv_head,
            roles=[],
            groups=[],
            members=[],
        )
    data = graph.nodes[component]
    _append(data["roles"], [ref.role])
    _append(data["groups"], groups)
    _append(data["members"], [ref.text])
    return component


def component_graph(graph: CircuitGraph) -> nx.MultiDiGraph:
    """The component graph of a compiled circuit.

    Nodes are component ids with ``kind``, ``layer``, ``order`` (place in the forward pass),
    ``roles``, ``groups`` and ``members`` (the node references collapsed into it). Edges are keyed by
    ``(channel, role)`` and carry ``channel`` (how the target receives: ``q``/``k``/``v``/``mlp_in``/
    ``resid``/``logits``), ``role`` (the receiver's role, else the sender's: where the edge acts)
    and ``paths``; two references of one component sending along the same channel and role merge.
    """
    out = nx.MultiDiGraph(name=graph.hypothesis.name)
    refs: dict[str, NodeRef] = {}
    for text, data in graph.digraph.nodes(data=True):
        ref = data["ref"]
        refs[text] = ref
        _add_reference(out, ref, list(data.get("groups") or []))
    for sender, receiver, data in graph.digraph.edges(data=True):
        source, _ = component_of(refs[sender])
        target, _ = component_of(refs[receiver])
        channel = str(data.get("channel") or "")
        role = refs[receiver].role or refs[sender].role
        key = (channel, role)
        if not out.has_edge(source, target, key):
            out.add_edge(source, target, key=key, channel=channel, role=role, paths=[])
        _append(out.edges[source, target, key]["paths"], data.get("paths") or [])
    return out


def _node_sort_key(item: tuple[str, dict[str, Any]]) -> tuple[float, str, int, str]:
    name, data = item
    index = data.get("index")
    return (data["order"], data["kind"], -1 if index is None else int(index), name)


def circuit_dict(graph: CircuitGraph | nx.MultiDiGraph) -> dict[str, Any]:
    """The component graph as JSON-able data, nodes in forward-pass order::

    {"name", "nodes": [{"id", "layer", "kind", "order", "roles", "groups", "members"}],
     "edges": [{"source", "target", "channel", "role", "paths"}]}

    ``order`` is null for the logits (they run last; JSON has no infinity).
    """
    components = graph if isinstance(graph, nx.MultiDiGraph) else component_graph(graph)
    nodes = sorted(components.nodes(data=True), key=_node_sort_key)
    position = {name: i for i, (name, _) in enumerate(nodes)}
    edges = sorted(
        components.edges(data=True),
        key=lambda e: (position[e[0]], position[e[1]], e[2]["channel"], e[2]["role"] or ""),
    )
    return {
        "name": str(components.graph.get("name", "")),
        "nodes": [
            {
                "id": name,
                "layer": data["layer"],
                "kind": data["kind"],
                "order": data["order"] if data["order"] != float("inf") else None,
                "roles": list(data["roles"]),
                "groups": list(data["groups"]),
                "members": list(data["members"]),
            }
            for name, data in nodes
        ],
        "edges": [
            {"source": a, "target": b, "channel": d["channel"], "role": d["role"], "paths": list(d["paths"])}
            for a, b, d in edges
        ],
    }


def edge_label(channel: str, role: str | None) -> str:
    """One edge's label: ``v@s_con``, or the channel alone when it acts at every position."""
    return f"{channel}@{role}" if role else channel


def merged_edges(circuit: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(source, target, label)`` per connected pair of a :func:`circuit_dict`, parallel edges merged
    into one label (``k@end, v@s_con``), in the dict's edge order."""
    labels: dict[tuple[str, str], list[str]] = {}
    for edge in circuit.get("edges", []):
        pair = (str(edge["source"]), str(edge["target"]))
        _append(labels.setdefault(pair, []), [edge_label(str(edge.get("channel") or ""), edge.get("role"))])
    return [(a, b, ", ".join(texts)) for (a, b), texts in labels.items()]
