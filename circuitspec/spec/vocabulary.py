"""Words the model's tokenizer does not know: a bad-input error, never a silent unknown token.

A WordPiece or word-level tokenizer (MiniLM / BERT, the toy models) turns a word outside its
vocabulary into one unknown token (``[UNK]``, ``<unk>``), and every prompt holding it would then be
measured on a token that means nothing. :func:`check_vocabulary` fills every template (its text,
answers, reference and corrupted twin) with every row and names the first unknown word with its
template and row. Byte-level tokenizers (GPT-2, Llama) have no unknown token and never fail here.
The tokenizer is passed as its ``unknown_words(text)`` method, so this stays torch- and model-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from circuitspec.errors import CircuitSpecError

from .schema import DataSpec, TemplateSpec
from .templates import fill, parse_template

__all__ = ["check_vocabulary"]

UnknownWords = Callable[[str], list[str]]


def _filled(pattern: str, row: dict[str, str]) -> str:
    return "".join(piece for piece, _ in fill(parse_template(pattern), row))


def _texts(template: TemplateSpec, data: DataSpec, row: dict[str, str]) -> list[tuple[str, str]]:
    """``(what, text)`` of everything one row puts through the tokenizer for one template."""
    patterns = [
        ("prompt", template.text),
        ("desired answer", template.desired),
        ("undesired answer", template.undesired),
        ("reference", template.reference),
    ]
    texts = [(what, _filled(pattern, row)) for what, pattern in patterns if pattern]
    corruption = template.corrupt or data.corrupt
    if corruption is not None and corruption.set:
        twin = {**row, **{slot: _filled(value, row) for slot, value in corruption.set.items()}}
        texts.append(("corrupted prompt", _filled(template.text, twin)))
        for what, pattern in (("desired", corruption.desired), ("undesired", corruption.undesired)):
            if pattern:
                texts.append((f"corrupted {what} answer", _filled(pattern, twin)))
    return texts


def check_vocabulary(data: DataSpec, rows: Sequence[Any], unknown_words: UnknownWords) -> None:
    """Raise a one-line :class:`CircuitSpecError` at the row's line naming the first word that
    ``unknown_words`` reports, with its template; rows are :class:`~.rows.DataRow` (or plain dicts)."""
    seen: set[str] = set()
    for template in data.templates:
        for index, row in enumerate(rows):
            for what, text in _texts(template, data, row):
                if text in seen:
                    continue
                seen.add(text)
                unknown = unknown_words(text)
                if unknown:
                    file = getattr(row, "file", None)
                    row_name = "this row" if file else f"row {index + 1}"
                    raise CircuitSpecError(
                        f"word {unknown[0]!r} is not in the tokenizer's vocabulary (it would become the "
                        f"unknown token): {row_name}, template '{template.id}', {what} {text!r}",
                        file=file,
                        line=getattr(row, "line", None),
                        col=getattr(row, "col", None),
                    )
