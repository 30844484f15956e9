"""``hypotheses/gpt2_sentiment.yaml`` offline: shape validation, a one-line error for missing GPT-2,
and the whole path (YAML → spliced Dunefsky transcoders → every claim → verdicts) on a stand-in.

The stand-in is a *randomly initialised* ``GPT2LMHeadModel`` at full GPT-2 small shape with a BPE
tokenizer trained offline on the hypothesis' own prompts, plus random transcoder files in the
Dunefsky layout. Its verdicts mean nothing about GPT-2: this test only shows that every claim
executes (no ``Measurement.error``) and gets a verdict.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SENTIMENT = ROOT / "hypotheses" / "gpt2_sentiment.yaml"
STANDIN_D_SAE = 9600  # > the largest feature index the hypothesis names (9570); GPT-2's files hold 24576


def test_validates_against_gpt2_small_shape_offline():
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis

    hypothesis = load_hypothesis(SENTIMENT)
    graph = compile_hypothesis(hypothesis)
    assert (graph.shape.n_layers, graph.shape.n_heads, graph.shape.d_model) == (12, 12, 768)
    assert set(hypothesis.spec.model.dictionaries) == {"MLP0.tc", "MLP9.tc"}
    assert all(
        d.format == "dunefsky" and d.d_sae == 24576 for d in hypothesis.spec.model.dictionaries.values()
    )


def test_real_gpt2_offline_fails_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from circuitspec.cli.main import app

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["verify", str(SENTIMENT), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    progress = re.compile(r"\[\d\d:\d\d:\d\d\] ")  # verify's timestamped progress lines (RunLog)
    lines = [line for line in result.output.splitlines() if line.strip() and not progress.match(line)]
    text = " ".join(" ".join(lines).split())
    assert len(lines) <= 2, result.output  # rich may wrap the one line
    assert "not in the Hugging Face cache" in text and "downloads are off" in text
    assert "model: {path: DIR}" in text


def _rows() -> list[dict]:
    return [
        json.loads(line)
        for line in (SENTIMENT.parent / "data" / "gpt2_sentiment_pairs.jsonl").read_text().splitlines()
    ]


def _save_tokenizer(directory: Path, spec) -> None:
    """A byte-level BPE trained on every prompt and answer of the hypothesis, merged until each word
    is one token (so every answer word is a single token, as in GPT-2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = []
    for row in _rows():
        for template in spec.data.templates:
            corpus.append(template.text.format(**row) + template.desired.format(**row))
            corpus.append(template.undesired.format(**row))
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4000,
        min_frequency=1,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator(corpus * 2, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
    wrapped.save_pretrained(directory)
    for row in _rows():  # every answer word is one token, as in GPT-2
        for word in (row["w_ori"], row["w_con"]):
            assert len(backend.encode(" " + word).ids) == 1, word


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    """A stand-in hypothesis file: the real one pointed at a random GPT-2 small and random transcoders."""
    from ruamel.yaml import YAML
    from transformers import GPT2Config, GPT2LMHeadModel

    from circuitspec.spec.loader import load_hypothesis

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("gpt2_standin")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config()).save_pretrained(root / "gpt2")  # 124M random parameters
    _save_tokenizer(root / "gpt2", load_hypothesis(SENTIMENT).spec)

    yaml = YAML()
    doc = yaml.load(SENTIMENT.read_text())
    gen = torch.Generator().manual_seed(1)
    for key, entry in doc["model"]["dictionaries"].items():
        layer = int(key[3:].split(".")[0])
        state = {
            "W_enc": torch.randn(768, STANDIN_D_SAE, generator=gen) * 0.05,
            "b_enc": torch.randn(STANDIN_D_SAE, generator=gen) * 0.1,
            "W_dec": torch.randn(STANDIN_D_SAE, 768, generator=gen) * 0.05,
            "b_dec": torch.randn(768, generator=gen) * 0.1,
            "b_dec_out": torch.randn(768, generator=gen) * 0.1,
        }
        path = root / f"final_sparse_autoencoder_gpt2-small_blocks.{layer}.ln2.hook_normalized_24576.pt"
        torch.save(state, path)
        entry["path"] = str(path)
        entry["d_sae"] = STANDIN_D_SAE
    doc["model"] = {"path": str(root / "gpt2"), "dictionaries": doc["model"]["dictionaries"]}
    doc["data"]["file"] = str(SENTIMENT.parent / doc["data"]["file"])
    doc["data"]["allow_outside"] = True  # the rows stay beside the real hypothesis
    doc["data"]["n"] = 1  # 1 row per template and only the contextual templates (one per direction
    doc["data"]["templates"] = [t for t in doc["data"]["templates"] if "contextual" in t["tags"]]  # of tags)
    for claim in doc["claims"]:
        if claim["kind"] == "scaling" and len(claim["alphas"]) > 3:
            claim["alphas"] = [a for a in claim["alphas"] if abs(a) in (1, 8, 64)]
    out = root / "gpt2_sentiment_standin.yaml"
    with out.open("w") as handle:
        yaml.dump(doc, handle)
    return out


@pytest.mark.slow
def test_every_claim_runs_end_to_end_on_a_random_gpt2_standin(standin):
    from circuitspec.pipeline import run_verification

    result = run_verification(standin, progress=False)
    assert result.model_identity["source"].startswith("path:")
    errors = {cid: m.error for cid, m in result.measurements.items() if m.error}
    assert not errors, errors
    assert len(result.outcomes) == 22
    assert {o.verdict for o in result.outcomes} <= {"pass", "fail", "inconclusive"}
    label = result.measurements["label_features"]
    assert label.arrays["value"].shape == (1,)  # the feature claim really ran on the spliced transcoders
