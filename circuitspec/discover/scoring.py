"""One corruption's scoring step of ``circuitspec discover`` (score every edge, prune, path-patch the
kept ones) and what a discovery returns; shared by :mod:`.run` and :mod:`.union`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .emit import Discovery
from .prune import DEFAULT_THRESHOLD, KeptEdge, components, select_edges

__all__ = ["Circuit", "DiscoveryResult", "Scored", "header_notes", "measure_circuit", "score_session"]


@dataclass
class Scored:
    """One corruption's scores, kept edges (and every nonzero edge, ranked) and their measured effects."""

    session: Any  # session.Session
    attribution: Any  # engine.attribution_patching.Attribution
    kept: list[KeptEdge]
    ranked: list[KeptEdge]
    effects: list[float]  # path patching of each kept edge alone (explore rows)
    summary: str
    seconds: float  # scoring
    measuring: float  # path patching the kept edges


@dataclass
class DiscoveryResult:
    """The YAML text, the faithfulness curve, the scores and what was kept (``runs``: one per
    corruption when there are several; ``attribution`` is then the first one's)."""

    yaml_text: str
    curve: dict[str, Any]
    attribution: Any  # engine.attribution_patching.Attribution
    kept: list[KeptEdge]
    discovery: Discovery
    seconds: dict[str, float]
    runs: list[Any] = field(default_factory=list)  # union.CorruptionRun, several corruptions only


@dataclass
class Circuit:
    """The kept edges' components, their mean ablations, the faithfulness curve and its value at the
    kept size (what the emitted circuit-level claims are set from)."""

    components: list[str]
    ablations: Any  # measure.ablation_effects
    curve: dict[str, Any]
    faithfulness: float
    seconds: float


def measure_circuit(ctx: Any, kept: list[KeptEdge], ranking: list[KeptEdge], n_edges: int) -> Circuit:
    """Mean-ablate the kept edges' components and draw the faithfulness curve over ``ranking``."""
    from circuitspec.engine.progress import phase

    from .curve import faithfulness_curve
    from .measure import ablation_effects

    parts = components(kept)
    with phase(f"ablating {len(parts)} components and the faithfulness curve", "measured"):
        started = time.perf_counter()
        ablations = ablation_effects(ctx, parts)  # clean prompts only: the same under every corruption
        curve = faithfulness_curve(ctx, ranking, n_edges, extra=[len(kept)])
    at_kept = next((p["faithfulness"] for p in curve["points"] if p["edges"] == len(kept)), 0.0)
    return Circuit(parts, ablations, curve, at_kept, time.perf_counter() - started)


def header_notes(added: dict[str, float] | None, corrupt: str | None = None) -> list[str]:
    """The emitted file's header notes: a split discovery added, a corruption it replaced."""
    notes = [f"The source has no data.split: discovery added {added}."] if added else []
    if corrupt is not None:
        notes.append(f"Corruption from --corrupt {' '.join(corrupt.split())}, not the source's.")
    return notes


def _steps_callback() -> Any:
    from circuitspec.engine.progress import active_log

    log = active_log()
    return log.steps("scoring passes / jobs") if log is not None else None


def _rule(top_k: int | None, threshold: float | None) -> str:
    """The pruning rule in words (the summary line)."""
    if top_k is not None:
        return f"top {top_k}"
    return f"|score| >= {threshold or DEFAULT_THRESHOLD:g} x |clean - corrupted|"


def score_session(
    session: Any, score: Any, method: str, steps: int, top_k: int | None, threshold: float | None
) -> Scored:
    """Score every edge on the session's prompts, prune, and path-patch each kept edge."""
    from circuitspec.engine.progress import phase

    from .measure import edge_effects

    ctx = session.ctx
    started = time.perf_counter()
    with phase(f"scoring edges ({method}, {len(ctx.prompts)} prompts)", "edges scored"):
        attribution = score(ctx, steps=steps, progress=_steps_callback())
    seconds = time.perf_counter() - started
    kept = select_edges(attribution, top_k=top_k, threshold=threshold)
    ranked = select_edges(attribution, top_k=int(attribution.graph.valid.sum()))
    started = time.perf_counter()
    with phase(f"path patching {len(kept)} kept edges", "measured"):
        effects = edge_effects(ctx, kept)
    summary = _summary(attribution, session.split, kept, ranked, _rule(top_k, threshold))
    return Scored(
        session, attribution, kept, ranked, effects, summary, seconds, time.perf_counter() - started
    )


def _summary(attribution: Any, split: str, kept: list[KeptEdge], ranked: list[KeptEdge], rule: str) -> str:
    """How the edges were scored and kept, one line (the YAML's header, the printed table)."""
    steps = f", {attribution.steps} steps" if attribution.method not in ("eap", "edge-patching") else ""
    return (
        f"{attribution.method}{steps} on the {split} rows ({attribution.n_prompts} prompts, clean "
        f"{attribution.clean:.3g}, corrupted {attribution.corrupt:.3g}); kept {len(kept)} of "
        f"{len(ranked)} nonzero edges ({rule})."
    )
