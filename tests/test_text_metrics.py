"""Text metrics (``circuitspec.text_metrics``) against their libraries and hand-worked examples:
VADER's compound score, flip rates on sentences flipped by hand (1) and left unchanged (0), token-level
Levenshtein distance, its % change, and keyword frequencies from the committed lexicons."""

from __future__ import annotations

import numpy as np
import pytest

from circuitspec import text_metrics as tm

SENTENCES = [
    "This movie is wonderful, I loved every minute.",
    "The food was cold and the service was terrible.",
    "The meeting is at noon.",
    "Not bad at all!",
    "",
]

POSITIVE = ["Such a good movie.", "I love this place, the staff are wonderful.", "What a great day!"]
NEGATIVE = ["Such a bad movie.", "I hate this place, the staff are awful.", "What a terrible day!"]


def test_sentiment_is_vaders_compound_score():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    for text in SENTENCES:
        assert tm.sentiment(text) == pytest.approx(vader.polarity_scores(text)["compound"])
    assert tm.sentiment(SENTENCES[0]) > 0.5 and tm.sentiment(SENTENCES[1]) < -0.3
    readme_example = "VADER is smart, handsome, and funny."  # 0.8316 in vaderSentiment's README
    assert tm.sentiment(readme_example) == pytest.approx(0.8316, abs=1e-4)
    assert tm.sentiment("") == 0.0


def test_sentiment_labels_use_vaders_thresholds():
    assert tm.sentiment_label(0.05) == "positive" and tm.sentiment_label(-0.05) == "negative"
    assert tm.sentiment_label(0.049) == "neutral" and tm.sentiment_label(-0.049) == "neutral"
    assert [tm.sentiment_label(tm.sentiment(t)) for t in POSITIVE] == ["positive"] * 3
    assert [tm.sentiment_label(tm.sentiment(t)) for t in NEGATIVE] == ["negative"] * 3


def test_flip_rate_is_one_on_sentences_flipped_by_hand_and_zero_on_unchanged_ones():
    assert tm.flips(POSITIVE, NEGATIVE, "negative").tolist() == [1.0, 1.0, 1.0]
    assert tm.flips(NEGATIVE, POSITIVE, "positive").mean() == 1.0
    assert tm.flips(POSITIVE, POSITIVE, "negative").tolist() == [0.0, 0.0, 0.0]
    assert tm.flips(NEGATIVE, NEGATIVE, "negative").mean() == 0.0  # already on target: no flip
    mixed = tm.flips(POSITIVE[:2], [NEGATIVE[0], POSITIVE[1]], ["negative", "negative"])
    assert mixed.tolist() == [1.0, 0.0]  # per-prompt targets
    with pytest.raises(ValueError, match="targets"):
        tm.flips(POSITIVE, NEGATIVE, ["negative"])


def _levenshtein(a: list, b: list) -> int:
    """The textbook dynamic programme, as an independent reference for these few small cases."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("Such a good movie.", "Such a bad movie.", 1),  # one substitution
        ("the cat sat", "the dog sat down", 2),  # a substitution and an insertion
        ("This is good.", "This is good.", 0),
        ("", "three whole words", 3),
    ],
)
def test_token_distance_counts_whole_token_edits(a, b, expected):
    from rapidfuzz.distance import Levenshtein

    assert tm.token_distance(a, b) == expected
    assert tm.token_distance(a, b) == _levenshtein(tm.words(a), tm.words(b))
    assert tm.token_distance(a, b) == Levenshtein.distance(tm.words(a), tm.words(b))


def test_token_distance_on_token_ids():
    assert tm.token_distance([1, 2, 3, 4], [1, 3, 4, 5]) == 2 == _levenshtein([1, 2, 3, 4], [1, 3, 4, 5])
    assert tm.token_distance(list("kitten"), list("sitting")) == 3


def test_percent_change_against_the_control():
    assert tm.percent_change([11.0, 11.0], [10.0, 10.0]) == pytest.approx(10.0)
    assert tm.percent_change(np.array([2.0, 4.0]), np.array([4.0, 4.0])) == pytest.approx(-25.0)
    assert np.isnan(tm.percent_change([1.0], [0.0]))


def test_keyword_frequency_from_the_lexicons():
    assert tm.keyword_frequency("Thank you so much, I am grateful!", "gratitude") == pytest.approx(2 / 7)
    assert tm.keyword_frequency("I am so sorry, please forgive me.", "apology") == pytest.approx(2 / 7)
    assert tm.keyword_frequency("This is outrageous and I am furious.", "anger") == pytest.approx(2 / 7)
    assert tm.keyword_frequency("The meeting is at noon.", "anger") == 0.0
    assert tm.keyword_frequency("", "gratitude") == 0.0
    assert all(tm.lexicon(name) for name in tm.LEXICONS)
    with pytest.raises(ValueError, match="valid: gratitude, anger, apology"):
        tm.lexicon("joy")
