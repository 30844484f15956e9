"""Embedding lens (encoders): how close each layer's residual stream already is to the final embedding.

Entry point: :func:`embedding_lens`. For every residual site (``embed`` = the embedding output, then
``L<l>`` = the output of block ``l``, which in a post-LN BERT is ``blocks.l.hook_normalized_resid_post``)
the token states are pooled exactly as the model pools its last layer (mean over real tokens or CLS)
and compared by cosine with the model's final sentence embedding — the encoder analogue of the
logit lens. The last site equals the final embedding up to normalisation, so its cosine is 1.
"""

from __future__ import annotations

import torch

from ..context import RunContext

__all__ = ["embedding_lens", "embedding_lens_sites"]


def embedding_lens_sites(n_layers: int) -> list[tuple[str, str, int]]:
    """``(label, hook name, x)`` for the embedding output and every block's output (x = layers done)."""
    sites = [("embed", "blocks.0.hook_resid_pre", 0)]
    sites += [
        (f"L{layer}", f"blocks.{layer}.hook_normalized_resid_post", layer + 1) for layer in range(n_layers)
    ]
    return sites


def embedding_lens(ctx: RunContext, reference: str = "final") -> dict[str, torch.Tensor]:
    """label → ``[n]`` cosine between the pooled residual at that site and the final embedding.

    ``reference="final"`` compares with the prompt's own final embedding; ``"reference"`` with the
    embedding of the template's ``reference`` text (how early the question-answer match appears).
    """
    adapter = ctx.adapter
    sites = embedding_lens_sites(adapter.arch.n_layers)
    final, cache = ctx.clean([hook for _, hook, _ in sites])
    target = final if reference == "final" else ctx.reference()
    mask = ctx.attention_mask(len(ctx.prompts))  # the mask the clean run itself used
    out: dict[str, torch.Tensor] = {}
    for label, hook, _ in sites:
        pooled = adapter.pool(cache[hook], mask)
        out[label] = torch.nn.functional.cosine_similarity(
            pooled.float(), target.float().to(pooled.device), dim=-1
        )
    return out
