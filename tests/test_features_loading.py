"""Loading dictionaries: the Dunefsky GPT-2 transcoder layout, sae-lens disk format, one-line errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from circuitspec.errors import CircuitSpecError, ModelNotAvailable
from circuitspec.spec.schema import DictionarySpec

torch.set_num_threads(1)
D_MODEL, D_SAE = 12, 20


def dunefsky_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the published key names and shapes (transcoder_circuits SparseAutoencoder)."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "W_enc": torch.randn(D_MODEL, D_SAE, generator=gen),
        "b_enc": torch.randn(D_SAE, generator=gen),
        "W_dec": torch.randn(D_SAE, D_MODEL, generator=gen),
        "b_dec": torch.randn(D_MODEL, generator=gen),
        "b_dec_out": torch.randn(D_MODEL, generator=gen),
    }


def dunefsky_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """transcoder_circuits' forward: ReLU((x − b_dec) W_enc + b_enc), then W_dec + b_dec_out."""
    acts = torch.relu((x - state["b_dec"]) @ state["W_enc"] + state["b_enc"])
    return acts, acts @ state["W_dec"] + state["b_dec_out"]


def file_name(layer: int) -> str:
    return f"final_sparse_autoencoder_gpt2-small_blocks.{layer}.ln2.hook_normalized_24576.pt"


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "under-state_dict"])
def test_dunefsky_converter_round_trips(tmp_path: Path, nested: bool):
    from circuitspec.features.loading import dunefsky_transcoder

    state = dunefsky_state()
    path = tmp_path / file_name(3)
    torch.save({"cfg": {"d_in": D_MODEL}, "state_dict": state} if nested else state, path)
    transcoder = dunefsky_transcoder(path, layer=3)
    assert transcoder.cfg.metadata.hook_name == "blocks.3.ln2.hook_normalized"
    assert transcoder.cfg.metadata.hook_name_out == "blocks.3.hook_mlp_out"
    assert transcoder.cfg.apply_b_dec_to_input is False
    x = torch.randn(7, D_MODEL, generator=torch.Generator().manual_seed(1))
    acts, out = dunefsky_forward(state, x)
    with torch.no_grad():
        torch.testing.assert_close(transcoder.encode(x), acts, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(transcoder(x), out, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(transcoder.W_dec, state["W_dec"])  # feature directions kept as is
    assert float((acts > 0).float().mean()) > 0.2


def test_dunefsky_file_errors_are_one_line(tmp_path: Path):
    from circuitspec.features.loading import dunefsky_transcoder

    with pytest.raises(ModelNotAvailable) as missing:
        dunefsky_transcoder(tmp_path / file_name(0), layer=0)
    state = dunefsky_state()
    del state["b_dec_out"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(CircuitSpecError) as partial:
        dunefsky_transcoder(tmp_path / "partial.pt", layer=0)
    (tmp_path / "pickled.pt").write_bytes(pickle.dumps({"cfg": Path("x"), "state_dict": {}}))
    with pytest.raises(CircuitSpecError) as pickled:
        dunefsky_transcoder(tmp_path / "pickled.pt", layer=0)
    for err, words in ((missing, "point"), (partial, "b_dec_out"), (pickled, "weights_only")):
        assert "\n" not in str(err.value) and words in str(err.value)


def test_wrong_hook_name_errors_in_one_line(tmp_path: Path):
    from circuitspec.features.loading import load_dictionary
    from circuitspec.features.splice import splice
    from tests.helpers.tiny import make_tiny_model

    model = make_tiny_model(n_layers=2, d_model=D_MODEL, n_heads=2)
    torch.save(dunefsky_state(), tmp_path / file_name(1))
    spec = DictionarySpec(kind="transcoder", d_sae=D_SAE, format="dunefsky", path=file_name(1))
    transcoder = load_dictionary("MLP1.tc", spec, tmp_path)
    with pytest.raises(CircuitSpecError) as err:  # a layer-1 file declared as MLP0's dictionary
        splice(model, {"MLP0.tc": transcoder})
    assert "\n" not in str(err.value)
    assert "blocks.1.ln2.hook_normalized" in str(err.value) and "blocks.0.ln2.hook_normalized" in str(
        err.value
    )
    spliced = splice(model, {"MLP1.tc": transcoder})
    assert "blocks.1.hook_mlp_out.hook_sae_acts_post" in spliced.hook_dict


def test_sae_lens_disk_format_round_trips(tmp_path: Path):
    from circuitspec.features.loading import load_dictionary, transcoder_from_weights

    state = dunefsky_state(2)
    original = transcoder_from_weights(
        state["W_enc"], state["b_enc"], state["W_dec"], state["b_dec_out"],
        "blocks.0.ln2.hook_normalized", "blocks.0.hook_mlp_out", b_dec_in=state["b_dec"],
    )  # fmt: skip
    original.save_model(tmp_path / "tc0")
    spec = DictionarySpec(kind="transcoder", d_sae=D_SAE, format="sae_lens", path="tc0")
    loaded = load_dictionary("MLP0.tc", spec, tmp_path)
    x = torch.randn(5, D_MODEL)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), dunefsky_forward(state, x)[1], atol=1e-5, rtol=1e-5)
    with pytest.raises(ModelNotAvailable):
        load_dictionary("MLP0.tc", DictionarySpec(kind="transcoder", d_sae=D_SAE, path="nowhere"), tmp_path)
