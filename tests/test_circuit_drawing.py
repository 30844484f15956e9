"""The circuit drawn per model component: component graph, its JSON form, DOT / Mermaid boxes, the SVG.

Checked on the compiled graphs of the two bundled sentiment hypotheses (no model runs: SmolLM2 gets
its shape written out) against ``tests/helpers/components_ref.py``, which maps node names by text.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from circuitspec.graph.compile import compile_hypothesis
from circuitspec.graph.components import circuit_dict, component_graph, merged_edges
from circuitspec.graph.export import to_dot, to_mermaid
from circuitspec.reports.circuit_svg import circuit_svg
from circuitspec.reports.json_report import render_json
from circuitspec.reports.model import build_report_input
from circuitspec.spec.loader import load_hypothesis
from circuitspec.spec.schema import ModelShape
from tests.helpers.components_ref import component_name, expected_edges, role_of

ROOT = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"
# SmolLM2-135M's shape (tests/test_models_smollm2.py reads it from the GGUF header when installed)
SMOLLM2 = ModelShape(n_layers=30, n_heads=9, d_model=576, d_mlp=1536, d_vocab=49152, n_ctx=2048, n_kv_heads=3)
HYPOTHESES = {"toy_sentiment": None, "smollm2_sentiment": SMOLLM2}
_CACHE: dict[str, Any] = {}


def _graph(name: str) -> Any:
    if name not in _CACHE:
        loaded = load_hypothesis(ROOT / "hypotheses" / f"{name}.yaml")
        _CACHE[name] = compile_hypothesis(loaded, HYPOTHESES[name])
    return _CACHE[name]


def _svg(name: str) -> str:
    key = f"{name}.svg"
    if key not in _CACHE:
        _CACHE[key] = circuit_svg(circuit_dict(_graph(name)))
    return str(_CACHE[key])


def _order(node: dict[str, Any]) -> float:
    return float("inf") if node["order"] is None else float(node["order"])


def _sorted_label(label: str) -> str:
    return ", ".join(sorted(label.split(", ")))


@pytest.mark.parametrize("name", HYPOTHESES)
def test_one_component_per_head_and_mlp_with_its_roles_groups_and_members(name: str) -> None:
    graph = _graph(name)
    circuit = circuit_dict(graph)
    ids = [node["id"] for node in circuit["nodes"]]
    assert len(ids) == len(set(ids)) == len({component_name(n) for n in graph.digraph.nodes})
    assert set(ids) == {component_name(n) for n in graph.digraph.nodes}
    assert not any("@" in i or "." in i for i in ids)  # no L0H0.v@s_con duplicates
    for node in circuit["nodes"]:
        members = {n for n in graph.digraph.nodes if component_name(n) == node["id"]}
        assert set(node["members"]) == members
        assert set(node["roles"]) == {role_of(m) for m in members} - {None}
        groups = {g for m in members for g in graph.digraph.nodes[m]["groups"]}
        assert set(node["groups"]) == groups
    orders = [_order(node) for node in circuit["nodes"]]
    assert orders == sorted(orders) and ids[-1] == "logits"  # forward-pass order, logits last
    spec_groups = {k for k, v in graph.hypothesis.nodes.items() if not isinstance(v, str)}
    assert {g for node in circuit["nodes"] for g in node["groups"]} == spec_groups
    assert json.loads(json.dumps(circuit)) == circuit  # JSON-able as it is


def test_toy_heads_collapse_and_keep_their_roles() -> None:
    nodes = {n["id"]: n for n in circuit_dict(_graph("toy_sentiment"))["nodes"]}
    assert set(nodes["L0H0"]["members"]) == {"L0H0", "L0H0@end", "L0H0.v", "L0H0.v@s_con"}
    assert sorted(nodes["L0H0"]["roles"]) == ["end", "s_con"]
    assert (nodes["L0H0"]["layer"], nodes["L0H0"]["kind"]) == (0, "head")
    assert nodes["MLP1"]["kind"] == "mlp" and "MLP1.tc[88]" in nodes["MLP1"]["members"]  # features: their MLP
    assert nodes["MLP1"]["groups"] == ["answer_features", "circuit"]
    assert nodes["L0H1"]["groups"] == ["word_carriers", "circuit"]


@pytest.mark.parametrize("name", HYPOTHESES)
def test_edges_carry_channel_and_role_and_parallel_ones_merge(name: str) -> None:
    graph = _graph(name)
    circuit = circuit_dict(graph)
    channels = {"q", "k", "v", "mlp_in", "resid", "logits"}
    assert circuit["edges"] and all(edge["channel"] in channels for edge in circuit["edges"])
    merged = merged_edges(circuit)
    assert {(a, b, _sorted_label(label)) for a, b, label in merged} == expected_edges(graph.digraph)
    assert len({(a, b) for a, b, _ in merged}) == len(merged)
    multi = component_graph(graph)
    assert multi.number_of_edges() == len(circuit["edges"])


def test_label_paths_read_as_written() -> None:
    toy = {(e["source"], e["target"]): e for e in circuit_dict(_graph("toy_sentiment"))["edges"]}
    assert (toy["embed", "L0H0"]["channel"], toy["embed", "L0H0"]["role"]) == ("v", "s_con")
    assert (toy["embed", "L0H3"]["channel"], toy["embed", "L0H3"]["role"]) == ("k", "s_con")
    assert toy["embed", "L0H0"]["paths"] == ["label_into_value"]
    smol = {(a, b): label for a, b, label in merged_edges(circuit_dict(_graph("smollm2_sentiment")))}
    assert smol["resid_pre21", "L21H1"] == "v@s_con" and smol["L21H1", "MLP22"] == "mlp_in@end"
    assert smol["MLP22", "logits"] == "logits@end"


@pytest.mark.parametrize("name", HYPOTHESES)
def test_dot_and_mermaid_draw_one_box_per_component(name: str) -> None:
    graph = _graph(name)
    ids = [n["id"] for n in circuit_dict(graph)["nodes"]]
    dot_boxes = re.findall(r'^\s+"([^"]+)" \[tooltip=', to_dot(graph), flags=re.M)
    assert sorted(dot_boxes) == sorted(ids)
    mermaid_boxes = re.findall(r'^\s+n\d+\["([^"]+)"\]$', to_mermaid(graph), flags=re.M)
    assert sorted(mermaid_boxes) == sorted(ids)


def _texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(f"{SVG}text")]


@pytest.mark.parametrize("name", HYPOTHESES)
def test_svg_is_self_contained_scalable_and_titles_each_component(name: str) -> None:
    svg = _svg(name)
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == f"{SVG}svg" and svg.startswith("<svg ")
    assert re.fullmatch(r"0 0 [\d.]+ [\d.]+", root.get("viewBox", "")) and root.get("width") == "100%"
    assert root.get("height") is None and "height:auto" in root.get("style", "")
    assert not [el for el in root.iter() if el.tag.lower().endswith(("script", "foreignobject", "image"))]
    assert "<script" not in svg.lower() and "@import" not in svg and "@font-face" not in svg
    assert re.findall(r"https?://[^\s\"'<>)]+", svg) == ["http://www.w3.org/2000/svg"]  # the xmlns only
    circuit = circuit_dict(_graph(name))
    titles = list(root.iter(f"{SVG}title"))
    assert len(titles) == len(circuit["nodes"])
    assert [t.text.split("\n")[0] for t in titles if t.text] == [n["id"] for n in circuit["nodes"]]
    for title, node in zip(titles, circuit["nodes"], strict=True):
        assert f"groups: {', '.join(node['groups']) or 'none'}" in (title.text or "")
        assert f"nodes: {', '.join(node['members'])}" in (title.text or "")
    texts = _texts(root)
    assert all(n["id"] in texts for n in circuit["nodes"])  # every box labelled
    groups = {g for n in circuit["nodes"] for g in n["groups"]}
    assert groups and groups <= set(texts)  # the legend
    for _, _, label in merged_edges(circuit):
        assert label in texts


def test_svg_ids_are_prefixed_and_every_reference_resolves() -> None:
    svg = _svg("toy_sentiment")
    root = ET.fromstring(svg)
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert all(str(i).startswith("circuit-") for i in ids) and len(ids) == len(set(ids))
    for ref in re.findall(r"url\(#([^)]+)\)", svg) + re.findall(r'href="#([^"]+)"', svg):
        assert ref in ids
    texts = _texts(root)
    assert "v@s_con" in texts and "k@s_con" in texts and "@end @s_con" in texts  # L0H0's roles


def test_svg_of_nothing_is_none() -> None:
    assert (
        circuit_svg(None) is None
        and circuit_svg({}) is None
        and circuit_svg({"nodes": [], "edges": []}) is None
    )


def test_report_input_carries_the_circuit_into_report_json() -> None:
    graph = _graph("toy_sentiment")
    verification = SimpleNamespace(
        hypothesis=SimpleNamespace(spec=graph.hypothesis, path="", sha256="0" * 64), graph=graph,
        model_identity={}, measurements={}, outcomes=[], correction="holm", seed=0, seconds=1.0,
    )  # fmt: skip
    report_input = build_report_input(verification)
    assert report_input.circuit == circuit_dict(graph)
    assert json.loads(render_json(report_input))["circuit"] == json.loads(json.dumps(circuit_dict(graph)))
    broken = SimpleNamespace(**{**vars(verification), "graph": SimpleNamespace(claims=[], hypothesis=None)})
    report_input = build_report_input(broken)  # a graph the components cannot read loses the drawing only
    assert report_input.circuit is None and json.loads(render_json(report_input))["circuit"] is None
