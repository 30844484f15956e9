"""Model loading: a local GPT-2 directory (built offline) matches Hugging Face, bundled and
hub-name errors are one line, the weights hash is deterministic."""

from __future__ import annotations

import pytest
import torch

from circuitspec.engine.models import load_model, weights_sha256
from circuitspec.errors import ModelNotAvailable
from circuitspec.spec.schema import ModelSpec
from tests.helpers.tiny import make_tiny_model

torch.set_num_threads(1)

CORPUS = ["the movie was good", "the film was bad", "John gave a book to Mary", "she went to the store"] * 20


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    """A random 2-layer GPT-2 and a byte-level BPE tokenizer trained here, saved like the hub does."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    directory = tmp_path_factory.mktemp("gpt2")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"])
    hf_tok = GPT2TokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    hf_tok.save_pretrained(directory)
    config = GPT2Config(
        vocab_size=len(hf_tok), n_positions=32, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():  # non-trivial LayerNorm parameters so folding them is exercised
        for name, param in model.named_parameters():
            if "ln" in name:
                param.add_(0.1 * torch.randn_like(param))
    model.save_pretrained(directory)
    return directory


def test_local_gpt2_matches_huggingface(gpt2_dir):
    from transformers import GPT2LMHeadModel

    loaded = load_model(ModelSpec(path=gpt2_dir.name, device="cpu"), gpt2_dir.parent)
    assert loaded.model.cfg.normalization_type == "LNPre"  # LayerNorm folded as from_pretrained does
    assert loaded.shape.n_layers == 2 and loaded.shape.n_heads == 4 and loaded.shape.d_model == 32
    assert loaded.identity["source"] == f"path:{gpt2_dir.name}" and loaded.identity["device"] == "cpu"
    ids, _ = loaded.tokenizer.encode("the movie was good")
    assert loaded.tokenizer.bos_id == 0
    tokens = torch.tensor([[loaded.tokenizer.bos_id, *ids]])
    hf = GPT2LMHeadModel.from_pretrained(gpt2_dir).eval()
    with torch.no_grad():
        expected = hf(tokens).logits.log_softmax(-1)
        # TransformerLens centres the unembedding: logits differ by a per-position constant
        got = loaded.model(tokens).log_softmax(-1)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    again = load_model(ModelSpec(path=gpt2_dir.name, device="cpu"), gpt2_dir.parent)
    assert again.identity["weights_sha256"] == loaded.identity["weights_sha256"]


def test_weights_hash_is_deterministic_and_sensitive():
    a, b = make_tiny_model(seed=0), make_tiny_model(seed=0)
    assert weights_sha256(a) == weights_sha256(b)
    with torch.no_grad():
        b.W_U[0, 0] += 1e-3
    assert weights_sha256(a) != weights_sha256(b)


def test_unknown_bundled_model_lists_names(tmp_path):
    with pytest.raises(ModelNotAvailable) as err:
        load_model(ModelSpec(bundled="no-such-model"), tmp_path)
    assert "no bundled model 'no-such-model' (valid:" in str(err.value) and "\n" not in str(err.value)


def test_hub_name_missing_from_cache_fails_fast_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotAvailable) as err:  # answered from the cache check, no network wait
        load_model(ModelSpec(name="gpt2-small"), tmp_path)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "hub") in message and "model: {path: DIR}" in message


def test_missing_local_directory(tmp_path):
    with pytest.raises(ModelNotAvailable, match=r"config\.json missing"):
        load_model(ModelSpec(path="nowhere"), tmp_path)


def test_byte_level_bpe_roles_and_answers(gpt2_dir):
    """Role positions from offsets work with GPT-2's byte-level BPE (spaces inside tokens), BOS first."""
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.spec.schema import DataSpec, TemplateSpec

    loaded = load_model(ModelSpec(path=gpt2_dir.name, device="cpu"), gpt2_dir.parent)
    rows = [{"adj": "good", "other": "bad", "who": "John"}, {"adj": "bad", "other": "good", "who": "Mary"}]
    data = DataSpec(
        templates=[
            TemplateSpec(
                id="t", text="{who} gave the movie was {adj} to", desired=" {adj}", undesired=" {other}"
            )
        ],
        rows=rows,
    )
    prompts = build_prompt_set(data, rows, loaded.tokenizer, None, seed=0, n=None)
    tok = loaded.tokenizer
    assert (prompts.tokens[:, 0] == tok.bos_id).all()
    for i, row in enumerate(rows):
        for role in ("who", "adj"):  # the role's last token: the text up to it ends with the slot value
            upto = tok.decode(prompts.tokens[i, 1 : int(prompts.positions(role)[i]) + 1].tolist())
            assert upto.endswith(row[role]) and not upto[:-1].endswith(row[role])
        assert tok.decode([int(prompts.desired[i])]) == " " + row["adj"]


def test_hub_offline_sets_and_restores_the_variable(monkeypatch):
    import os

    from circuitspec.engine.models import hub_offline

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(RuntimeError), hub_offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1"
        raise RuntimeError("a failed load")
    assert os.environ["HF_HUB_OFFLINE"] == "0"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with hub_offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ
