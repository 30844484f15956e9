"""Draw a compiled hypothesis: Graphviz DOT and Mermaid text.

Groups from ``nodes:`` become clusters (DOT) / subgraphs (Mermaid); a node in several groups is
drawn in the first. Edge labels are the receiving channel (``q``/``k``/``v``/``mlp_in``/...).
"""

from __future__ import annotations

import json

from .circuit import CircuitGraph

__all__ = ["FORMATS", "render", "to_dot", "to_mermaid"]


def _groups(graph: CircuitGraph) -> tuple[dict[str, list[str]], list[str]]:
    """Group name → its nodes (each node in its first group), and the ungrouped nodes."""
    grouped: dict[str, list[str]] = {}
    loose: list[str] = []
    for node, data in graph.digraph.nodes(data=True):
        groups = data.get("groups") or []
        if groups:
            grouped.setdefault(groups[0], []).append(node)
        else:
            loose.append(node)
    return grouped, loose


def _quote(text: str) -> str:
    return json.dumps(text)  # a valid DOT double-quoted string for any text


def to_dot(graph: CircuitGraph) -> str:
    """Graphviz DOT: left-to-right, groups as ``cluster_*`` subgraphs, edges labelled by channel."""
    name = graph.hypothesis.name
    lines = [f"digraph {_quote(name)} {{", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    grouped, loose = _groups(graph)
    for index, (group, members) in enumerate(grouped.items()):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={_quote(group)};")
        lines += [f"    {_quote(m)};" for m in members]
        lines.append("  }")
    lines += [f"  {_quote(n)};" for n in loose]
    for sender, receiver, data in graph.digraph.edges(data=True):
        lines.append(
            f"  {_quote(sender)} -> {_quote(receiver)} [label={_quote(str(data.get('channel', '')))}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(graph: CircuitGraph) -> str:
    """Mermaid ``flowchart LR``; node ids are ``n0, n1, ...`` labelled with the node names."""
    ids = {node: f"n{i}" for i, node in enumerate(graph.digraph.nodes)}
    lines = ["flowchart LR"]
    grouped, loose = _groups(graph)
    for index, (group, members) in enumerate(grouped.items()):
        lines.append(f"  subgraph g{index} [{_mermaid_label(group)}]")
        lines += [f"    {ids[m]}[{_mermaid_label(m)}]" for m in members]
        lines.append("  end")
    lines += [f"  {ids[n]}[{_mermaid_label(n)}]" for n in loose]
    for sender, receiver, data in graph.digraph.edges(data=True):
        lines.append(f"  {ids[sender]} -->|{data.get('channel', '')}| {ids[receiver]}")
    return "\n".join(lines) + "\n"


FORMATS = {"dot": to_dot, "mermaid": to_mermaid}


def render(graph: CircuitGraph, fmt: str) -> str:
    """The graph in ``fmt`` (``dot`` or ``mermaid``)."""
    return FORMATS[fmt](graph)
