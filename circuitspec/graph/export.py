"""Draw a compiled hypothesis: Graphviz DOT and Mermaid text, one box per model component.

Both draw the component graph (``components.py``): ``L0H0``, ``L0H0@end`` and ``L0H0.v@s_con`` are
one box ``L0H0``. Groups from ``nodes:`` become clusters (DOT) / subgraphs (Mermaid); a component
in several groups is drawn in the first. An edge is labelled with how its target receives and
where (``v@s_con``, ``mlp_in@end``); parallel edges between two components are one labelled edge.
"""

from __future__ import annotations

import json
from typing import Any

from .circuit import CircuitGraph
from .components import circuit_dict, merged_edges

__all__ = ["FORMATS", "render", "to_dot", "to_mermaid"]


def _groups(circuit: dict[str, Any]) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Group name → its components (each in its first group), and the ungrouped components."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    loose: list[dict[str, Any]] = []
    for node in circuit["nodes"]:
        if node["groups"]:
            grouped.setdefault(node["groups"][0], []).append(node)
        else:
            loose.append(node)
    return grouped, loose


def _quote(text: str) -> str:
    return json.dumps(text)  # a valid DOT double-quoted string for any text


def _tooltip(node: dict[str, Any]) -> str:
    """What a component stands for: its roles, groups and the node names collapsed into it."""
    roles = ", ".join(node["roles"]) or "every position"
    groups = ", ".join(node["groups"]) or "none"
    return f"{node['id']}: roles {roles}; groups {groups}; nodes {', '.join(node['members'])}"


def _dot_node(node: dict[str, Any]) -> str:
    return f"{_quote(node['id'])} [tooltip={_quote(_tooltip(node))}];"


def to_dot(graph: CircuitGraph) -> str:
    """Graphviz DOT: left-to-right, groups as ``cluster_*`` subgraphs, edges labelled ``channel@role``."""
    circuit = circuit_dict(graph)
    lines = [
        f"digraph {_quote(graph.hypothesis.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica"];',
    ]
    grouped, loose = _groups(circuit)
    for index, (group, members) in enumerate(grouped.items()):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={_quote(group)};")
        lines += [f"    {_dot_node(m)}" for m in members]
        lines.append("  }")
    lines += [f"  {_dot_node(n)}" for n in loose]
    for source, target, label in merged_edges(circuit):
        lines.append(f"  {_quote(source)} -> {_quote(target)} [label={_quote(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(graph: CircuitGraph) -> str:
    """Mermaid ``flowchart LR``; node ids are ``n0, n1, ...`` labelled with the component names."""
    circuit = circuit_dict(graph)
    ids = {node["id"]: f"n{i}" for i, node in enumerate(circuit["nodes"])}
    lines = ["flowchart LR"]
    grouped, loose = _groups(circuit)
    for index, (group, members) in enumerate(grouped.items()):
        lines.append(f"  subgraph g{index} [{_mermaid_label(group)}]")
        lines += [f"    {ids[m['id']]}[{_mermaid_label(m['id'])}]" for m in members]
        lines.append("  end")
    lines += [f"  {ids[n['id']]}[{_mermaid_label(n['id'])}]" for n in loose]
    for source, target, label in merged_edges(circuit):
        lines.append(f"  {ids[source]} -->|{_mermaid_label(label)}| {ids[target]}")
    return "\n".join(lines) + "\n"


FORMATS = {"dot": to_dot, "mermaid": to_mermaid}


def render(graph: CircuitGraph, fmt: str) -> str:
    """The graph in ``fmt`` (``dot`` or ``mermaid``)."""
    return FORMATS[fmt](graph)
