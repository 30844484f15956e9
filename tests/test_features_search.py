"""Greedy feature-circuit search on the toy model with its bundled transcoders.

The reference never uses the search module or sae-lens' encoder: on the *plain* HookedTransformer,
one prompt at a time (no padding), it reads ``ln2.hook_normalized`` and computes the transcoder
activations by hand (``ReLU(x W_enc + b_enc)``), then each component's direct contribution to the
target through the LayerNorm with the clean scale: ``(w ⊙ d − mean) / scale``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from ruamel.yaml import YAML

from circuitspec.spec.geometry import node_order

torch.set_num_threads(1)
TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"
ATOL = 1e-4
K, DEPTH, N = 3, 2, 8


@pytest.fixture(scope="module")
def toy():
    from circuitspec.engine.models import load_model
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.features.search import greedy_feature_search
    from circuitspec.pipeline import load_hypothesis_model
    from circuitspec.spec.loader import load_hypothesis, load_rows
    from circuitspec.spec.schema import DictionarySpec, ModelSpec

    warnings.filterwarnings("ignore", message=".*deprecated.*")
    hypothesis = load_hypothesis(TOY)
    bundled = {
        key: DictionarySpec(kind="transcoder", d_sae=128, format="bundled") for key in ("MLP0.tc", "MLP1.tc")
    }
    with_features = ModelSpec(bundled="toy_sentiment", dictionaries=bundled)
    spliced = load_hypothesis_model(with_features, hypothesis.base_dir)
    plain = load_model(ModelSpec(bundled="toy_sentiment"), hypothesis.base_dir).model
    rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)
    prompts = build_prompt_set(hypothesis.spec.data, rows, spliced.tokenizer, seed=3, n=N)
    paths = greedy_feature_search(spliced.model, prompts, k=K, depth=DEPTH)
    return spliced.model, plain, prompts, paths


def _read(direction: torch.Tensor, ln_weight: torch.Tensor, scale: float) -> torch.Tensor:
    centred = direction * ln_weight
    return (centred - centred.mean()) / scale


def hand_contributions(spliced, plain, prompts, target: str) -> dict[str, torch.Tensor]:
    """Per-prompt direct contributions to ``target`` ('logits' or 'MLP<l>.tc[f]'), prompt by prompt."""
    transcoders = {int(h.split(".")[1]): sae for h, sae in spliced.acts_to_saes.items()}
    if target == "logits":
        heads_upto, features_upto = plain.cfg.n_layers - 1, plain.cfg.n_layers - 1
    else:
        layer = int(target[3])
        feature = int(target.split("[")[1].rstrip("]"))
        heads_upto, features_upto = layer, layer - 1
    out: dict[str, list[float]] = {}
    for i in range(len(prompts)):
        tokens = prompts.tokens[i : i + 1, : int(prompts.lengths[i])]
        with torch.no_grad():
            _, cache = plain.run_with_cache(tokens)
            if target == "logits":
                direction = plain.W_U[:, prompts.desired[i]] - plain.W_U[:, prompts.undesired[i]]
                read = _read(direction, plain.ln_final.w, float(cache["ln_final.hook_scale"][0, -1]))
            else:
                direction = transcoders[layer].W_enc[:, feature]
                read = _read(
                    direction,
                    plain.blocks[layer].ln2.w,
                    float(cache[f"blocks.{layer}.ln2.hook_scale"][0, -1]),
                )
            values = {
                "embed@end": cache["hook_embed"][0, -1] @ read,
                "pos_embed@end": cache["hook_pos_embed"][0, -1] @ read,
            }
            for m in range(heads_upto + 1):
                for h in range(plain.cfg.n_heads):
                    values[f"L{m}H{h}@end"] = (
                        cache[f"blocks.{m}.attn.hook_z"][0, -1, h] @ plain.W_O[m, h] @ read
                    )
            for m in range(features_upto + 1):
                sae = transcoders[m]
                x = cache[f"blocks.{m}.ln2.hook_normalized"][0, -1]
                acts = torch.relu(x @ sae.W_enc + sae.b_enc)
                for f in range(sae.W_dec.shape[0]):
                    values[f"MLP{m}.tc[{f}]@end"] = acts[f] * (sae.W_dec[f] @ read)
        for name, value in values.items():
            out.setdefault(name, []).append(float(value))
    return {name: torch.tensor(v) for name, v in out.items()}


def test_first_hop_matches_hand_reference_and_is_the_top_k(toy):
    from circuitspec.features.search import direct_contributions

    spliced, plain, prompts, paths = toy
    hand = hand_contributions(spliced, plain, prompts, "logits")
    searched = direct_contributions(spliced, prompts, "logits")
    assert set(searched) == set(hand)
    for name in hand:
        torch.testing.assert_close(searched[name], hand[name], atol=ATOL, rtol=0)
    ranked = sorted(hand, key=lambda name: -float(hand[name].abs().mean()))
    first_hops = list(dict.fromkeys(path.nodes[-2] for path in paths))
    assert first_hops == ranked[:K]  # the k strongest, strongest first
    for path in paths:
        assert path.nodes[-1] == "logits"
        assert path.contributions[-1] == pytest.approx(float(hand[path.nodes[-2]].mean()), abs=ATOL)
        assert path.scores[-1] == pytest.approx(float(hand[path.nodes[-2]].abs().mean()), abs=ATOL)
    assert any(len(path.nodes) == DEPTH + 1 for path in paths)  # some first hop is a layer-1 feature


def test_second_hop_ranks_encoder_contributions(toy):
    spliced, plain, prompts, paths = toy
    deep = [path for path in paths if len(path.nodes) == DEPTH + 1]
    target = deep[0].nodes[1]
    hand = hand_contributions(spliced, plain, prompts, target.removesuffix("@end"))
    ranked = sorted(hand, key=lambda name: -float(hand[name].abs().mean()))
    assert [path.nodes[0] for path in deep if path.nodes[1] == target] == ranked[:K]
    for path in deep:
        if path.nodes[1] == target:
            assert path.contributions[0] == pytest.approx(float(hand[path.nodes[0]].mean()), abs=ATOL)
            assert not path.nodes[0].startswith("MLP1.")  # strictly upstream of MLP1


def test_snippet_parses_as_paths(toy):
    from circuitspec.features.search import to_yaml_snippet
    from circuitspec.spec.nodes import parse_node
    from circuitspec.spec.schema import split_path

    *_, paths = toy
    block = YAML(typ="safe").load(to_yaml_snippet(paths))["paths"]
    assert list(block.values()) == [path.chain for path in paths]
    for chain in block.values():
        nodes = [parse_node(name) for name in split_path(chain)]
        assert [node_order(n) for n in nodes] == sorted(node_order(n) for n in nodes)


def test_bad_target_is_one_line_error(toy):
    from circuitspec.errors import CircuitSpecError
    from circuitspec.features.search import greedy_feature_search

    spliced, _, prompts, _ = toy
    with pytest.raises(CircuitSpecError, match="must be 'logits' or a transcoder feature"):
        greedy_feature_search(spliced, prompts, target="L0H0")


def test_logit_contributions_sum_to_the_logit_difference(toy):
    """Completeness: every candidate plus the biases and the transcoders' error terms add up to the
    plain model's logit difference exactly (the final LayerNorm is linear once its scale is frozen)."""
    from circuitspec.features.search import direct_contributions

    spliced, plain, prompts, _ = toy
    searched = direct_contributions(spliced, prompts, "logits")
    total = torch.stack(list(searched.values())).sum(0)
    transcoders = {int(h.split(".")[1]): sae for h, sae in spliced.acts_to_saes.items()}
    for i in range(len(prompts)):
        tokens = prompts.tokens[i : i + 1, : int(prompts.lengths[i])]
        desired, undesired = int(prompts.desired[i]), int(prompts.undesired[i])
        with torch.no_grad():
            logits, cache = plain.run_with_cache(tokens)
            direction = plain.W_U[:, desired] - plain.W_U[:, undesired]
            read = _read(direction, plain.ln_final.w, float(cache["ln_final.hook_scale"][0, -1]))
            rest = plain.ln_final.b @ direction + plain.b_U[desired] - plain.b_U[undesired]
            for m, sae in transcoders.items():
                acts = torch.relu(cache[f"blocks.{m}.ln2.hook_normalized"][0, -1] @ sae.W_enc + sae.b_enc)
                error = cache[f"blocks.{m}.hook_mlp_out"][0, -1] - acts @ sae.W_dec
                rest = rest + (error + plain.b_O[m]) @ read
        logit_diff = float(logits[0, -1, desired] - logits[0, -1, undesired])
        assert float(total[i] + rest) == pytest.approx(logit_diff, abs=ATOL)


def test_cli_search_prints_paths_that_parse_and_refuses_models_without_transcoders():
    """``circuitspec features search`` runs the search on a hypothesis' model and prompts."""
    from ruamel.yaml import YAML
    from typer.testing import CliRunner

    from circuitspec.cli.main import app
    from circuitspec.spec.nodes import parse_node
    from circuitspec.spec.schema import split_path

    repo = Path(__file__).resolve().parents[1]
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "features",
            "search",
            str(repo / "hypotheses/toy_sentiment.yaml"),
            "--k",
            "2",
            "--depth",
            "2",
            "--template",
            "sub_contextual",
        ],
    )
    assert result.exit_code == 0, result.output
    paths = YAML(typ="safe").load(result.stdout)["paths"]
    assert len(paths) >= 2
    for chain in paths.values():
        nodes = [parse_node(name) for name in split_path(chain)]
        assert nodes[-1].text == "logits"

    refused = runner.invoke(app, ["features", "search", str(repo / "hypotheses/zoo/suppression.yaml")])
    assert refused.exit_code == 2
    assert "model.dictionaries" in refused.output and len(refused.output.strip().splitlines()) == 1
