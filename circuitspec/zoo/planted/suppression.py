"""``zoo.suppression``: a mover head copies the name; a copy-suppression head pushes it back down.

Task: ``<bos> f1 NAME f2 f3 to`` → predict ``NAME`` over the filler ``f2``. Residual layout
(d_model 38): ``tok`` (one-hot token, 18) | ``const`` (1 on every token) | ``is_name`` (1 on
names) | ``pred`` (the predicted token, read by W_U, 18).

True circuit::

    L0H0 (mover, positive):      query = const, key = is_name: attends end → NAME;
                                 copies tok → pred (direct effect +UNEMBED_SCALE)
    L1H0 (suppressor, negative): query = pred (from L0H0), key = tok (from embed): attends to the
                                 token being predicted; writes -SUPPRESSION × that token into pred
                                 (direct effect -SUPPRESSION × UNEMBED_SCALE)

Clean logit diff = UNEMBED_SCALE × (1 - SUPPRESSION) = 2.4. Ablating L1H0 *raises* it to 4.
L0H1 and L1H1 have seeded random Q/K/V and ``W_O = 0``: they write exactly nothing.
"""

from __future__ import annotations

from typing import Any

from circuitspec.spec.schema import ModelShape

from ._build import Layout, blank_model, check_checkpoint, random_qkv, vocabulary, word_tokenizer

NAME = "zoo.suppression"
NAMES = ("ann", "bob", "cal", "dee", "eve", "fay", "gus", "hal")
FILLERS = ("saw", "met", "the", "and", "then", "to", "a")
VOCAB = vocabulary((*NAMES, *FILLERS))
N_CTX = 12
LAYOUT = Layout().add("tok", len(VOCAB)).add("const", 1).add("is_name", 1).add("pred", len(VOCAB))
SHAPE = ModelShape(n_layers=2, n_heads=2, d_model=LAYOUT.size, d_mlp=None, d_vocab=len(VOCAB), n_ctx=N_CTX)
D_HEAD = len(VOCAB)
ATTN_SCALE = 30.0
UNEMBED_SCALE = 4.0
SUPPRESSION = 0.4

MOVER_HEAD = (0, 0)
SUPPRESSOR_HEAD = (1, 0)


def build() -> Any:
    """Construct the HookedTransformer with the planted mover + copy-suppression heads."""
    import torch

    model = blank_model(SHAPE, D_HEAD)
    with torch.no_grad():
        for t, word in enumerate(VOCAB):
            model.embed.W_E[t, LAYOUT.dim("tok", t)] = 1.0
            model.embed.W_E[t, LAYOUT.dim("const")] = 1.0
            if word in NAMES:
                model.embed.W_E[t, LAYOUT.dim("is_name")] = 1.0
            model.unembed.W_U[LAYOUT.dim("pred", t), t] = UNEMBED_SCALE

        mover = model.blocks[MOVER_HEAD[0]].attn
        head = MOVER_HEAD[1]
        mover.W_Q[head, LAYOUT.dim("const"), 0] = ATTN_SCALE
        mover.W_K[head, LAYOUT.dim("is_name"), 0] = 1.0
        for t in range(len(VOCAB)):
            mover.W_V[head, LAYOUT.dim("tok", t), t] = 1.0
            mover.W_O[head, t, LAYOUT.dim("pred", t)] = 1.0

        suppressor = model.blocks[SUPPRESSOR_HEAD[0]].attn
        head = SUPPRESSOR_HEAD[1]
        for t in range(len(VOCAB)):
            suppressor.W_Q[head, LAYOUT.dim("pred", t), t] = ATTN_SCALE
            suppressor.W_K[head, LAYOUT.dim("tok", t), t] = 1.0
            suppressor.W_V[head, LAYOUT.dim("tok", t), t] = 1.0
            suppressor.W_O[head, t, LAYOUT.dim("pred", t)] = -SUPPRESSION

    random_qkv(model, 0, 1, seed=300)
    random_qkv(model, 1, 1, seed=301)
    return model


def load(checkpoint: int | str | None = None) -> tuple[Any, Any]:
    check_checkpoint(NAME, checkpoint)
    return build(), word_tokenizer(VOCAB)
