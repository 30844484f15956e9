"""Which scored edges a discovered circuit keeps, and each kept edge as a circuitspec path.

Default: every edge whose |score| is at least :data:`DEFAULT_THRESHOLD` of the total effect
``|mean clean − mean corrupted|`` (scores are in metric units, so the threshold reads as "this edge
alone would move the metric by 5 % of what the corruption moves it"); ``--top-k`` keeps the k
largest instead. An edge whose score comes (≥ :data:`PIN_SHARE`) from one named role's position is
pinned to it (``embed@s_con -> L0H0.v@s_con``), otherwise it acts at every position.
"""

from __future__ import annotations

from dataclasses import dataclass

from circuitspec.engine.attribution_patching import OTHER, Attribution
from circuitspec.errors import CircuitSpecError

__all__ = ["DEFAULT_THRESHOLD", "PIN_SHARE", "KeptEdge", "check_selection", "components", "select_edges"]

DEFAULT_THRESHOLD = 0.05
PIN_SHARE = 0.9
_ZERO = 1e-9  # relative to the total effect: edges below it are exactly unused, never kept


@dataclass(frozen=True)
class KeptEdge:
    """A kept edge: sender, receiver (``L1H0.v``, ``MLP1``, ``logits``), score, and its role pin."""

    sender: str
    receiver: str
    score: float
    role: str | None

    @property
    def path(self) -> str:
        """The edge as a circuitspec path (``MLP0@label -> L1H0.v@label``, ``L1H0@end -> logits``)."""
        at = f"@{self.role}" if self.role else ""
        receiver = self.receiver if self.receiver == "logits" else f"{self.receiver}{at}"
        return f"{self.sender}{at} -> {receiver}"

    @property
    def components(self) -> list[str]:
        """The heads and MLPs the edge joins (``L1H0.v`` counts as ``L1H0``)."""
        return [n.split(".")[0] for n in (self.sender, self.receiver) if n not in ("embed", "logits")]


def _pin(buckets: dict[str, float], receiver: str) -> str | None:
    """The role an edge acts at, when one role's position carries at least PIN_SHARE of it."""
    total = sum(abs(v) for v in buckets.values())
    if total == 0:
        return None
    role, value = max(buckets.items(), key=lambda kv: abs(kv[1]))
    if role == OTHER or abs(value) < PIN_SHARE * total:
        return None
    return role


def check_selection(top_k: int | None, threshold: float | None) -> None:
    """One line for a pruning rule that cannot be applied (checked before the model loads)."""
    if top_k is not None and threshold is not None:
        raise CircuitSpecError("--top-k and --threshold both given: choose one")
    if top_k is not None and top_k < 1:
        raise CircuitSpecError(f"--top-k {top_k}: keep at least one edge")
    if threshold is not None and not 0 < threshold <= 1:
        raise CircuitSpecError(f"--threshold {threshold}: a share of the total effect in (0, 1]")


def select_edges(
    attribution: Attribution, *, top_k: int | None = None, threshold: float | None = None
) -> list[KeptEdge]:
    """The kept edges, strongest first (``top_k`` or ``threshold``; default: the default threshold)."""
    check_selection(top_k, threshold)
    scale = abs(attribution.clean - attribution.corrupt)
    if scale == 0:
        raise CircuitSpecError(
            "clean and corrupted prompts give the same metric: there is no effect to discover"
        )
    ranked = [e for e in attribution.ranked() if abs(e[2]) > _ZERO * scale]
    if top_k is not None:
        chosen = ranked[:top_k]
    else:
        cut = (DEFAULT_THRESHOLD if threshold is None else threshold) * scale
        chosen = [e for e in ranked if abs(e[2]) >= cut]
    return [KeptEdge(s, r, score, _pin(buckets, r)) for s, r, score, buckets in chosen]


def components(edges: list[KeptEdge]) -> list[str]:
    """The heads and MLPs of ``edges``, in layer order (heads before their layer's MLP)."""
    found = {c for e in edges for c in e.components}

    def order(name: str) -> tuple[int, int, int]:
        if name.startswith("MLP"):
            return (int(name[3:]), 1, 0)
        layer, head = name[1:].split("H")
        return (int(layer), 0, int(head))

    return sorted(found, key=order)
