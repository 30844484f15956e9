"""DOT and Mermaid export: every node drawn exactly once, groups as clusters, channels as labels."""

from __future__ import annotations

import re
from pathlib import Path

from circuitspec.graph.compile import compile_hypothesis
from circuitspec.graph.export import render, to_dot, to_mermaid
from circuitspec.spec.loader import load_hypothesis

FIXTURES = Path(__file__).parent / "fixtures" / "spec"


def _graph():
    return compile_hypothesis(load_hypothesis(FIXTURES / "all_forms.yaml"))


def test_dot_draws_each_node_once_and_labels_edges_with_channels() -> None:
    graph = _graph()
    dot = to_dot(graph)
    declared = re.findall(r'^\s+("[^"]+");$', dot, flags=re.M)
    assert sorted(declared) == sorted(f'"{n}"' for n in graph.digraph.nodes)  # once each, groups included
    edges = re.findall(r'^\s+"([^"]+)" -> "([^"]+)" \[label="([^"]+)"\];$', dot, flags=re.M)
    assert sorted(edges) == sorted((a, b, d["channel"]) for a, b, d in graph.digraph.edges(data=True))
    clusters = re.findall(r'subgraph cluster_\d+ \{\n    label="([^"]+)";', dot)
    assert set(clusters) == {"embeddings", "head_forms", "mlp_forms", "resid_forms", "features", "nested"}
    assert render(graph, "dot") == dot


def test_mermaid_ids_are_safe_and_labels_keep_the_names() -> None:
    graph = _graph()
    text = to_mermaid(graph)
    labels = dict(re.findall(r"^\s+(n\d+)\[\"([^\"]+)\"\]$", text, flags=re.M))
    assert sorted(labels.values()) == sorted(graph.digraph.nodes)
    by_name = {v: k for k, v in labels.items()}
    assert f"{by_name['MLP0.tc[24575]@s_con']}" in text  # brackets only inside quoted labels
    assert f"  {by_name['L8H1.q@end']} -->|logits| {by_name['logits']}" in text.splitlines()
    assert render(graph, "mermaid") == text
