"""TransformerLens hook names → the Hugging Face module values nnsight reads and writes (Llama family).

The engine names every activation by its TransformerLens hook (``spec/geometry.hook_name``); this table
says where each lives in a Hugging Face Llama-style decoder (``model.layers[L]``: ``self_attn`` with
``q/k/v/o_proj``, ``post_attention_layernorm``, ``mlp`` with ``down_proj``; ``model.norm``; ``lm_head``)
and how its tensor is viewed so hook functions see TransformerLens' shapes:

- ``hook_z`` is ``o_proj``'s input ``[b, p, heads·d_head]`` viewed ``[b, p, heads, d_head]``;
- ``hook_k`` / ``hook_v`` are ``k_proj`` / ``v_proj`` outputs, one copy per *query* head as
  TransformerLens loads grouped-query attention ungrouped; an edit must change every copy of a shared
  key/value head alike (``L7KV1.v``), since the model computes the shared head once;
- ``hook_pattern`` is the eager attention's weights; ``hook_resid_mid`` the MLP norm's input and
  ``ln_final.hook_scale`` the final RMSNorm's ``sqrt(mean(x²) + eps)``: read only.

nnsight hands values over in execution order, so each site carries its place in the pass (``order``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["HFSite", "hf_site", "site_names"]

View = Literal["plain", "heads", "kv", "pattern", "scale"]

# (suffix after "blocks.L.", module under model.layers[L], input/output, view, editable), in pass order
_BLOCK: tuple[tuple[str, str, str, View, bool], ...] = (
    ("hook_resid_pre", "", "input", "plain", True),
    ("attn.hook_q", "self_attn.q_proj", "output", "heads", True),
    ("attn.hook_k", "self_attn.k_proj", "output", "kv", True),
    ("attn.hook_v", "self_attn.v_proj", "output", "kv", True),
    ("attn.hook_z", "self_attn.o_proj", "input", "heads", True),
    ("hook_attn_out", "self_attn.o_proj", "output", "plain", True),
    ("attn.hook_pattern", "self_attn", "output", "pattern", False),
    ("hook_resid_mid", "post_attention_layernorm", "input", "plain", False),
    ("mlp.hook_post", "mlp.down_proj", "input", "plain", True),
    ("hook_mlp_out", "mlp", "output", "plain", True),
    ("hook_resid_post", "", "output", "plain", True),
)
_BLOCK_NAME = re.compile(r"blocks\.(\d+)\.(.+)")


@dataclass(frozen=True)
class HFSite:
    """Where the activation TransformerLens calls ``hook`` lives in the Hugging Face model."""

    hook: str
    layer: int | None  # None: outside the blocks (embedding, final norm)
    module: str  # dotted path under the causal LM, e.g. "model.layers.3.self_attn.o_proj"
    side: Literal["input", "output"]
    view: View
    editable: bool
    order: tuple[int, int]  # (block, step): nnsight's values come in this order

    @property
    def envoy_path(self) -> list[str | int]:
        """``module`` as attribute names and list indices, for walking the nnsight envoy tree."""
        return [int(p) if p.isdigit() else p for p in self.module.split(".")]


def hf_site(hook: str, n_layers: int) -> HFSite | None:
    """The site of TransformerLens hook ``hook`` (None: this backend has no such activation)."""
    if hook == "hook_embed":
        return HFSite(hook, None, "model.embed_tokens", "output", "plain", True, (-1, 0))
    if hook == "ln_final.hook_scale":
        return HFSite(hook, None, "model.norm", "input", "scale", False, (n_layers, 0))
    match = _BLOCK_NAME.fullmatch(hook)
    if match is None or int(match.group(1)) >= n_layers:
        return None
    layer, suffix = int(match.group(1)), match.group(2)
    for step, (name, module, side, view, editable) in enumerate(_BLOCK):
        if name == suffix:
            path = f"model.layers.{layer}" + (f".{module}" if module else "")
            return HFSite(hook, layer, path, side, view, editable, (layer, step))  # type: ignore[arg-type]
    return None


def site_names(n_layers: int) -> list[str]:
    """Every hook name this backend serves, in pass order."""
    names = ["hook_embed"]
    names += [f"blocks.{layer}.{suffix}" for layer in range(n_layers) for suffix, *_ in _BLOCK]
    return [*names, "ln_final.hook_scale"]
