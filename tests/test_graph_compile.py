"""Compiling hypotheses: every node/path/claim/expectation form, channels, groups, shapes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import networkx as nx
import pytest

from circuitspec.errors import CircuitSpecError
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.graph.shapes import KNOWN_SHAPES, shape_for, shape_from_config
from circuitspec.spec.loader import load_hypothesis
from circuitspec.spec.nodes import NodeKind
from circuitspec.spec.schema import CLAIM_KINDS, ModelShape, ModelSpec
from circuitspec.zoo import BUNDLED, BundledModel

FIXTURES = Path(__file__).parent / "fixtures" / "spec"
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def all_forms():
    return compile_hypothesis(load_hypothesis(FIXTURES / "all_forms.yaml"))


def test_every_node_form_becomes_a_graph_node(all_forms) -> None:
    kinds = {data["kind"] for _, data in all_forms.digraph.nodes(data=True)}
    assert kinds == {k.value for k in NodeKind}
    feature = all_forms.digraph.nodes["MLP0.tc[24575]@s_con"]
    assert (feature["layer"], feature["index"], feature["role"], feature["order"]) == (0, 24575, "s_con", 0.5)
    head_q = all_forms.digraph.nodes["L1H2.q"]
    assert (head_q["layer"], head_q["head"], head_q["kind"], head_q["groups"]) == (
        1,
        2,
        "head_q",
        ["head_forms"],
    )


def test_edges_carry_the_receiving_channel_and_path_names(all_forms) -> None:
    edges = {(a, b): (d["channel"], d["paths"]) for a, b, d in all_forms.digraph.edges(data=True)}
    assert edges == {
        ("embed@s_ori", "L1H2.k@s_con"): ("k", ["single"]),
        ("L1H2.k@s_con", "MLP3@s_con"): ("mlp_in", ["single"]),
        ("L7H5@s_con", "L8H1.q@end"): ("q", ["many"]),
        ("L8H1.q@end", "logits"): ("logits", ["many"]),
        ("resid_pre5@w_ori", "MLP6.post[7]@end"): ("mlp_in", ["many"]),
        ("L2H0@s_ori", "L5H5.v@end"): ("v", []),  # an edge written inline in a claim
    }
    assert nx.is_directed_acyclic_graph(all_forms.digraph)


def test_every_claim_kind_and_expectation_form_compiles(all_forms) -> None:
    from circuitspec.claims.registry import REGISTRY

    cross_model = {name for name, kind in REGISTRY.items() if kind.cross_model}  # test_compare_models.py
    assert {c.kind for c in all_forms.claims} | cross_model == set(CLAIM_KINDS)
    forms = {c.expectation.form for c in all_forms.claims}
    assert forms == {"compare", "trend", "equivalence"}
    assert {c.expectation.op for c in all_forms.claims if c.expectation.form == "compare"} == {
        ">",
        ">=",
        "<",
        "<=",
        "==",
    }


def test_groups_aliases_and_paths_expand_into_claim_targets(all_forms) -> None:
    names = lambda claim_id: [n.text for n in all_forms.targets(claim_id)]  # noqa: E731
    assert names("c_attr") == ["L7H5@s_con", "L9H7@end", "MLP3"]
    # `each: true` on a group: one claim per member
    each = [c.id for c in all_forms.claims if c.id.startswith("c_each")]
    members = ["resid_pre5", "resid_mid5", "resid_post11", "MLP3", "MLP3.in", "MLP3.post[3071]"]
    assert each == [f"c_each[{m}]" for m in members]
    assert [names(claim_id) for claim_id in each] == [[m] for m in members]
    assert [[n.text for n in chain] for chain in all_forms.chains("c_path")] == [
        ["embed@s_ori", "L1H2.k@s_con", "MLP3@s_con"],
    ]
    assert [[n.text for n in chain] for chain in all_forms.chains("c_edge")] == [["L2H0@s_ori", "L5H5.v@end"]]
    assert [(a.text, b.text) for a, b in all_forms.edges("c_scrub")] == [
        ("L7H5@s_con", "L8H1.q@end"),
        ("L8H1.q@end", "logits"),
    ]
    assert all_forms.digraph.nodes["L7H5@s_con"]["groups"] == ["nested"]  # via the alias inside 'nested'


def test_claim_templates_follow_ids_and_tags(all_forms) -> None:
    assert all_forms.templates("c_trend_down") == ["t1"]  # tag 'main'
    assert all_forms.templates("c_attr") == ["t1", "t2"]  # no data: every template


def test_encoders_skip_the_position_check_but_keep_layer_order(tmp_path: Path) -> None:
    base = (FIXTURES / "base.yaml").read_text()
    backwards_in_position = base.replace("MLP0@s_con -> L7H5.v@s_con", "MLP0@s_con -> L7H5.v@w_ori")
    path = tmp_path / "h.yaml"
    path.write_text(backwards_in_position)
    loaded = load_hypothesis(path)
    encoder = KNOWN_SHAPES["gpt2"].model_copy(update={"causal": False})
    with pytest.raises(CircuitSpecError, match="backwards in token position"):
        compile_hypothesis(loaded)
    graph = compile_hypothesis(loaded, shape=encoder)
    assert graph.digraph.has_edge("MLP0@s_con", "L7H5.v@w_ori")
    path.write_text(base.replace("MLP0@s_con -> L7H5.v@s_con", "MLP8@s_con -> L7H5.v@s_con"))
    with pytest.raises(CircuitSpecError, match=re.escape("goes backwards: 'L7H5.v@s_con' does not run")):
        compile_hypothesis(load_hypothesis(path), shape=encoder)


def test_an_explicit_smaller_shape_rejects_what_gpt2_accepts() -> None:
    loaded = load_hypothesis(FIXTURES / "base.yaml")
    tiny = ModelShape(n_layers=8, n_heads=8, d_model=64, d_mlp=256)
    with pytest.raises(CircuitSpecError) as info:
        compile_hypothesis(loaded, shape=tiny)
    assert "layer 10 of 'L10H1@w_ori' out of range for an 8-layer model (valid: 0–7)" in str(info.value)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("name", "layers", "heads", "d_model", "d_mlp"),
    [
        ("gpt2", 12, 12, 768, 3072),
        ("gpt2-small", 12, 12, 768, 3072),
        ("gpt2-xl", 48, 25, 1600, 6400),
        ("distilgpt2", 6, 12, 768, 3072),
        ("pythia-70m", 6, 8, 512, 2048),
        ("EleutherAI/pythia-1b-deduped", 16, 8, 2048, 8192),
        ("attn-only-2l", 2, 8, 512, None),
    ],
)
def test_known_model_names(name: str, layers: int, heads: int, d_model: int, d_mlp: int | None) -> None:
    shape = shape_for(ModelSpec(name=name))
    assert (shape.n_layers, shape.n_heads, shape.d_model, shape.d_mlp) == (layers, heads, d_model, d_mlp)
    assert shape.causal


def test_explicit_shape_wins_and_unknown_names_ask_for_one() -> None:
    explicit = ModelShape(n_layers=2, n_heads=3, d_model=12)
    assert shape_for(ModelSpec(name="gpt2", shape=explicit)) == explicit
    with pytest.raises(CircuitSpecError, match=r"add 'model.shape: \{n_layers"):
        shape_for(ModelSpec(name="not-a-model"))


def test_bundled_models_come_from_the_zoo_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    shape = ModelShape(n_layers=1, n_heads=2, d_model=8, d_mlp=16)
    monkeypatch.setitem(BUNDLED, "test-toy", BundledModel("test-toy", shape, load=lambda _: (None, None)))
    assert shape_for(ModelSpec(bundled="test-toy")) == shape
    with pytest.raises(CircuitSpecError, match=r"unknown bundled model 'nope' \(valid: .*test-toy"):
        shape_for(ModelSpec(bundled="nope"))


def test_local_directories_read_config_json(tmp_path: Path) -> None:
    gpt2_like = {
        "model_type": "gpt2",
        "n_layer": 4,
        "n_head": 4,
        "n_embd": 64,
        "n_inner": None,
        "vocab_size": 99,
    }
    (tmp_path / "gpt").mkdir()
    (tmp_path / "gpt" / "config.json").write_text(json.dumps(gpt2_like))
    shape = shape_for(ModelSpec(path="gpt"), base_dir=tmp_path)
    assert (shape.n_layers, shape.n_heads, shape.d_model, shape.d_mlp, shape.d_vocab, shape.causal) == (
        4,
        4,
        64,
        256,
        99,
        True,
    )
    bert = {
        "model_type": "bert",
        "num_hidden_layers": 6,
        "num_attention_heads": 12,
        "hidden_size": 384,
        "intermediate_size": 1536,
        "max_position_embeddings": 512,
    }
    encoder = shape_from_config(bert)
    assert (encoder.n_layers, encoder.d_mlp, encoder.n_ctx, encoder.causal) == (6, 1536, 512, False)
    with pytest.raises(CircuitSpecError, match="cannot read a model shape from"):
        shape_for(ModelSpec(path="missing"), base_dir=tmp_path)


def test_shape_errors_are_located_at_the_model(tmp_path: Path) -> None:
    text = (FIXTURES / "base.yaml").read_text().replace("  name: gpt2\n", "  path: nowhere\n")
    path = tmp_path / "h.yaml"
    path.write_text(text)
    with pytest.raises(CircuitSpecError) as info:
        compile_hypothesis(load_hypothesis(path))
    assert str(info.value).startswith(f"{path}:4:3: cannot read a model shape")


def test_gpt2_sentiment_compiles_against_gpt2_small() -> None:
    graph = compile_hypothesis(load_hypothesis(ROOT / "hypotheses" / "gpt2_sentiment.yaml"))
    assert graph.shape == KNOWN_SHAPES["gpt2"]
    assert [(a.text, b.text) for a, b in graph.edges("transformation_path")] == [
        ("MLP0@s_con", "L7H5.v@s_con"),
        ("L7H5.v@s_con", "MLP9@end"),
    ]
    assert [n.text for n in graph.targets("negate_l10h1")] == ["L10H1.v@w_ori"]
    assert graph.templates("label_mover_attention") == [t.id for t in graph.hypothesis.data.templates]
    assert graph.templates("neg_transform_heads[L7H5]") == [
        "neg_minimal",
        "neg_contextual",
        "neg_instructional",
    ]
    assert {c.kind for c in graph.claims} >= {
        "attribution",
        "attention",
        "path_patching",
        "scaling",
        "logit_lens",
    }
    combined = graph.claim("combined_modification")
    assert combined.interaction and combined.signs == {"L10H1.v@w_ori": -1}
    amplify = graph.claim("amplify_l7h5")
    assert amplify.alphas == [2.0**k for k in range(11)]
    assert graph.claim("negate_l10h1").alphas == [-(2.0**k) for k in range(11)]
