"""The bundled toy sentiment model: registration, files, reproducibility, recorded accuracy."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from circuitspec.errors import CircuitSpecError
from circuitspec.zoo import toy_sentiment
from circuitspec.zoo.toy_sentiment import task

REPO = Path(__file__).resolve().parents[1]
CONFIG = toy_sentiment.read_config()
FINAL = CONFIG["default_checkpoint"]


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_registers_without_importing_torch():
    code = (
        "import sys, circuitspec.zoo.catalog\n"
        "from circuitspec.zoo import BUNDLED\n"
        "m = BUNDLED['toy_sentiment']\n"
        "assert 'torch' not in sys.modules, 'torch imported at registration'\n"
        "print(m.shape.n_layers, m.shape.n_heads, m.shape.d_model, m.shape.d_vocab, len(m.checkpoints))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    model = CONFIG["model"]
    shape = [
        model["n_layers"],
        model["n_heads"],
        model["d_model"],
        model["d_vocab"],
        len(CONFIG["checkpoints"]),
    ]
    expected = " ".join(map(str, shape))
    assert out.stdout.split("\n")[0] == expected


def test_every_prompt_tokenises_into_known_words():
    _, tokenizer = _tokenizer_only()
    unk = tokenizer.token_to_id("<unk>")
    for prompt in task.all_prompts():
        ids, spans = tokenizer.encode(prompt.text)
        assert unk not in ids, prompt.text
        # word-level: tokens are exactly the whitespace/punctuation pieces of the text
        assert [prompt.text[a:b] for a, b in spans] == prompt.text.replace(".", " .").replace(
            ":", " :"
        ).split()
        assert tokenizer.single_token(prompt.desired) is not None
    assert tokenizer.vocab_size == CONFIG["model"]["d_vocab"]


def test_split_holds_out_every_group_and_is_disjoint():
    train, test = task.split_prompts()
    assert not {p.text for p in train} & {p.text for p in test}
    groups = {(p.prompt_type, p.condition, p.direction) for p in test}
    assert len(groups) == len(task.PROMPT_TYPES) * len(task.CONDITIONS) * 2
    # every answer word of the test split is a training answer too (held out: combinations, not words)
    assert {p.desired for p in test} <= {p.desired for p in train}


@pytest.mark.parametrize(
    ("checkpoint", "name"),
    [
        (None, FINAL),
        ("final", FINAL),
        (20, "step_00020"),
        ("step_00050", "step_00050"),
        ("100", "step_00100"),
    ],
)
def test_resolve_checkpoint(checkpoint, name):
    assert toy_sentiment.resolve_checkpoint(checkpoint) == name


@pytest.mark.parametrize("checkpoint", [7, "step_7x", "latest", True])
def test_unknown_checkpoint_is_a_one_line_error_listing_the_valid_ones(checkpoint):
    with pytest.raises(CircuitSpecError) as info:
        toy_sentiment.resolve_checkpoint(checkpoint)
    message = str(info.value)
    assert "\n" not in message
    assert all(c["name"] in message for c in CONFIG["checkpoints"])


def test_bundled_files_match_recorded_hashes_and_size_budget():
    total = 0
    assert len(CONFIG["checkpoints"]) >= 5
    assert CONFIG["checkpoints"][0]["step"] == 0
    for entry in CONFIG["checkpoints"]:
        data = (toy_sentiment.PACKAGE_DIR / "checkpoints" / f"{entry['name']}.safetensors").read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["name"]
        total += len(data)
    assert total <= 5 * 2**20


def test_training_is_deterministic_and_regenerates_the_committed_prefix(tmp_path):
    """On one machine training is bit-for-bit deterministic (two runs, the same kernels: equal hashes).
    Across machines nothing is bit-exact: the seeded initialisation draws normals through vectorised
    log / cos (AVX2 and AVX-512 round their last bit differently), so step 0 must equal the committed
    file to a few float32 ulps of the largest weight; the committed step-20 weights are regenerated to
    float noise only: matmuls round differently and Adam carries that on (6-8e-4 max abs measured across
    ATen's default / AVX2 / AVX-512 kernels) - while a run from the next seed lands 0.6 away."""
    import torch
    from safetensors.torch import load_file

    from circuitspec.zoo.toy_sentiment import train

    start, step_20 = CONFIG["checkpoints"][:2]
    _, hashes = train.train(tmp_path / "a", stop_after=step_20["step"])
    _, again = train.train(tmp_path / "b", stop_after=step_20["step"])
    assert hashes == again

    def weights(root: Path, seed: int | None = None, name: str = step_20["name"]) -> dict[str, torch.Tensor]:
        if seed is not None:
            train.train(root, stop_after=step_20["step"], seed=seed)
        return load_file(str(root / "checkpoints" / f"{name}.safetensors"))

    def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
        assert a.keys() == b.keys()
        return max(float((a[k] - b[k]).abs().max()) for k in a)

    initial = weights(toy_sentiment.PACKAGE_DIR, name=start["name"])
    ulps = 8 * torch.finfo(torch.float32).eps * max(float(w.abs().max()) for w in initial.values())
    assert distance(weights(tmp_path / "a", name=start["name"]), initial) <= ulps
    committed = weights(toy_sentiment.PACKAGE_DIR)
    retrained = weights(tmp_path / "a")
    other_seed = weights(tmp_path / "c", seed=train.TRAINING["seed"] + 1)
    assert distance(retrained, committed) < 2e-3
    assert distance(other_seed, committed) > 0.1


def test_final_checkpoint_reaches_recorded_accuracy_and_docs_record_it():
    from circuitspec.zoo.toy_sentiment import train

    model, tokenizer = toy_sentiment.load("final")
    _, test_prompts = task.split_prompts()
    with train.deterministic_cpu():
        metrics = train.evaluate(model, tokenizer, test_prompts)
        near_ties = _near_ties(model, tokenizer, test_prompts)
    recorded = CONFIG["metrics"][FINAL]["test"]
    assert metrics.keys() == recorded.keys()
    for group, row in metrics.items():
        assert row["n"] == recorded[group]["n"], group
        for key in ("logit_diff_accuracy", "top1_accuracy"):
            # another CPU may round a prompt whose margin is within float error to the other side
            allowed = near_ties[key] / row["n"] + 1e-6  # + the recorded value's rounding
            assert abs(row[key] - recorded[group][key]) <= allowed, (group, key, near_ties)
        assert row["mean_logit_diff"] == pytest.approx(recorded[group]["mean_logit_diff"], abs=1e-3)
    assert metrics["all"]["logit_diff_accuracy"] >= 0.95
    docs = (REPO / "docs" / "toy_sentiment.md").read_text()
    assert train.metrics_table(recorded) in docs


def _near_ties(model, tokenizer, prompts) -> dict[str, int]:
    """How many prompts' logit difference, or top-1 margin, lies within float32 rounding error of 0: the
    error of a logit is at most ~eps x (terms summed: d_model per layer, n_layers + 1 of them) x its size."""
    import torch

    from circuitspec.zoo.toy_sentiment import train

    batch = train.encode_prompts(prompts, tokenizer)
    with torch.no_grad():
        logits = model(batch["tokens"], return_type="logits")
    final = logits[torch.arange(len(prompts)), batch["answer_pos"]]
    tolerance = (
        torch.finfo(torch.float32).eps
        * model.cfg.d_model
        * (model.cfg.n_layers + 1)
        * float(final.abs().max())
    )
    diff = (
        final.gather(1, batch["desired"][:, None])[:, 0] - final.gather(1, batch["undesired"][:, None])[:, 0]
    )
    top2 = final.topk(2, dim=-1).values
    return {
        "logit_diff_accuracy": int((diff.abs() <= 2 * tolerance).sum()),
        "top1_accuracy": int((top2[:, 0] - top2[:, 1] <= 2 * tolerance).sum()),
    }


def test_step_zero_is_at_chance():
    from circuitspec.zoo.toy_sentiment import train

    model, tokenizer = toy_sentiment.load(0)
    _, test_prompts = task.split_prompts()
    overall = train.evaluate(model, tokenizer, test_prompts)["all"]
    assert 0.35 <= overall["logit_diff_accuracy"] <= 0.65
    assert overall["top1_accuracy"] < 0.1
    assert abs(overall["mean_logit_diff"]) < 0.1


def test_padded_batch_evaluation_equals_single_prompt_forward():
    """``evaluate`` right-pads; each prompt alone (no padding) must give the same answer logits."""
    import torch

    from circuitspec.zoo.toy_sentiment import train

    model, tokenizer = toy_sentiment.load("final")
    _, test_prompts = task.split_prompts()
    sample = [test_prompts[i] for i in (0, 5, 250, 519)]  # minimal, contextual and instructional
    batch = train.encode_prompts(sample, tokenizer)
    with torch.no_grad():
        padded = model(batch["tokens"])[torch.arange(len(sample)), batch["answer_pos"]]
        for i, prompt in enumerate(sample):
            ids = torch.tensor([[tokenizer.bos_id, *tokenizer.encode(prompt.text)[0]]])
            alone = model(ids)[0, -1]
            torch.testing.assert_close(padded[i], alone, rtol=1e-5, atol=1e-5)
            assert tokenizer.id_to_token(int(alone.argmax())) == prompt.desired


def test_answer_depends_on_the_second_label():
    """Same sentence, only s_con differs: the model copies for one label and flips for the other."""
    import torch

    model, tokenizer = toy_sentiment.load("final")
    texts = [
        "Positive: This movie is good. Positive: This movie is",
        "Positive: This movie is good. Negative: This movie is",
    ]
    answers = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([[tokenizer.bos_id, *tokenizer.encode(text)[0]]])
            answers.append(tokenizer.id_to_token(int(model(ids)[0, -1].argmax())))
    assert answers == ["good", "bad"]


def test_pair_rows_file_matches_generator():
    rows = [
        json.loads(line)
        for line in (REPO / "hypotheses" / "data" / "toy_sentiment_pairs.jsonl").read_text().splitlines()
    ]
    assert rows == list(task.pair_rows())
    assert {r["direction"] for r in rows} == {"pos_to_neg", "neg_to_pos"}
    assert {r["split"] for r in rows} == {"train", "test"}


def _tokenizer_only():
    from circuitspec.tokenizer import TextTokenizer

    return None, TextTokenizer.from_file(toy_sentiment.TOKENIZER_PATH, bos="<bos>", pad="<pad>")


def test_patching_every_head_at_the_answer_restores_exactly():
    """Closed form: the answer position's residual is its (identical) embeddings plus head outputs
    and MLPs of that position, so patching all heads there reproduces the clean logits."""
    from circuitspec.zoo.toy_sentiment import analysis

    model, tokenizer = toy_sentiment.load("final")
    every_head = [(layer, head) for layer in range(2) for head in range(4)]
    assert analysis.word_patching(model, tokenizer, every_head) == pytest.approx(1.0, abs=1e-5)
    assert analysis.word_patching(model, tokenizer, []) == pytest.approx(0.0, abs=1e-6)


def test_layer0_heads_read_the_label_and_carry_the_word():
    """The findings recorded in docs/toy_sentiment.md ("Which heads do what")."""
    from circuitspec.zoo.toy_sentiment import analysis

    model, tokenizer = toy_sentiment.load("final")
    heads = [(layer, head) for layer in range(2) for head in range(4)]
    for negated, reader in ((False, (0, 0)), (True, (0, 3))):
        restored = {h: analysis.label_patching(model, tokenizer, negated, [h]) for h in heads}
        assert max(restored, key=restored.get) == reader
        assert restored[reader] > 0.75
        assert all(abs(restored[h]) < 0.1 for h in heads if h[0] == 1)
    word = {h: analysis.word_patching(model, tokenizer, [h]) for h in heads[:4]}
    assert max(word, key=word.get) == (0, 1)
    assert analysis.word_patching(model, tokenizer, [(0, 1), (0, 2)]) > 0.85
    assert analysis.attention_to_roles(model, tokenizer, "negation")["L0H1"]["w_ori"] > 0.8
