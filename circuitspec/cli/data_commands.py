"""``circuitspec data derive-words``: the word pairs of contrastive-sentiment-mechanisms §5.

For each sentiment, a contextual prompt that states the *other* sentiment first
(``Negative: This movie is bad. Positive: This movie is``) gives the model's next-token
distribution; its ``k`` most probable adjectives form ``W_pos`` (resp. ``W_neg``). Pairing every
positive with every negative word gives ``k²`` rows per direction with slots ``s_ori, s_con,
w_ori, w_con`` (k = 10 → 100 pairs per direction, as in the paper).

Without a part-of-speech tagger, "adjective" means: a whole lower-case alphabetic word token
(leading space, ≥ 3 letters, not a function word), restricted to ``--adjectives FILE`` (one word a
line) when given. Walking down the model's ranking, a word is taken for a side only when the seed
lexicon of :mod:`circuitspec.cli.word_checks` gives it that side's polarity (so "bad" never lands
among the positive words, and no word on both sides); the rows are then checked once more (no
self-pairs, no overlap, polarity) before anything is written. :func:`register` adds the command to
the typer app; torch loads only when it runs. The labels themselves ("positive", "negative") are
never taken: the model copying a label is not a valenced word.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from circuitspec.cli.word_checks import allowed_on, check_pairs
from circuitspec.errors import CircuitSpecError

__all__ = ["derive_words", "pair_rows", "register"]

# fmt: off
FUNCTION_WORDS = frozenset({
    "the", "and", "but", "not", "also", "very", "really", "quite", "just", "still", "too", "more",
    "most", "much", "such", "that", "this", "then", "than", "what", "which", "who", "was", "were",
    "are", "been", "being", "have", "has", "had", "its", "his", "her", "their", "our", "your", "for",
    "with", "from", "about", "into", "over", "only", "some", "any", "all", "one", "two",
})
# fmt: on


def _adjective(tokenizer: Any, idx: int, allowed: set[str] | None) -> str | None:
    """The word token ``idx`` spells when it is a whole word after a space (any tokenizer), else None."""
    word = tokenizer.decode([idx]).strip()
    if not (word.isalpha() and word.islower() and len(word) >= 3) or word in FUNCTION_WORDS:
        return None
    if allowed is not None and word not in allowed:
        return None
    return word if tokenizer.encode(" " + word)[0] == [idx] else None


def _ranked_words(
    tokenizer: Any, logits: Any, side: str, k: int, adjectives: set[str] | None, skip: set[str]
) -> list[str]:
    """The first ``k`` adjectives down the ranking that the seed lexicon puts on ``side``."""
    words: list[str] = []
    for idx in logits.argsort(descending=True).tolist():
        word = _adjective(tokenizer, idx, adjectives)
        if word is not None and word not in words and word not in skip and allowed_on(side, word):
            words.append(word)
        if len(words) == k:
            break
    return words


def derive_words(
    loaded: Any,
    labels: tuple[str, str] = ("Positive", "Negative"),
    seeds: tuple[str, str] = ("good", "bad"),
    context: str = "This movie is",
    k: int = 10,
    adjectives: set[str] | None = None,
) -> tuple[list[str], list[str]]:
    """``(W_pos, W_neg)``: the ``k`` most probable adjectives of the right polarity (seed lexicon)
    after each contrastive contextual prompt."""
    import torch

    tokenizer, model = loaded.tokenizer, loaded.model
    (pos, neg), (good, bad) = labels, seeds
    prompts = {
        "pos": f"{neg}: {context} {bad}. {pos}: {context}",
        "neg": f"{pos}: {context} {good}. {neg}: {context}",
    }
    out: dict[str, list[str]] = {}
    for which, text in prompts.items():
        ids, _ = tokenizer.encode(text)
        ids = ([tokenizer.bos_id] if tokenizer.bos_id is not None else []) + ids
        with torch.inference_mode():
            logits = model(torch.tensor([ids], device=model.cfg.device))[0, -1]
        side = "positive" if which == "pos" else "negative"
        words = _ranked_words(
            tokenizer, logits, side, k, adjectives, skip={label.lower() for label in labels}
        )
        if len(words) < k:
            raise CircuitSpecError(f"only {len(words)} {side} adjectives found for '{text}' (wanted {k})")
        out[which] = words
    return out["pos"], out["neg"]


def pair_rows(positive: list[str], negative: list[str], labels: tuple[str, str]) -> list[dict[str, str]]:
    """Every positive × negative pair, in both directions (``len(positive)·len(negative)`` rows each)."""
    pos, neg = labels
    rows = [{"s_ori": pos, "s_con": neg, "w_ori": p, "w_con": n} for p in positive for n in negative]
    rows += [{"s_ori": neg, "s_con": pos, "w_ori": n, "w_con": p} for n in negative for p in positive]
    return rows


def derive_words_command(
    hypothesis: Path, out: Path, k: int, context: str, adjectives: Path | None, labels: tuple[str, str]
) -> int:
    """Load the hypothesis' model, derive the words, write JSONL rows; returns the row count."""
    from circuitspec.engine.models import load_model
    from circuitspec.spec.loader import load_hypothesis

    allowed = None
    if adjectives is not None:
        if not adjectives.is_file():
            raise CircuitSpecError(f"no adjective list at {adjectives}")
        allowed = {w.strip() for w in adjectives.read_text().splitlines() if w.strip()}
    loaded_hypothesis = load_hypothesis(hypothesis)
    loaded = load_model(loaded_hypothesis.spec.model, loaded_hypothesis.base_dir)  # no features spliced
    positive, negative = derive_words(loaded, labels=labels, context=context, k=k, adjectives=allowed)
    rows = pair_rows(positive, negative, labels)
    check_pairs(rows, labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return len(rows)


def register(app: typer.Typer) -> None:
    """Add ``data derive-words`` to ``app``."""
    data_app = typer.Typer(help="Build data files for hypotheses.", no_args_is_help=True)

    @data_app.command("derive-words")
    def derive_words_cli(
        hypothesis: Annotated[Path, typer.Option("--hypothesis", help="hypothesis YAML naming the model")],
        out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write")],
        k: Annotated[int, typer.Option(help="adjectives per sentiment")] = 10,
        context: Annotated[str, typer.Option(help="the contextual prompt's frame")] = "This movie is",
        adjectives: Annotated[
            Path | None, typer.Option(help="allowed adjectives, one a line (default: any lower-case word)")
        ] = None,
        positive_label: Annotated[str, typer.Option(help="the positive sentiment label")] = "Positive",
        negative_label: Annotated[str, typer.Option(help="the negative sentiment label")] = "Negative",
    ) -> None:
        """Derive W_pos / W_neg from the model's top adjectives (paper §5) and write paired rows."""
        import sys

        try:
            count = derive_words_command(
                hypothesis, out, k, context, adjectives, (positive_label, negative_label)
            )
        except CircuitSpecError as error:
            print(str(error), file=sys.stderr)
            raise typer.Exit(2) from None
        print(f"wrote {count} rows to {out}")

    app.add_typer(data_app, name="data")
