"""``data derive-words`` rejects unusable pairs: self-pairs, a word on both sides, wrong polarity.

The SmolLM2 failure (issue 14): "bad" ranked among the positive words and "good"/"great" among the
negative, so 10 of 200 rows paired a word with itself. A stub model with exactly that ranking must
now give clean sides, and :func:`check_pairs` must refuse such rows outright.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from circuitspec.cli.data_commands import derive_words, pair_rows
from circuitspec.cli.word_checks import check_pairs, polarity
from circuitspec.errors import CircuitSpecError

LABELS = ("Positive", "Negative")
VOCAB = ["Positive", "Negative", ":", "This", "movie", "is", ".", "bad", "good", "great", "the",
         "terrible", "awful", "wonderful", "blue", "excellent", "poor", "negative"]  # fmt: skip
# the model's (confused) ranking after each prompt: "bad" first among "positive" words, "good" and
# "great" high among "negative" ones, a neutral word ("blue") and a function word ("the") in between
RANKING = {
    "Positive": ["bad", "the", "good", "blue", "great", "terrible", "wonderful", "excellent"],
    "Negative": ["negative", "good", "bad", "great", "terrible", "blue", "awful", "poor", "wonderful"],
}


class _Tokenizer:
    bos_id = None

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        words = text.replace(":", " :").replace(".", " .").split()
        return [VOCAB.index(w) for w in words], []

    def decode(self, ids: list[int]) -> str:
        return " " + " ".join(VOCAB[i] for i in ids)


class _Model:
    """Logits that rank ``RANKING[last label]`` first, in order."""

    cfg = SimpleNamespace(device="cpu")

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        last_label = [VOCAB[i] for i in ids[0].tolist() if VOCAB[i] in LABELS][-1]
        logits = torch.full((1, ids.shape[1], len(VOCAB)), -10.0)
        for rank, word in enumerate(RANKING[last_label]):
            logits[0, -1, VOCAB.index(word)] = 10.0 - rank
        return logits


def _stub_model_with_cfg() -> SimpleNamespace:
    return SimpleNamespace(tokenizer=_Tokenizer(), model=_Model())


def test_confused_ranking_gives_clean_sides():
    positive, negative = derive_words(_stub_model_with_cfg(), labels=LABELS, k=3)
    assert positive == ["good", "great", "wonderful"]  # "bad" skipped, "blue" unknown, "the" a function word
    assert negative == ["bad", "terrible", "awful"]  # the label "negative", "good", "great" skipped
    rows = pair_rows(positive, negative, LABELS)
    check_pairs(rows, LABELS)  # no error
    assert all(r["w_ori"] != r["w_con"] for r in rows)


def test_too_few_words_of_a_polarity_is_one_line_error():
    with pytest.raises(CircuitSpecError, match="only 4 positive adjectives"):
        derive_words(_stub_model_with_cfg(), labels=LABELS, k=5)


@pytest.mark.parametrize(
    ("positive", "negative", "message"),
    [
        (["good", "bad"], ["bad", "awful"], "pairs 'bad' with itself"),
        (["good", "great"], ["great", "awful"], "'great' is on both sides"),
        (["good", "bad"], ["awful", "poor"], "'bad' on the positive side is negative"),
        (["good", "blue"], ["awful", "poor"], "'blue' on the positive side is not in the seed lexicon"),
        (["good", "great"], ["awful", "excellent"], "'excellent' on the negative side is positive"),
    ],
)
def test_check_pairs_rejects(positive, negative, message):
    with pytest.raises(CircuitSpecError, match=message) as error:
        check_pairs(pair_rows(positive, negative, LABELS), LABELS)
    assert "\n" not in str(error.value)


def test_check_pairs_rejects_same_labels():
    rows = [{"s_ori": "Positive", "s_con": "Positive", "w_ori": "good", "w_con": "bad"}]
    with pytest.raises(CircuitSpecError, match="has labels"):
        check_pairs(rows, LABELS)


def test_lexicon_is_disjoint_and_knows_the_paper_words():
    from circuitspec.cli.word_checks import NEGATIVE, POSITIVE

    assert not POSITIVE & NEGATIVE
    assert polarity("good") == "positive" and polarity("Terrible") == "negative" and polarity("blue") is None
