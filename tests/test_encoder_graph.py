"""Encoders attend both ways in position: a backwards-in-position edge is valid, backwards in layer is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuitspec.errors import CircuitSpecError
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.graph.shapes import shape_from_config
from circuitspec.spec.loader import load_hypothesis

_YAML = """\
version: 1
name: encoder_edges
model:
  path: bert_dir
  shape: {{n_layers: 6, n_heads: 12, d_model: 384, d_mlp: 1536, causal: {causal}}}
data:
  rows: [{{colour: red, noun: car}}]
  templates:
    - id: garden
      text: "The {{noun}} in the garden is {{colour}}."
      desired: "{{colour}}"
      undesired: "{{noun}}"
      reference: "What colour is the {{noun}}?"
paths:
  reads_colour: "{path}"
claims:
  - id: reads
    kind: ablation
    targets: [L5H1]
    metric: distance_change
    expect: mean < 0
"""


def _compile(tmp_path: Path, path: str, causal: bool = False):
    file = tmp_path / "h.yaml"
    file.write_text(_YAML.format(path=path, causal=str(causal).lower()), encoding="utf-8")
    return compile_hypothesis(load_hypothesis(file))


def test_backwards_in_position_edge_is_valid_for_an_encoder(tmp_path: Path) -> None:
    # 'colour' comes after 'noun' in the template: the noun's query reads the later colour word
    graph = _compile(tmp_path, "L1H8@colour -> L5H1.q@noun")
    assert graph.shape.causal is False


def test_backwards_in_position_edge_is_invalid_for_a_causal_model(tmp_path: Path) -> None:
    with pytest.raises(CircuitSpecError, match="backwards in token position"):
        _compile(tmp_path, "L1H8@colour -> L5H1.q@noun", causal=True)


def test_backwards_in_layer_edge_is_invalid_for_an_encoder(tmp_path: Path) -> None:
    with pytest.raises(CircuitSpecError, match="goes backwards"):
        _compile(tmp_path, "L5H1@noun -> L1H8.q@colour")


def test_bert_config_gives_a_non_causal_shape() -> None:
    config = {
        "model_type": "bert",
        "architectures": ["BertModel"],
        "num_hidden_layers": 6,
        "num_attention_heads": 12,
        "hidden_size": 384,
        "intermediate_size": 1536,
        "vocab_size": 30522,
        "max_position_embeddings": 512,
    }
    shape = shape_from_config(config)
    assert (shape.n_layers, shape.n_heads, shape.d_model, shape.d_mlp, shape.causal) == (
        6,
        12,
        384,
        1536,
        False,
    )


def test_missing_model_package_is_model_not_available(tmp_path: Path) -> None:
    """So the pytest plugin skips a hypothesis whose model package is not installed, with the reason."""
    from circuitspec.errors import ModelNotAvailable

    file = tmp_path / "h.yaml"
    text = _YAML.format(path="L1H8@colour -> L5H1.q@noun", causal="false")
    text = text.replace(
        "  path: bert_dir\n  shape: {n_layers: 6, n_heads: 12, d_model: 384, d_mlp: 1536, causal: false}\n",
        "  package: circuitspec-no-such-model-package\n",
    )
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ModelNotAvailable, match="not installed"):
        compile_hypothesis(load_hypothesis(file))
