"""``zoo.induction``: a previous-token head feeding an induction head through its key.

Task: ``<bos> f0 A B f1 f2 A`` → predict ``B``. Residual layout (d_model 64): ``tok`` (one-hot
token, 18) | ``pos`` (one-hot position, 10) | ``prev`` (previous token, 18) | ``out`` (answer, 18).

True circuit::

    L0H0 (prev-token head): query pos p, key pos p-1; copies tok → prev
    L1H1 (induction head):  query = tok (from embed), key = prev (from L0H0), value = tok;
                            writes the attended token to out; W_U reads only out

Everything else writes exactly nothing: L0H1 is a *decoy* previous-token head (same pattern,
``W_O = 0``); the other 13 heads (8 per layer: a large pool, so random-circuit baselines mean
something) have seeded random Q/K/V and ``W_O = 0``.
"""

from __future__ import annotations

from typing import Any

from circuitspec.spec.schema import ModelShape

from ._build import Layout, blank_model, check_checkpoint, random_qkv, vocabulary, word_tokenizer

NAME = "zoo.induction"
WORDS = (
    "red", "blue", "green", "gold", "cat", "dog", "fox", "owl",
    "sun", "moon", "star", "rain", "one", "two", "six",
)  # fmt: skip
VOCAB = vocabulary(WORDS)
N_CTX = 10
LAYOUT = Layout().add("tok", len(VOCAB)).add("pos", N_CTX).add("prev", len(VOCAB)).add("out", len(VOCAB))
SHAPE = ModelShape(n_layers=2, n_heads=8, d_model=LAYOUT.size, d_mlp=None, d_vocab=len(VOCAB), n_ctx=N_CTX)
D_HEAD = max(len(VOCAB), N_CTX)
ATTN_SCALE = 30.0  # score gap between the planted key and every other key
UNEMBED_SCALE = 4.0  # logit of the copied token (clean logit diff ≈ this)

PREV_TOKEN_HEAD = (0, 0)
DECOY_PREV_TOKEN_HEAD = (0, 1)
INDUCTION_HEAD = (1, 1)
CIRCUIT_HEADS = (PREV_TOKEN_HEAD, INDUCTION_HEAD)
IRRELEVANT_HEADS = tuple(
    (layer, head)
    for layer in range(SHAPE.n_layers)
    for head in range(SHAPE.n_heads)
    if (layer, head) not in (*CIRCUIT_HEADS, DECOY_PREV_TOKEN_HEAD)
)  # seeded random Q/K/V, W_O = 0


def _previous_token_qkv(attn: Any, head: int) -> None:
    """Query at position p matches the key of position p - 1; the value is the token."""
    for p in range(N_CTX):
        attn.W_Q[head, LAYOUT.dim("pos", p), p] = ATTN_SCALE
        if p + 1 < N_CTX:
            attn.W_K[head, LAYOUT.dim("pos", p), p + 1] = 1.0
    for t in range(len(VOCAB)):
        attn.W_V[head, LAYOUT.dim("tok", t), t] = 1.0


def build() -> Any:
    """Construct the HookedTransformer with the planted induction circuit."""
    import torch

    model = blank_model(SHAPE, D_HEAD)
    with torch.no_grad():
        for t in range(len(VOCAB)):
            model.embed.W_E[t, LAYOUT.dim("tok", t)] = 1.0
            model.unembed.W_U[LAYOUT.dim("out", t), t] = UNEMBED_SCALE
        for p in range(N_CTX):
            model.pos_embed.W_pos[p, LAYOUT.dim("pos", p)] = 1.0

        layer, head = PREV_TOKEN_HEAD
        attn0 = model.blocks[layer].attn
        _previous_token_qkv(attn0, head)
        for t in range(len(VOCAB)):
            attn0.W_O[head, t, LAYOUT.dim("prev", t)] = 1.0
        _previous_token_qkv(attn0, DECOY_PREV_TOKEN_HEAD[1])  # attends like L0H0, W_O stays 0

        layer, head = INDUCTION_HEAD
        attn1 = model.blocks[layer].attn
        for t in range(len(VOCAB)):
            attn1.W_Q[head, LAYOUT.dim("tok", t), t] = ATTN_SCALE
            attn1.W_K[head, LAYOUT.dim("prev", t), t] = 1.0
            attn1.W_V[head, LAYOUT.dim("tok", t), t] = 1.0
            attn1.W_O[head, t, LAYOUT.dim("out", t)] = 1.0

    for seed, (layer, head) in enumerate(IRRELEVANT_HEADS):
        random_qkv(model, layer, head, seed=100 + seed)
    return model


def load(checkpoint: int | str | None = None) -> tuple[Any, Any]:
    check_checkpoint(NAME, checkpoint)
    return build(), word_tokenizer(VOCAB)
