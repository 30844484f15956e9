"""λ grids, their scores on train / test / another template, the effectiveness–faithfulness Pareto front
and its plot (the paper's Fig. 2, left), torch-free.

Hand-written front rather than a library's: for a grid of a few dozen points it is one pairwise check.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .config import TrainConfig

__all__ = ["GridPoint", "Scores", "grid_configs", "load_grid", "pareto_front", "plot_front"]


@dataclass(frozen=True)
class Scores:
    """An intervention evaluated on one prompt set: ``E_0`` and ``F`` (both ≤ 0, 0 best), the share of
    prompts flipped both ways (``β = +1`` favours the correct answer, ``β = −1`` the wrong one), the mean
    per-prompt KL and the number of prompts."""

    effectiveness: float
    faithfulness: float
    flipped: float
    kl: float
    n: int


@dataclass
class GridPoint:
    """One λ setting: its config, the count of parameters with |θ| > 0.01, and its scores by set."""

    config: TrainConfig
    count: int
    scores: dict[str, Scores] = field(default_factory=dict)
    on_front: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.as_dict(),
            "count": self.count,
            "on_front": self.on_front,
            "scores": {name: asdict(s) for name, s in self.scores.items()},
        }


def load_grid(path: str | Path) -> list[GridPoint]:
    """The grid a ``circuitspec learn`` run wrote to ``<stem>.pareto.json`` (to redraw or compare it)."""
    import json

    table = json.loads(Path(path).read_text())
    return [
        GridPoint(
            TrainConfig(**point["config"]),
            int(point["count"]),
            {name: Scores(**scores) for name, scores in point["scores"].items()},
            bool(point["on_front"]),
        )
        for point in table["grid"]
    ]


def grid_configs(
    base: TrainConfig, lambda_f: Sequence[float], lambda_m: Sequence[float], margins: Sequence[float]
) -> list[TrainConfig]:
    """Every combination of λ_F × λ_M × m (the paper searches {0, 1, 10, 100} for each)."""
    return [
        replace(base, lambda_f=float(f), lambda_m=float(m_), margin=float(m))
        for f, m_, m in itertools.product(lambda_f, lambda_m, margins)
    ]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """Which (effectiveness, faithfulness) points no other point dominates (both are maximised: a point
    is dominated by one at least as good in both and better in one)."""

    def dominated(a: tuple[float, float]) -> bool:
        return any(b[0] >= a[0] and b[1] >= a[1] and b != a for b in points)

    return [not dominated(p) for p in points]


def plot_front(grid: Sequence[GridPoint], path: str | Path, title: str, sets: Sequence[str]) -> None:
    """Effectiveness (E_0) against faithfulness (F) per λ setting, one marker per evaluation set, the first
    set's points labelled with their λs and its front joined by a line; written as ``path`` (its suffix
    picks the format)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    markers = {0: ("x", "tab:blue"), 1: ("o", "tab:orange"), 2: ("^", "tab:green")}
    for k, name in enumerate(sets):
        pts = [(p.scores[name].faithfulness, p.scores[name].effectiveness) for p in grid if name in p.scores]
        if not pts:
            continue
        marker, colour = markers.get(k, ("s", "tab:gray"))
        ax.scatter(*zip(*pts, strict=True), marker=marker, color=colour, label=name)
        if k == 0:
            for p in grid:
                xy = (p.scores[name].faithfulness, p.scores[name].effectiveness)
                label = f"λF {p.config.lambda_f:g}, λM {p.config.lambda_m:g}, m {p.config.margin:g}"
                ax.annotate(label, xy, fontsize=6, xytext=(3, 3), textcoords="offset points")
            front = sorted(
                (p.scores[name].faithfulness, p.scores[name].effectiveness) for p in grid if p.on_front
            )
            if front:
                ax.plot(*zip(*front, strict=True), color=colour, linewidth=0.8, alpha=0.6)
    ax.set_xlabel("faithfulness F = −mean[KL(run⁺‖clean) + KL(run⁻‖clean)] (nats; 0 best)")
    ax.set_ylabel("effectiveness E₀ (logits; 0 best)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path))
