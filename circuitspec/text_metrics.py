"""Per-prompt numbers on generated text (torch-free): sentiment, flips, edit distance, keywords.

- Sentiment: VADER's compound score in [-1, 1] (``vaderSentiment``, a lexicon and rule classifier
  that installs and runs offline), labelled with VADER's own thresholds (±0.05).
- Flips (contrastive-sentiment-mechanisms §7): per prompt, 1 when the control continuation's label is
  not the target and the intervened one's is; their mean is the flip rate.
- Token-level Levenshtein distance (``rapidfuzz``) between a continuation and the original sentence,
  and the % change of the mean distance against the α = 2^0 control.
- Keyword frequency: the share of a text's words in a committed lexicon
  (``circuitspec/data/lexicons/<name>.txt``: gratitude, anger, apology, as the emotion paper's
  categories; the paper lists no words, so the lists are circuitspec's own).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LEXICONS",
    "SENTIMENT_THRESHOLD",
    "flips",
    "keyword_frequency",
    "lexicon",
    "percent_change",
    "sentiment",
    "sentiment_label",
    "token_distance",
    "words",
]

SENTIMENT_THRESHOLD = 0.05  # VADER's documented cut-offs: compound >= 0.05 positive, <= -0.05 negative
LEXICONS = ("gratitude", "anger", "apology")
_LEXICON_DIR = Path(__file__).resolve().parent / "data" / "lexicons"
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?|[^\sA-Za-z0-9]")


@functools.cache
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER's compound sentiment of ``text`` in [-1, 1] (0 for empty text)."""
    return float(_analyzer().polarity_scores(text)["compound"])


def sentiment_label(score: float, threshold: float = SENTIMENT_THRESHOLD) -> str:
    """``positive`` / ``negative`` / ``neutral`` for a compound score (VADER's thresholds by default)."""
    if score >= threshold:
        return "positive"
    if score <= -threshold:
        return "negative"
    return "neutral"


def flips(
    control: Sequence[str],
    intervened: Sequence[str],
    target: str | Sequence[str],
    threshold: float = SENTIMENT_THRESHOLD,
) -> np.ndarray:
    """Per prompt, 1.0 when the control text's label is not ``target`` and the intervened text's is
    (``target``: one label for all, or one per prompt); the mean is the flip rate."""
    targets = [target] * len(control) if isinstance(target, str) else list(target)
    if not len(control) == len(intervened) == len(targets):
        raise ValueError(
            f"flips: {len(control)} control, {len(intervened)} intervened, {len(targets)} targets"
        )
    out = []
    for before, after, want in zip(control, intervened, targets, strict=True):
        was = sentiment_label(sentiment(before), threshold)
        now = sentiment_label(sentiment(after), threshold)
        out.append(float(was != want and now == want))
    return np.asarray(out, dtype=np.float64)


def words(text: str) -> list[str]:
    """Lowercase word and punctuation tokens of ``text`` (the default tokens for distances)."""
    return [w.lower() for w in _WORD.findall(text)]


def token_distance(
    a: str | Sequence[Hashable],
    b: str | Sequence[Hashable],
    tokenize: Callable[[str], Sequence[Hashable]] = words,
) -> int:
    """Token-level Levenshtein distance (insertions, deletions, substitutions of whole tokens) between
    two token lists; strings are tokenized by ``tokenize`` first (rapidfuzz computes it)."""
    from rapidfuzz.distance import Levenshtein

    left = tokenize(a) if isinstance(a, str) else list(a)
    right = tokenize(b) if isinstance(b, str) else list(b)
    return int(Levenshtein.distance(left, right))


def percent_change(values: Sequence[float] | np.ndarray, baseline: Sequence[float] | np.ndarray) -> float:
    """100 × (mean(values) − mean(baseline)) / mean(baseline): e.g. the edit distance against the
    α = 2^0 control (nan when the baseline's mean is 0)."""
    base = float(np.mean(baseline))
    return float("nan") if base == 0 else 100.0 * (float(np.mean(values)) - base) / base


@functools.cache
def lexicon(name: str) -> frozenset[str]:
    """The keywords of a committed lexicon (``LEXICONS``); '#' lines are comments."""
    if name not in LEXICONS:
        raise ValueError(f"unknown lexicon '{name}' (valid: {', '.join(LEXICONS)})")
    lines = (_LEXICON_DIR / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def keyword_frequency(text: str, name: str) -> float:
    """The share of ``text``'s words (punctuation excluded) that are keywords of lexicon ``name``."""
    tokens = [w for w in words(text) if w[0].isalnum()]
    if not tokens:
        return 0.0
    keywords = lexicon(name)
    return sum(w in keywords for w in tokens) / len(tokens)
