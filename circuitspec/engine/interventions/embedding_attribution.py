"""Direct effect of heads / MLPs on an encoder's sentence embedding (the encoder analogue of DLA).

Entry point: :func:`direct_embedding_effect`. A post-LN BERT normalises the *whole* residual after
every sublayer, so a component's direct path to the embedding runs through every later LayerNorm.
With each LayerNorm's scale frozen at its clean value, LN is affine and the pooled vector ``p`` splits
exactly into per-component terms. A component's direct effect is its term projected on a unit
direction ``u`` and divided by ``‖p‖`` (the embedding is ``p / ‖p‖`` when the model normalises):
with ``u`` the reference text's embedding this is the component's additive share of
cos(embedding, reference) at fixed ``‖p‖``; with ``u`` the final embedding, its share of the length 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.sites import Site
from circuitspec.spec.nodes import NodeKind

__all__ = ["direct_embedding_effect", "direct_hooks"]


def direct_hooks(n_layers: int) -> list[str]:
    """Activations the direct effect reads from the clean run (LN scales and the final residual)."""
    names = [f"blocks.{layer}.ln{i}.hook_scale" for layer in range(n_layers) for i in (1, 2)]
    return [*names, f"blocks.{n_layers - 1}.hook_normalized_resid_post"]


def _output(ctx: RunContext, site: Site, cache: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int, int]:
    """(the component's write to the residual ``[n, pos, d]``, its layer, first LN index 1|2 it meets)."""
    node = site.node
    act = cache[site.hook_name]
    if node.kind is NodeKind.HEAD and site.hook_name.endswith("hook_z"):
        assert node.layer is not None and node.head is not None
        z = act[:, :, node.head]
        out = ctx.adapter.head_write(node.layer, node.head, z)
        first_ln = 1
    elif node.kind is NodeKind.MLP:
        out = act
        first_ln = 2
    else:
        raise ValueError(f"direct embedding effect of '{node.text}' (valid: heads L<l>H<h>, MLP<l>)")
    if site.positions is not None:  # only the pinned position's write
        keep = torch.zeros(out.shape[:2], dtype=out.dtype, device=out.device)
        keep[torch.arange(out.shape[0]), site.positions.to(out.device)] = 1
        out = out * keep[..., None]
    assert node.layer is not None
    return out, node.layer, first_ln


@torch.inference_mode()
def direct_embedding_effect(ctx: RunContext, sites: Sequence[Site], direction: torch.Tensor) -> torch.Tensor:
    """``[n]``: the summed direct effect of ``sites`` on the embedding along unit ``direction`` ``[n, d]``."""
    adapter = ctx.adapter
    n_layers = adapter.arch.n_layers
    _, cache = ctx.clean([*direct_hooks(n_layers), *(s.hook_name for s in sites)])
    mask = ctx.attention_mask(len(ctx.prompts))  # the mask the clean run itself used
    total = None
    for site in sites:
        write, layer, first_ln = _output(ctx, site, cache)
        for later in range(layer, n_layers):
            for ln_index in (1, 2):
                if later == layer and ln_index < first_ln:
                    continue
                weight = adapter.block_norm_weight(later, ln_index)
                assert weight is not None, "a post-LN encoder's LayerNorms have weights"
                scale = cache[f"blocks.{later}.ln{ln_index}.hook_scale"]
                write = (write - write.mean(-1, keepdim=True)) / scale * weight
        total = write if total is None else total + write
    assert total is not None
    pooled = adapter.pool(total, mask)
    full = adapter.pool(cache[f"blocks.{n_layers - 1}.hook_normalized_resid_post"], mask)
    unit = torch.ones(full.shape[0], device=full.device)
    norm = full.norm(dim=-1) if adapter.arch.normalized_embedding else unit
    return (pooled * direction.to(pooled.device)).sum(-1) / norm
