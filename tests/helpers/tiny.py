"""Tiny random models, a word-level tokenizer and prompt sets for fast engine tests.

Everything here is seeded and small enough that a forward pass takes milliseconds on CPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit

from circuitspec.engine.prompts import PromptSet
from circuitspec.tokenizer import TextTokenizer

__all__ = ["TINY_WORDS", "make_prompt_set", "make_tiny_encoder", "make_tiny_model", "make_tokenizer"]

# fmt: off
TINY_WORDS = (
    "the", "movie", "was", "good", "bad", "great", "awful", "film", "show", "is", "and", "but",
    "John", "Mary", "gave", "a", "book", "to", "when", "went", "store", "she", "he", "it", "this",
    "that", "nice", "terrible", "fine", "poor", "Positive", "Negative", ":", ".", ",",
)
# fmt: on


def make_tiny_model(
    n_layers: int = 2,
    n_heads: int = 2,
    d_model: int = 16,
    normalization_type: str | None = "LN",
    d_vocab: int = 50,
    seed: int = 0,
    n_ctx: int = 32,
    d_mlp: int | None = None,
    attn_only: bool = False,
):
    """A randomly initialised HookedTransformer (float32, CPU) with non-trivial biases.

    Biases and LN weights are randomised too so tests exercise every term (a freshly
    initialised model has zero biases, which would hide bias-handling bugs).
    """
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
        d_head=d_model // n_heads,
        d_mlp=d_mlp if d_mlp is not None else 4 * d_model,
        d_vocab=d_vocab,
        n_ctx=n_ctx,
        act_fn="gelu_new",
        normalization_type=normalization_type,
        attn_only=attn_only,
        seed=seed,
        device="cpu",
        dtype=torch.float32,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HookedTransformer(cfg)
    _randomise(model, seed)
    return model


def _randomise(model, seed: int) -> None:
    """Random weights, LN scales near 1 and non-zero biases, so every term is exercised."""
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("W_E", "W_pos", "W_U", "W_token_type")) or ".W_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
            elif name.endswith(".w"):
                param.copy_(1.0 + 0.2 * torch.randn(param.shape, generator=gen))
            else:  # biases
                param.copy_(0.1 * torch.randn(param.shape, generator=gen))
    model.eval()


def make_tiny_encoder(
    n_layers: int = 3,
    n_heads: int = 2,
    d_model: int = 16,
    d_vocab: int = 50,
    seed: int = 0,
    n_ctx: int = 32,
    pooling: str = "mean",
    normalize: bool = True,
):
    """A randomly initialised post-LN BERT :class:`SentenceEncoder` (pad id 0), like all-MiniLM's."""
    from transformer_lens import HookedTransformerConfig

    from circuitspec.engine.encoder import PoolingConfig, SentenceEncoder

    cfg = HookedTransformerConfig(
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
        d_head=d_model // n_heads,
        d_mlp=4 * d_model,
        d_vocab=d_vocab,
        n_ctx=n_ctx,
        act_fn="gelu",
        attention_dir="bidirectional",
        normalization_type="LN",
        original_architecture="BertForMaskedLM",
        seed=seed,
        device="cpu",
        dtype=torch.float32,
    )
    model = SentenceEncoder(cfg, PoolingConfig(mode=pooling, normalize=normalize), pad_id=0)
    _randomise(model, seed)
    return model


def make_tokenizer(words: Sequence[str] = TINY_WORDS) -> TextTokenizer:
    """A whitespace word-level tokenizer: ids 0 = <pad>, 1 = <bos>, 2 = <unk>, then ``words``."""
    vocab = {"<pad>": 0, "<bos>": 1, "<unk>": 2}
    for word in words:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = WhitespaceSplit()
    return TextTokenizer(backend=backend, bos_id=1, pad_id=0)


def make_prompt_set(
    d_vocab: int,
    lengths: Sequence[int] = (5, 7, 6, 4),
    seed: int = 0,
    roles: Sequence[str] = ("a", "b"),
    n_corrupted: int = 1,
) -> PromptSet:
    """Random token prompts of varying ``lengths`` (right-padded with id 0), BOS = 1 first.

    Each corrupted twin differs from its clean prompt at ``n_corrupted`` random non-BOS
    positions; roles sit at distinct random positions before the last token; answers are random
    distinct ids.
    """
    gen = torch.Generator().manual_seed(seed)
    n, max_len = len(lengths), max(lengths)
    tokens = torch.zeros(n, max_len, dtype=torch.long)
    corrupt = torch.zeros(n, max_len, dtype=torch.long)
    role_positions = {role: torch.zeros(n, dtype=torch.long) for role in roles}
    for i, length in enumerate(lengths):
        assert length >= len(roles) + 2, "each prompt needs room for BOS, its roles and an end token"
        row = torch.randint(3, d_vocab, (length,), generator=gen)
        row[0] = 1
        tokens[i, :length] = row
        twin = row.clone()
        where = 1 + torch.randperm(length - 1, generator=gen)[:n_corrupted]
        twin[where] = 3 + (
            twin[where] - 3 + 1 + torch.randint(0, d_vocab - 4, (len(where),), generator=gen)
        ) % (d_vocab - 3)
        corrupt[i, :length] = twin
        spots = 1 + torch.randperm(length - 2, generator=gen)[: len(roles)]
        for role, spot in zip(roles, spots, strict=True):
            role_positions[role][i] = spot
    answers = torch.stack([torch.randperm(d_vocab - 3, generator=gen)[:2] + 3 for _ in range(n)])
    return PromptSet(
        tokens=tokens,
        corrupt_tokens=corrupt,
        lengths=torch.tensor(list(lengths), dtype=torch.long),
        role_positions=role_positions,
        desired=answers[:, 0].clone(),
        undesired=answers[:, 1].clone(),
        corrupt_desired=answers[:, 0].clone(),
        corrupt_undesired=answers[:, 1].clone(),
        rows=[{"i": str(i)} for i in range(n)],
        template_ids=["t"] * n,
        pad_id=0,
    )
