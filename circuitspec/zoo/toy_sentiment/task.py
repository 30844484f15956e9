"""The toy contrastive-sentiment task: vocabulary, prompts, train/test split, tokenizer.

Mirrors the paper's setup (contrastive-sentiment-mechanisms §5): three prompt types (minimal,
contextual, instructional) and two transformation mechanisms (substitution -> antonym,
negation "... is not" -> the original word), in both directions (Positive->Negative and
Negative->Positive), mixed with *preservation* prompts whose second label repeats the first.
Four conditions result; the answer depends on whether the labels differ XOR "not" follows:

========================  ==============  ========  ===================
condition                 labels          "not"     answer
========================  ==============  ========  ===================
``substitution``          differ          no        antonym (``w_con``)
``negation``              differ          yes       original (``w_ori``)
``preserve``              same            no        original (``w_ori``)
``preserve_negation``     same            yes       antonym (``w_con``)
========================  ==============  ========  ===================

so the model must read the second label, the original word and "not". Pure Python (no torch):
``validate`` and data generation never need it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "ADJECTIVE_PAIRS",
    "CONDITIONS",
    "INSTRUCTION",
    "NOUNS",
    "PROMPT_TYPES",
    "SPECIAL_TOKENS",
    "TEMPLATES",
    "TaskPrompt",
    "all_prompts",
    "build_tokenizer",
    "is_held_out",
    "pair_rows",
    "split_prompts",
    "vocabulary",
    "write_pair_rows",
]

# (positive, negative) antonym pairs; every word is one token of the word-level vocabulary.
ADJECTIVE_PAIRS: tuple[tuple[str, str], ...] = (
    ("good", "bad"),
    ("great", "terrible"),
    ("happy", "sad"),
    ("excellent", "awful"),
    ("wonderful", "horrible"),
    ("amazing", "dreadful"),
    ("pleasant", "unpleasant"),
    ("nice", "nasty"),
    ("brilliant", "dull"),
    ("beautiful", "ugly"),
    ("delightful", "miserable"),
    ("fantastic", "lousy"),
    ("superb", "poor"),
    ("lovely", "gross"),
    ("fun", "boring"),
    ("charming", "annoying"),
    ("enjoyable", "tedious"),
    ("fresh", "stale"),
    ("perfect", "flawed"),
    ("strong", "weak"),
    ("clever", "stupid"),
    ("exciting", "bland"),
    ("kind", "cruel"),
    ("warm", "cold"),
    ("bright", "gloomy"),
    ("calm", "tense"),
    ("friendly", "hostile"),
    ("rich", "thin"),
    ("tasty", "disgusting"),
    ("elegant", "clumsy"),
)
NOUNS: tuple[str, ...] = ("movie", "film", "book", "meal", "show", "song", "game", "hotel")
LABELS: tuple[str, str] = ("Positive", "Negative")
# One neutral instruction for every instructional prompt: it must not reveal the condition.
INSTRUCTION = "Rewrite the following sentence with minimal changes."
SPECIAL_TOKENS: tuple[str, ...] = ("<bos>", "<pad>", "<unk>")
PROMPT_TYPES: tuple[str, ...] = ("minimal", "contextual", "instructional")
CONDITIONS: tuple[str, ...] = ("substitution", "negation", "preserve", "preserve_negation")

# circuitspec templates (spec/templates.py syntax, where a slot may appear once: the second
# sentence's noun is the slot ``noun_con``, always equal to ``noun``); negation prompts append " not".
_CONTEXT = "{s_ori}: This {noun} is {w_ori}. {s_con}: This {noun_con} is"
TEMPLATES: dict[str, str] = {
    "minimal": "{s_ori}: {w_ori}. {s_con}:",
    "contextual": _CONTEXT,
    "instructional": INSTRUCTION + " " + _CONTEXT,
}


@dataclass(frozen=True)
class TaskPrompt:
    """One prompt with its desired and undesired next token (the logit-difference pair)."""

    text: str
    prompt_type: str
    condition: str
    direction: str  # "pos_to_neg" or "neg_to_pos": the valence of w_ori -> the other word
    pair_index: int
    noun: str | None
    s_ori: str
    s_con: str
    w_ori: str
    w_con: str
    desired: str
    undesired: str


def _fill(prompt_type: str, s_ori: str, s_con: str, w_ori: str, noun: str | None, negated: bool) -> str:
    text = TEMPLATES[prompt_type].format(s_ori=s_ori, s_con=s_con, w_ori=w_ori, noun=noun, noun_con=noun)
    return text + " not" if negated else text


def all_prompts() -> list[TaskPrompt]:
    """Every prompt of the task, in a fixed order."""
    prompts: list[TaskPrompt] = []
    for prompt_type in PROMPT_TYPES:
        nouns: tuple[str | None, ...] = (None,) if prompt_type == "minimal" else NOUNS
        for pair_index, (positive, negative) in enumerate(ADJECTIVE_PAIRS):
            for direction in ("pos_to_neg", "neg_to_pos"):
                s_ori, s_other = LABELS if direction == "pos_to_neg" else LABELS[::-1]
                w_ori, w_con = (positive, negative) if direction == "pos_to_neg" else (negative, positive)
                for noun in nouns:
                    for condition in CONDITIONS:
                        preserve = condition.startswith("preserve")
                        negated = condition.endswith("negation")
                        s_con = s_ori if preserve else s_other
                        wants_original = preserve != negated
                        desired, undesired = (w_ori, w_con) if wants_original else (w_con, w_ori)
                        prompts.append(
                            TaskPrompt(
                                text=_fill(prompt_type, s_ori, s_con, w_ori, noun, negated),
                                prompt_type=prompt_type,
                                condition=condition,
                                direction=direction,
                                pair_index=pair_index,
                                noun=noun,
                                s_ori=s_ori,
                                s_con=s_con,
                                w_ori=w_ori,
                                w_con=w_con,
                                desired=desired,
                                undesired=undesired,
                            )
                        )
    return prompts


def is_held_out(prompt: TaskPrompt) -> bool:
    """Test split: unseen (adjective pair, noun) and (adjective pair, direction) combinations.

    Contextual/instructional: pair ``i`` with noun ``NOUNS[i % 8]`` (every pair keeps 7 training
    nouns). Minimal: for every third pair, one direction (alternating), so its words are still seen
    as training targets in the other prompt types.
    """
    if prompt.noun is None:
        if prompt.pair_index % 3:
            return False
        held_direction = ("pos_to_neg", "neg_to_pos")[(prompt.pair_index // 3) % 2]
        return prompt.direction == held_direction
    return prompt.noun == NOUNS[prompt.pair_index % len(NOUNS)]


def split_prompts() -> tuple[list[TaskPrompt], list[TaskPrompt]]:
    """(train, test) prompts; the split is fixed by :func:`is_held_out`."""
    prompts = all_prompts()
    return [p for p in prompts if not is_held_out(p)], [p for p in prompts if is_held_out(p)]


def vocabulary() -> list[str]:
    """Word-level vocabulary: specials first (``<bos>`` = 0, ``<pad>`` = 1, ``<unk>`` = 2)."""
    words: list[str] = list(SPECIAL_TOKENS) + list(LABELS) + [":", ".", "This", "is", "not"]
    words += list(NOUNS)
    words += [w for pair in ADJECTIVE_PAIRS for w in pair]
    words += [w for w in INSTRUCTION.replace(".", " ").split() if w not in words]
    if len(set(words)) != len(words):  # pragma: no cover - guards edits to the word lists
        raise ValueError("toy_sentiment vocabulary has duplicate words")
    return words


def build_tokenizer():  # -> tokenizers.Tokenizer
    """A WordLevel tokenizer; the ``Whitespace`` pre-tokenizer splits "good." into "good" "."."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {word: index for index, word in enumerate(vocabulary())}
    tokenizer = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    return tokenizer


def pair_rows() -> Iterator[dict]:
    """Data rows for hypotheses: slots of every (pair, direction, noun) in both splits.

    ``noun_con`` repeats ``noun`` for the second sentence (a template slot may appear only once).

    Each row fills :data:`TEMPLATES` (``s_con`` is the contrastive label, opposite to ``s_ori``);
    ``split`` says whether the contextual prompt is held out.
    """
    for prompt in all_prompts():
        if prompt.prompt_type != "contextual" or prompt.condition != "substitution":
            continue
        row = {k: v for k, v in asdict(prompt).items() if k in ("s_ori", "s_con", "w_ori", "w_con", "noun")}
        row["noun_con"] = prompt.noun
        row["direction"] = prompt.direction
        row["split"] = "test" if is_held_out(prompt) else "train"
        yield row


def write_pair_rows(path: str | Path) -> int:
    """Write :func:`pair_rows` as JSON lines; returns the number of rows."""
    rows = list(pair_rows())
    Path(path).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return len(rows)
