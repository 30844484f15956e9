"""Checks on derived sentiment word pairs: polarity, overlap and self-pairs (``data derive-words``).

**Polarity comes from a small committed seed lexicon, not from the model.** The unusable SmolLM2
pairs ("bad" among the positive words, "good" among the negative) were the model's own ranking after
a "Positive:" prompt going wrong; a polarity probe asked of the same model would judge those words
with the same confusion, so it cannot be the check (and a 135M model's probe is itself noisy). A
fixed list is deterministic, auditable in review, and independent of the model under study; the
model still chooses *which* words and in what order (paper §5), the lexicon only vetoes a word on
the wrong side or of unknown polarity. The lists hold common evaluative adjectives whose polarity
does not depend on context ("cold", "rich", "thin" are left out on purpose).
"""

from __future__ import annotations

from collections.abc import Iterable

from circuitspec.errors import CircuitSpecError

__all__ = ["NEGATIVE", "POSITIVE", "allowed_on", "check_pairs", "polarity"]

# fmt: off
POSITIVE = frozenset({
    "good", "great", "excellent", "wonderful", "amazing", "awesome", "fantastic", "brilliant", "superb",
    "outstanding", "terrific", "marvelous", "magnificent", "splendid", "perfect", "beautiful", "lovely",
    "delightful", "pleasant", "enjoyable", "charming", "nice", "fine", "fun", "funny", "happy", "glad",
    "exciting", "thrilling", "inspiring", "impressive", "remarkable", "extraordinary", "exceptional",
    "incredible", "fabulous", "stunning", "gorgeous", "elegant", "clever", "smart", "witty", "engaging",
    "entertaining", "captivating", "compelling", "moving", "touching", "heartwarming", "uplifting",
    "refreshing", "satisfying", "solid", "decent", "likable", "lovable", "sweet", "cute", "cool",
    "positive", "best", "better", "masterful", "memorable", "powerful", "riveting", "gripping",
    "hilarious", "joyful", "kind", "friendly", "genuine", "honest", "worthwhile", "recommended",
})
NEGATIVE = frozenset({
    "bad", "terrible", "awful", "horrible", "dreadful", "poor", "worst", "worse", "boring", "dull",
    "tedious", "bland", "lousy", "mediocre", "disappointing", "disappointed", "unpleasant", "nasty",
    "ugly", "gross", "disgusting", "annoying", "irritating", "stupid", "dumb", "silly", "pointless",
    "useless", "worthless", "weak", "lame", "sad", "miserable", "depressing", "painful", "unbearable",
    "unwatchable", "forgettable", "predictable", "clumsy", "messy", "sloppy", "flawed", "cheap",
    "shallow", "tiresome", "ridiculous", "absurd", "horrendous", "atrocious", "abysmal",
    "pathetic", "appalling", "hideous", "offensive", "negative", "unfunny", "lifeless", "tired",
    "confusing", "frustrating", "overrated", "unoriginal", "cruel", "hostile", "rude", "wrong",
    "broken", "evil", "sick", "fake",
})
# fmt: on

_SIDES = {"positive": POSITIVE, "negative": NEGATIVE}


def polarity(word: str) -> str | None:
    """``"positive"``, ``"negative"`` or None (not in the seed lexicon)."""
    word = word.lower()
    if word in POSITIVE:
        return "positive"
    return "negative" if word in NEGATIVE else None


def _side_problems(words: Iterable[str], side: str) -> list[str]:
    """Words on ``side`` whose lexicon polarity disagrees (or is unknown)."""
    return [
        f"'{w}' on the {side} side is {polarity(w) or 'not in the seed lexicon'}"
        for w in words
        if polarity(w) != side
    ]


def check_pairs(rows: list[dict[str, str]], labels: tuple[str, str]) -> None:
    """Raise a one-line :class:`CircuitSpecError` unless every row is a usable contrastive pair.

    A pair's words differ (no self-pairs); a word sits on one side only (never both positive and
    negative); each side agrees with the seed lexicon. ``w_ori`` carries ``s_ori``'s polarity and
    ``w_con`` the other one, with ``labels = (positive label, negative label)``.
    """
    positive_label, negative_label = labels
    sides: dict[str, set[str]] = {"positive": set(), "negative": set()}
    problems: list[str] = []
    for number, row in enumerate(rows, 1):
        if row["w_ori"] == row["w_con"]:
            problems.append(f"row {number} pairs '{row['w_ori']}' with itself")
        if row["s_ori"] not in labels or row["s_con"] not in labels or row["s_ori"] == row["s_con"]:
            problems.append(f"row {number} has labels {row['s_ori']!r}/{row['s_con']!r} (valid: {labels})")
            continue
        ori_side = "positive" if row["s_ori"] == positive_label else "negative"
        con_side = "negative" if ori_side == "positive" else "positive"
        sides[ori_side].add(row["w_ori"])
        sides[con_side].add(row["w_con"])
    both = sorted(sides["positive"] & sides["negative"])
    problems += [f"'{w}' is on both sides" for w in both]
    for side, words in sides.items():
        problems += _side_problems(sorted(words - set(both)), side)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CircuitSpecError(f"unusable word pairs ({negative_label}/{positive_label}): {shown}")


def allowed_on(side: str, word: str) -> bool:
    """Whether ``word`` may stand on ``side`` ("positive" / "negative") of a derived pair."""
    return word.lower() in _SIDES[side]
