"""What each model backend can run, torch-free, so ``validate`` refuses what ``verify`` would.

The TransformerLens backend runs every claim kind. The nnsight backend (``model: {nnsight: ...}`` or
``backend: nnsight``; ``engine/backends/``) runs the kinds in :data:`NNSIGHT_KINDS`: those made of passes
with hooks on activations a Hugging Face module hands over. It runs each shared key/value head of a
grouped-query model once, as the model does, so one query head's copy (``L21H1.v``) cannot be edited
there: the shared head (``L21KV0.v``) can.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .geometry import kv_group
from .nodes import NodeKind, NodeRef

__all__ = ["NNSIGHT_KINDS", "backend_refusal"]

NNSIGHT_KINDS = (
    "ablation", "activation_patching", "attribution", "scaling", "generation", "behaviour", "attention",
    "logit_lens",
)  # fmt: skip
_ONE_COPY = (NodeKind.HEAD_K, NodeKind.HEAD_V)


def backend_refusal(model: Any, kind: str, targets: Sequence[NodeRef], shape: Any) -> str | None:
    """Why ``model``'s backend cannot run a ``kind`` claim on ``targets`` (None: it can)."""
    if not getattr(model, "uses_nnsight", False):
        return None
    if kind not in NNSIGHT_KINDS:
        return (
            f"the nnsight backend does not run '{kind}' claims (valid: {', '.join(NNSIGHT_KINDS)}); "
            "drop 'nnsight' / 'backend: nnsight' to run it with TransformerLens"
        )
    n_kv, n_heads = getattr(shape, "n_kv_heads", None), int(shape.n_heads)
    for node in targets:
        if node.kind in _ONE_COPY and n_kv and node.head is not None and node.layer is not None:
            shared = next(kv for kv in range(n_kv) if node.head in kv_group(kv, n_heads, n_kv))
            channel = "k" if node.kind is NodeKind.HEAD_K else "v"
            return (
                f"the nnsight backend runs each shared key/value head once: '{node.text}' is one query "
                f"head's copy; name the shared head L{node.layer}KV{shared}.{channel}"
            )
    return None
