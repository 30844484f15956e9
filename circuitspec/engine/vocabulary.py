"""The model's tokenizer without its weights (torch-free), so ``validate`` can find unknown words.

A Hugging Face model directory (``model: {path: DIR}`` or a package shipping one, e.g. MiniLM) has a
``tokenizer.json`` that ``tokenizers`` reads alone, and a bundled model may offer its tokenizer alone
(``BundledModel.tokenizer``). GGUF files and hub names need the model loaded for their tokenizer;
``verify`` checks their words after loading, before any pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError
from circuitspec.graph.model_sources import resolve_source
from circuitspec.spec.vocabulary import check_vocabulary
from circuitspec.tokenizer import TextTokenizer

__all__ = ["check_rows_offline", "offline_tokenizer"]


def offline_tokenizer(model_spec: Any, base_dir: Path) -> TextTokenizer | None:
    """The tokenizer of a model directory's ``tokenizer.json``; None when it needs the model loaded
    (or the model is not available here: ``validate`` has already said so where it matters)."""
    from tokenizers import Tokenizer

    if getattr(model_spec, "bundled", None):
        from circuitspec.zoo import BUNDLED

        bundled = BUNDLED.get(model_spec.bundled)
        return bundled.tokenizer() if bundled is not None and bundled.tokenizer is not None else None
    try:
        source = resolve_source(model_spec, base_dir)
    except CircuitSpecError:
        return None
    file = Path(source.location) / "tokenizer.json"
    if source.kind != "path" or not file.is_file():
        return None
    try:
        backend = Tokenizer.from_file(str(file))
    except Exception:  # a file tokenizers cannot read: the loader reports it when the model runs
        return None
    backend.no_padding()  # a saved tokenizer may pad / truncate to a fixed length (MiniLM: 128)
    backend.no_truncation()
    return TextTokenizer(backend=backend, bos_id=None, pad_id=0)


def check_rows_offline(model_spec: Any, data: Any, base_dir: Path, rows: list[Any]) -> bool:
    """Refuse unknown words in ``rows`` (of the ``data`` spec) when the tokenizer of ``model_spec``
    loads without the model; whether it did."""
    tokenizer = offline_tokenizer(model_spec, base_dir)
    if tokenizer is None:
        return False
    check_vocabulary(data, rows, tokenizer.unknown_words)
    return True
