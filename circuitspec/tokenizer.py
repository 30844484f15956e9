"""One tokenizer interface for every model: a ``tokenizers.Tokenizer`` plus BOS/pad ids.

HF fast tokenizers (GPT-2, Pythia, BERT) expose their ``tokenizers.Tokenizer`` as
``backend_tokenizer``; bundled models ship a ``tokenizer.json``. Character offsets come with
every encoding, which is how template roles find their token positions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

__all__ = ["TextTokenizer"]


@dataclass
class TextTokenizer:
    backend: Tokenizer
    bos_id: int | None  # prepended to every prompt when not None
    pad_id: int
    eos_id: int | None = None
    sep_id: int | None = None  # appended to every prompt when not None (BERT's [SEP])
    chat_template: str | None = None  # the model's Jinja chat template, where it has one (generation)

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and character spans of ``text`` (no special tokens added)."""
        enc = self.backend.encode(text, add_special_tokens=False)
        return list(enc.ids), [(int(start), int(end)) for start, end in enc.offsets]

    def decode(self, ids: list[int]) -> str:
        return self.backend.decode(ids, skip_special_tokens=False)

    @functools.cached_property
    def unk_id(self) -> int | None:
        """The id of the tokenizer model's unknown token (WordPiece ``[UNK]``, word-level ``<unk>``);
        None for byte-level models, which have none (GPT-2's ``unk_token`` alias of EOS is not one)."""
        token = getattr(self.backend.model, "unk_token", None)
        return self.backend.token_to_id(token) if token else None

    def unknown_words(self, text: str) -> list[str]:
        """The pieces of ``text`` the tokenizer maps to its unknown token (none for byte-level ones)."""
        unk = self.unk_id
        if unk is None:
            return []
        enc = self.backend.encode(text, add_special_tokens=False)
        return [text[start:end] for idx, (start, end) in zip(enc.ids, enc.offsets, strict=True) if idx == unk]

    def single_token(self, text: str) -> int | None:
        """The id of ``text`` if it is exactly one token, else None."""
        ids, _ = self.encode(text)
        return ids[0] if len(ids) == 1 else None

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def id_to_token(self, idx: int) -> str | None:
        return self.backend.id_to_token(idx)

    @classmethod
    def from_file(cls, path: str | Path, bos: str | None, pad: str, eos: str | None = None) -> TextTokenizer:
        backend = Tokenizer.from_file(str(path))
        return cls._with_specials(backend, bos, pad, eos)

    @classmethod
    def from_hf(cls, hf_tokenizer, prepend_bos: bool) -> TextTokenizer:
        """Wrap a ``transformers`` fast tokenizer (GPT-2 style: BOS = EOS = <|endoftext|>)."""
        backend = hf_tokenizer.backend_tokenizer
        bos_id = hf_tokenizer.bos_token_id if prepend_bos else None
        pad_id = hf_tokenizer.pad_token_id
        if pad_id is None:
            pad_id = hf_tokenizer.eos_token_id if hf_tokenizer.eos_token_id is not None else 0
        template = getattr(hf_tokenizer, "chat_template", None)
        return cls(
            backend=backend,
            bos_id=bos_id,
            pad_id=int(pad_id),
            eos_id=hf_tokenizer.eos_token_id,
            chat_template=template if isinstance(template, str) else None,
        )

    @classmethod
    def _with_specials(cls, backend: Tokenizer, bos: str | None, pad: str, eos: str | None) -> TextTokenizer:
        def need(token: str) -> int:
            idx = backend.token_to_id(token)
            if idx is None:
                raise ValueError(f"special token '{token}' is not in the tokenizer's vocabulary")
            return idx

        return cls(
            backend=backend,
            bos_id=need(bos) if bos else None,
            pad_id=need(pad),
            eos_id=need(eos) if eos else None,
        )
