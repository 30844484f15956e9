"""Shared construction helpers for planted-circuit models (torch imported only inside functions).

A planted model is a HookedTransformer (no LayerNorm, all weights zeroed) whose residual stream
is split into named one-hot subspaces (:class:`Layout`); each model module then writes exactly
the weights its circuit needs. Every parameter not written stays zero, so components outside the
circuit provably contribute nothing (a head with ``W_O = 0`` and ``b_O = 0`` writes exactly 0).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from circuitspec.errors import CircuitSpecError
from circuitspec.spec.schema import ModelShape

if TYPE_CHECKING:  # pragma: no cover
    from circuitspec.tokenizer import TextTokenizer

__all__ = [
    "SPECIALS",
    "Layout",
    "blank_model",
    "check_checkpoint",
    "random_qkv",
    "vocabulary",
    "word_tokenizer",
]

SPECIALS = ("<bos>", "<pad>", "<unk>")


@dataclass
class Layout:
    """Named, disjoint slices of the residual stream, allocated in order."""

    blocks: dict[str, tuple[int, int]] = field(default_factory=dict)
    size: int = 0

    def add(self, name: str, width: int) -> Layout:
        self.blocks[name] = (self.size, self.size + width)
        self.size += width
        return self

    def dim(self, name: str, offset: int = 0) -> int:
        """The residual dimension ``offset`` inside block ``name``."""
        start, stop = self.blocks[name]
        if not 0 <= offset < stop - start:
            raise IndexError(f"{name}[{offset}] is outside its block of width {stop - start}")
        return start + offset

    def slice(self, name: str) -> slice:
        start, stop = self.blocks[name]
        return slice(start, stop)


def vocabulary(words: Sequence[str]) -> list[str]:
    """Special tokens first (``<bos>`` = 0, ``<pad>`` = 1, ``<unk>`` = 2), then ``words``."""
    if len(set(words)) != len(words):
        raise ValueError("duplicate word in a planted vocabulary")
    return [*SPECIALS, *words]


def word_tokenizer(vocab: Sequence[str]) -> TextTokenizer:
    """A whitespace-split word-level tokenizer over ``vocab`` (built in code, no files)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from circuitspec.tokenizer import TextTokenizer

    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return TextTokenizer(
        backend=backend,
        bos_id=vocab.index("<bos>"),
        pad_id=vocab.index("<pad>"),
        eos_id=None,
    )


def blank_model(shape: ModelShape, d_head: int) -> Any:
    """A HookedTransformer of ``shape`` with every parameter set to zero (no LayerNorm, relu MLPs)."""
    import torch

    assert shape.d_vocab is not None and shape.n_ctx is not None, "planted shapes name d_vocab and n_ctx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformer_lens import HookedTransformer, HookedTransformerConfig

        cfg = HookedTransformerConfig(
            n_layers=shape.n_layers,
            n_heads=shape.n_heads,
            d_model=shape.d_model,
            d_head=d_head,
            d_mlp=shape.d_mlp,
            d_vocab=shape.d_vocab,
            n_ctx=shape.n_ctx,
            act_fn="relu",
            normalization_type=None,
            attn_only=shape.d_mlp is None,
            use_attn_scale=False,  # attention scores are exactly q·k: the planted scales are explicit
            positional_embedding_type="standard",
            default_prepend_bos=False,
            device="cpu",
            seed=0,
        )
        model = HookedTransformer(cfg)
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
    model.eval()
    return model


def random_qkv(model: Any, layer: int, head: int, seed: int) -> None:
    """Give an irrelevant head seeded random Q/K/V weights (so it attends and has nonzero z).

    Its ``W_O`` stays zero: whatever it attends to, it writes nothing.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    attn = model.blocks[layer].attn
    with torch.no_grad():
        for weight in (attn.W_Q, attn.W_K, attn.W_V):
            weight[head] = torch.randn(weight[head].shape, generator=gen)


def check_checkpoint(name: str, checkpoint: int | str | None) -> None:
    """Planted models have one set of weights: only the default checkpoint exists."""
    if checkpoint not in (None, "default"):
        raise CircuitSpecError(f"bundled model '{name}' has no checkpoint '{checkpoint}' (valid: default)")
