"""Model sources: every ``path:`` decoder architecture loads from a tiny random Hugging Face directory
made here and matches transformers; a GGUF is dequantized once into the cache; bad sources are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from circuitspec.engine.models import load_model
from circuitspec.errors import CircuitSpecError, ModelNotAvailable
from circuitspec.graph.shapes import shape_for
from circuitspec.spec.schema import ModelSpec

torch.set_num_threads(1)

CORPUS = ["the movie was good", "the film was bad", "John gave a book to Mary", "she went to the store"] * 20
TOKENS = [[5, 17, 42, 99, 7, 64, 3, 120], [11, 12, 13, 14, 200, 150, 30, 8]]
VOCAB = 256


def _tokenizer(bos: str, eos: str):
    """A byte-level BPE trained here, wrapped as a transformers fast tokenizer (no hub)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=VOCAB, min_frequency=1, special_tokens=[bos, eos])
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=bos, eos_token=eos)


def _configs() -> dict[str, object]:
    import transformers as tf

    small = {"vocab_size": VOCAB, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2}
    heads = {"num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64}
    return {
        "llama": tf.LlamaConfig(**small, **heads, tie_word_embeddings=True),
        "mistral": tf.MistralConfig(**small, **heads, sliding_window=None),
        "qwen2": tf.Qwen2Config(**small, **heads, use_sliding_window=False),
        "gemma3": tf.Gemma3TextConfig(
            **small, **heads, head_dim=8, query_pre_attn_scalar=8, sliding_window=4
        ),
        "gpt_neox": tf.GPTNeoXConfig(
            **small,
            num_attention_heads=4,
            max_position_embeddings=64,
            rotary_pct=0.5,
            use_parallel_residual=True,
        ),
        "gpt2": tf.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64),
    }


def _save_random(kind: str, config, directory: Path) -> None:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():  # non-trivial norm gains, so folding them is exercised
        for name, param in model.named_parameters():
            if "norm" in name or "ln" in name:
                param.add_(0.1 * torch.randn_like(param))
    model.save_pretrained(directory)
    _tokenizer("<s>", "</s>").save_pretrained(directory)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    dirs = {}
    for kind, config in _configs().items():
        dirs[kind] = root / kind
        _save_random(kind, config, dirs[kind])
    return dirs


@pytest.mark.parametrize("kind", ["llama", "gemma3", "gpt2", "gpt_neox", "qwen2", "mistral"])
def test_path_decoder_matches_transformers(kind, model_dirs):
    from transformers import AutoModelForCausalLM

    directory = model_dirs[kind]
    loaded = load_model(ModelSpec(path=directory.name, device="cpu"), directory.parent)
    config = json.loads((directory / "config.json").read_text())
    assert loaded.shape.n_layers == 2 and loaded.shape.n_heads == 4 and loaded.shape.d_model == 32
    assert shape_for(ModelSpec(path=directory.name), directory.parent).n_heads == 4  # from config.json
    if config.get("num_key_value_heads", 4) != 4:  # GQA: one key/value copy per query head
        assert loaded.model.cfg.ungroup_grouped_query_attention
        assert loaded.identity["grouped_query_attention"] == {"n_key_value_heads": 2, "ungrouped": True}
        _, cache = loaded.model.run_with_cache(torch.tensor(TOKENS), names_filter="blocks.0.attn.hook_v")
        assert cache["blocks.0.attn.hook_v"].shape[2] == 4
    hf = AutoModelForCausalLM.from_pretrained(directory).eval()
    tokens = torch.tensor(TOKENS)
    with torch.no_grad():  # TransformerLens centres the unembedding: compare log-probabilities
        expected = hf(tokens).logits.log_softmax(-1)
        got = loaded.model(tokens).log_softmax(-1)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_bos_comes_from_the_tokenizer_and_yaml_overrides_it(model_dirs):
    directory = model_dirs["llama"]  # its tokenizer adds no BOS and <s> is not its end-of-text
    loaded = load_model(ModelSpec(path=directory.name, device="cpu"), directory.parent)
    assert loaded.tokenizer.bos_id is None and loaded.identity["prepend_bos"] is False
    forced = load_model(ModelSpec(path=directory.name, device="cpu", prepend_bos=True), directory.parent)
    assert forced.tokenizer.bos_id == 0 and forced.identity["prepend_bos"] is True


def test_unsupported_model_type_is_one_line(tmp_path):
    directory = tmp_path / "mamba"
    directory.mkdir()
    (directory / "config.json").write_text(
        json.dumps({"model_type": "mamba", "architectures": ["MambaForCausalLM"], "hidden_size": 16}),
        encoding="utf-8",
    )
    with pytest.raises(ModelNotAvailable) as err:
        load_model(ModelSpec(path="mamba", device="cpu"), tmp_path)
    message = str(err.value)
    assert "\n" not in message and "model_type 'mamba'" in message and "llama" in message


def test_missing_package_is_one_line():
    with pytest.raises(ModelNotAvailable) as err:
        load_model(ModelSpec(package="circuitspec-no-such-model"), Path("."))
    message = str(err.value)
    assert "\n" not in message and "not installed" in message and "circuitspec-no-such-model" in message


def test_missing_gguf_is_one_line(tmp_path):
    for spec in (ModelSpec(gguf="nowhere/model.gguf"), ModelSpec(gguf="model.gguf")):
        with pytest.raises(ModelNotAvailable) as err:
            load_model(spec, tmp_path)
        assert (
            "\n" not in str(err.value) and "GGUF file" in str(err.value) and str(tmp_path) in str(err.value)
        )
        with pytest.raises(CircuitSpecError):  # validate says the same, without loading
            shape_for(spec, tmp_path)


def test_one_source_only():
    with pytest.raises(ValueError, match="exactly one of name, path, gguf, bundled, package"):
        ModelSpec(path="a", gguf="b.gguf")
