"""EAP (Syed et al. 2023): each edge's ``Δ_sender · ∂metric/∂(receiver input)`` at the clean run.

One forward and one backward pass per batch of prompts. Exact where the metric is linear in the
edge (a linear model, or a path through value vectors with the attention fixed); a saturated
attention pattern has ~0 gradient, so key / query edges of hard heads are missed (use EAP-IG).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from circuitspec.engine.attribution_patching import Attribution, attribution_patching

__all__ = ["score"]


def score(ctx: Any, steps: int = 1, progress: Callable[[int, int], None] | None = None) -> Attribution:
    """Edge and node scores on ``ctx``'s prompts (``steps`` is ignored: one gradient point)."""
    return attribution_patching(ctx, method="eap", progress=progress)
