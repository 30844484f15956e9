"""``zoo.label_mover``: an MLP writes a sentiment feature at the label; a head moves it to the end.

Task: ``<bos> f1 LABEL f2 f3 so`` → `` yes`` when LABEL is a positive word, `` no`` when negative.
Residual layout (d_model 26): ``tok`` (one-hot token, 22) | ``const`` (1 on every token) |
``is_label`` (1 on sentiment words) | ``sentiment`` (written by MLP0) | ``verdict`` (read by W_U).

True circuit (two hops)::

    MLP0 @label:  neuron 0 = relu(positive word), neuron 1 = relu(negative word);
                  writes +1 / -1 into `sentiment`
    L1H0 (mover): query = const, key = is_label (both from embed): attends end → label;
                  value = sentiment (from MLP0); writes it into `verdict`
    W_U:          verdict → +logit(yes), -logit(no)

Everything else writes exactly nothing: L1H1 is a *decoy* (same attention as L1H0, ``W_O = 0``);
L0H0, L0H1 have seeded random Q/K/V and ``W_O = 0``; MLP1 and MLP0's neurons 2, 3 are all zero.
"""

from __future__ import annotations

from typing import Any

from circuitspec.spec.schema import ModelShape

from ._build import Layout, blank_model, check_checkpoint, random_qkv, vocabulary, word_tokenizer

NAME = "zoo.label_mover"
POSITIVE = ("great", "good", "fine", "nice")
NEGATIVE = ("awful", "bad", "poor", "sad")
ANSWERS = ("yes", "no")
FILLERS = ("the", "movie", "film", "was", "it", "very", "and", "plot")
MARKER = "so"
VOCAB = vocabulary((*POSITIVE, *NEGATIVE, *ANSWERS, MARKER, *FILLERS))
N_CTX = 12
LAYOUT = (
    Layout().add("tok", len(VOCAB)).add("const", 1).add("is_label", 1).add("sentiment", 1).add("verdict", 1)
)
SHAPE = ModelShape(n_layers=2, n_heads=2, d_model=LAYOUT.size, d_mlp=4, d_vocab=len(VOCAB), n_ctx=N_CTX)
D_HEAD = 4
ATTN_SCALE = 30.0
UNEMBED_SCALE = 2.0  # logit(yes) - logit(no) = 2 * UNEMBED_SCALE * sentiment

MOVER_HEAD = (1, 0)
DECOY_HEAD = (1, 1)


def build() -> Any:
    """Construct the HookedTransformer with the planted MLP → mover-head circuit."""
    import torch

    model = blank_model(SHAPE, D_HEAD)
    tok = {w: i for i, w in enumerate(VOCAB)}
    with torch.no_grad():
        for t in range(len(VOCAB)):
            model.embed.W_E[t, LAYOUT.dim("tok", t)] = 1.0
            model.embed.W_E[t, LAYOUT.dim("const")] = 1.0
        for word in (*POSITIVE, *NEGATIVE):
            model.embed.W_E[tok[word], LAYOUT.dim("is_label")] = 1.0

        mlp = model.blocks[0].mlp
        for neuron, (words, sign) in enumerate(((POSITIVE, 1.0), (NEGATIVE, -1.0))):
            for word in words:
                mlp.W_in[LAYOUT.dim("tok", tok[word]), neuron] = 1.0
            mlp.W_out[neuron, LAYOUT.dim("sentiment")] = sign

        attn = model.blocks[1].attn
        for _, head in (MOVER_HEAD, DECOY_HEAD):
            attn.W_Q[head, LAYOUT.dim("const"), 0] = ATTN_SCALE
            attn.W_K[head, LAYOUT.dim("is_label"), 0] = 1.0
            attn.W_V[head, LAYOUT.dim("sentiment"), 0] = 1.0
        attn.W_O[MOVER_HEAD[1], 0, LAYOUT.dim("verdict")] = 1.0  # the decoy's W_O stays 0

        model.unembed.W_U[LAYOUT.dim("verdict"), tok["yes"]] = UNEMBED_SCALE
        model.unembed.W_U[LAYOUT.dim("verdict"), tok["no"]] = -UNEMBED_SCALE

    random_qkv(model, 0, 0, seed=200)
    random_qkv(model, 0, 1, seed=201)
    return model


def load(checkpoint: int | str | None = None) -> tuple[Any, Any]:
    check_checkpoint(NAME, checkpoint)
    return build(), word_tokenizer(VOCAB)
