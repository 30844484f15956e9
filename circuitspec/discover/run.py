"""``circuitspec discover``: score edges on the exploration prompts, prune, measure, write the YAML."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError

from .emit import Discovery, render
from .methods import DEFAULT_METHOD
from .methods import method as scoring_method
from .prune import DEFAULT_THRESHOLD, KeptEdge, check_selection, components, select_edges
from .session import DEFAULT_SPLIT, open_session

__all__ = ["SPLITS", "DiscoveryResult", "discover", "parse_corruption"]

SPLITS = ("explore", "test", "all")


@dataclass
class DiscoveryResult:
    """The YAML text, the faithfulness curve, the scores and what was kept."""

    yaml_text: str
    curve: dict[str, Any]
    attribution: Any  # engine.attribution_patching.Attribution
    kept: list[KeptEdge]
    discovery: Discovery
    seconds: dict[str, float]


def _steps_callback() -> Any:
    from circuitspec.engine.progress import active_log

    log = active_log()
    return log.steps("gradient passes") if log is not None else None


def discover(
    path: str | Path,
    *,
    method: str = DEFAULT_METHOD,
    steps: int = 5,
    top_k: int | None = None,
    threshold: float | None = None,
    split: str = "explore",
    templates: list[str] | None = None,
    test_fraction: float = DEFAULT_SPLIT["test_fraction"],
    output: Path = Path("candidate.yaml"),
    command: str = "circuitspec discover",
    loaded_model: Any = None,
    corrupt: str | None = None,
) -> DiscoveryResult:
    """Discover a circuit in the hypothesis at ``path``; nothing is written (see the CLI). ``corrupt``
    (``"{shuffle: [w_ori]}"``, a YAML mapping like ``data.corrupt``) replaces the file's corruption."""
    from circuitspec.engine.progress import phase

    score = scoring_method(method)  # every option is checked before the model loads
    _check_options(top_k, threshold, split, test_fraction, steps)
    corruption = parse_corruption(corrupt)
    timings: dict[str, float] = {}
    with phase("loading the model and the exploration prompts", "loaded"):
        session = open_session(path, split, templates, loaded_model, test_fraction, corruption)
    ctx = session.ctx
    started = time.perf_counter()
    with phase(f"scoring edges ({method}, {len(ctx.prompts)} prompts)", "edges scored"):
        attribution = score(ctx, steps=steps, progress=_steps_callback())
    timings["scoring"] = time.perf_counter() - started
    kept = select_edges(attribution, top_k=top_k, threshold=threshold)
    ranked = select_edges(attribution, top_k=int(attribution.graph.valid.sum()))
    with phase(f"measuring {len(kept)} kept edges and the faithfulness curve", "measured"):
        from .curve import faithfulness_curve
        from .measure import ablation_effects, edge_effects

        started = time.perf_counter()
        effects = edge_effects(ctx, kept)
        parts = components(kept)
        ablations = ablation_effects(ctx, parts)
        curve = faithfulness_curve(ctx, ranked, int(attribution.graph.valid.sum()), extra=[len(kept)])
        timings["measuring"] = time.perf_counter() - started
    rule = (
        f"top {top_k}"
        if top_k is not None
        else f"|score| >= {threshold or DEFAULT_THRESHOLD:g} x |clean - corrupted|"
    )
    arch, added = ctx.adapter.arch, session.split_added
    found = Discovery(
        source=Path(path), spec=session.spec, base_dir=Path(session.hypothesis.base_dir),
        split_added=added, command=command, summary=_summary(attribution, session.split, kept, ranked, rule),
        edges=kept, edge_effects=effects, components=parts, ablation_effects=ablations,
        faithfulness=next((p["faithfulness"] for p in curve["points"] if p["edges"] == len(kept)), 0.0),
        clean=attribution.clean, corrupt=attribution.corrupt, shape=(arch.n_layers, arch.n_heads),
        notes=_notes(added, corrupt),
        split=session.split,
    )  # fmt: skip
    curve.update({"method": method, "steps": attribution.steps, "kept": len(kept)})
    return DiscoveryResult(render(found, output), curve, attribution, kept, found, timings)


def parse_corruption(text: str | None) -> Any:
    """``--corrupt``'s YAML mapping as a ``CorruptionSpec`` (None: the file's own), one line if bad."""
    if text is None:
        return None
    import yaml
    from pydantic import ValidationError

    from circuitspec.spec.data_models import CorruptionSpec

    try:
        return CorruptionSpec.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as error:
        if isinstance(error, ValidationError):
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            why = f"{where}: {problem['msg']}" if where else problem["msg"]
        else:
            why = str(error).splitlines()[0]
        raise CircuitSpecError(
            f"--corrupt {text!r}: not a corruption like '{{shuffle: [w_ori]}}' or "
            f"'{{set: {{s_con: \"{{s_ori}}\"}}}}' ({why})"
        ) from None


def _notes(added: dict[str, float] | None, corrupt: str | None) -> list[str]:
    """The emitted file's header notes: a split discovery added, a corruption it replaced."""
    notes = [f"The source has no data.split: discovery added {added}."] if added else []
    if corrupt is not None:
        notes.append(f"Corruption from --corrupt {' '.join(corrupt.split())}, not the source's.")
    return notes


def _check_options(
    top_k: int | None, threshold: float | None, split: str, test_fraction: float, steps: int
) -> None:
    """One line for an option that cannot work, before anything loads."""
    check_selection(top_k, threshold)
    if split not in SPLITS or not 0 < test_fraction < 1 or steps < 1:
        raise CircuitSpecError(
            f"--split {split} / --test-fraction {test_fraction} / --steps {steps}: the split is one of "
            f"{', '.join(SPLITS)}, the fraction in (0, 1), at least one step"
        )


def _summary(attribution: Any, split: str, kept: list[KeptEdge], ranked: list[KeptEdge], rule: str) -> str:
    """How the edges were scored and kept, one line (the YAML's header, the printed table)."""
    steps = f", {attribution.steps} steps" if attribution.method != "eap" else ""
    return (
        f"{attribution.method}{steps} on the {split} rows ({attribution.n_prompts} prompts, clean "
        f"{attribution.clean:.3g}, corrupted {attribution.corrupt:.3g}); kept {len(kept)} of "
        f"{len(ranked)} nonzero edges ({rule})."
    )
