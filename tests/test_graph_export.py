"""DOT and Mermaid export: one box per model component, groups as clusters, channel@role labels."""

from __future__ import annotations

import re
from pathlib import Path

from circuitspec.graph.compile import compile_hypothesis
from circuitspec.graph.export import render, to_dot, to_mermaid
from circuitspec.spec.loader import load_hypothesis
from tests.helpers.components_ref import component_name, expected_edges

FIXTURES = Path(__file__).parent / "fixtures" / "spec"


def _graph():
    return compile_hypothesis(load_hypothesis(FIXTURES / "all_forms.yaml"))


def _sorted_label(label: str) -> str:
    return ", ".join(sorted(label.split(", ")))


def test_dot_draws_each_component_once_and_labels_edges_with_channel_and_role() -> None:
    graph = _graph()
    dot = to_dot(graph)
    declared = re.findall(r'^\s+"([^"]+)" \[tooltip="[^"]*"\];$', dot, flags=re.M)
    components = {component_name(n) for n in graph.digraph.nodes}
    assert sorted(declared) == sorted(components)  # once each, groups included
    assert {"L1H2", "L1KV0", "L1KV3", "MLP0", "MLP3", "resid_pre5"} <= components  # .q/.v/.tc/.sae collapsed
    assert not any("@" in name or "." in name for name in declared)
    edges = re.findall(r'^\s+"([^"]+)" -> "([^"]+)" \[label="([^"]+)"\];$', dot, flags=re.M)
    assert {(a, b, _sorted_label(label)) for a, b, label in edges} == expected_edges(graph.digraph)
    assert len(edges) == len(expected_edges(graph.digraph))  # parallel edges merged
    assert ("embed", "L1H2", "k@s_con") in edges and ("L8H1", "logits", "logits@end") in edges
    clusters = re.findall(r'subgraph cluster_\d+ \{\n    label="([^"]+)";', dot)
    assert set(clusters) == {"embeddings", "head_forms", "mlp_forms", "resid_forms", "features", "nested"}
    assert '"L1H2" [tooltip="L1H2: roles s_con; groups head_forms; nodes L1H2, L1H2.q,' in dot
    assert render(graph, "dot") == dot


def test_mermaid_ids_are_safe_and_labels_are_the_components() -> None:
    graph = _graph()
    text = to_mermaid(graph)
    labels = dict(re.findall(r"^\s+(n\d+)\[\"([^\"]+)\"\]$", text, flags=re.M))
    assert sorted(labels.values()) == sorted({component_name(n) for n in graph.digraph.nodes})
    by_name = {v: k for k, v in labels.items()}
    assert f'  {by_name["L8H1"]} -->|"logits@end"| {by_name["logits"]}' in text.splitlines()
    edges = re.findall(r"^  (n\d+) -->\|\"([^\"]+)\"\| (n\d+)$", text, flags=re.M)
    assert {(labels[a], labels[b], _sorted_label(label)) for a, label, b in edges} == expected_edges(
        graph.digraph
    )
    assert render(graph, "mermaid") == text
