"""``circuitspec discover``: score edges on the exploration prompts, prune, measure, write the YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError

from .emit import Discovery, render
from .methods import DEFAULT_METHOD
from .methods import method as scoring_method
from .prune import check_selection
from .scoring import DiscoveryResult, Scored, header_notes, measure_circuit, score_session
from .session import DEFAULT_SPLIT, open_session

__all__ = [
    "FILE_CORRUPTION", "SPLITS", "DiscoveryResult", "Scored", "discover", "is_file_corruption",
    "parse_corruption", "score_session",
]  # fmt: skip

SPLITS = ("explore", "test", "all")
FILE_CORRUPTION = "file"  # `--corrupt file`: the hypothesis file's own corruption


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
    corrupt: str | list[str] | None = None,
) -> DiscoveryResult:
    """Discover a circuit in the hypothesis at ``path``; nothing is written (see the CLI). ``corrupt``
    (``"{shuffle: [w_ori]}"``, a YAML mapping like ``data.corrupt``; ``file``: the file's own)
    replaces the file's corruption; several (a list) are each scored and emitted as one hypothesis
    with a copy of the templates per corruption (:mod:`.union`)."""
    from circuitspec.engine.progress import phase

    score = scoring_method(method)  # every option is checked before the model loads
    _check_options(top_k, threshold, split, test_fraction, steps)
    texts = [corrupt] if isinstance(corrupt, str) else list(corrupt or [])
    corruptions = [parse_corruption(text) for text in texts]
    if len(texts) > 1:
        from .union import discover_union

        return discover_union(
            path, texts, corruptions, score=score, method=method, steps=steps, top_k=top_k,
            threshold=threshold, split=split, templates=templates, test_fraction=test_fraction,
            output=output, command=command, loaded_model=loaded_model,
        )  # fmt: skip
    text = None if not texts or is_file_corruption(texts[0]) else texts[0]
    with phase("loading the model and the exploration prompts", "loaded"):
        session = open_session(
            path, split, templates, loaded_model, test_fraction, corruptions[0] if texts else None
        )
    scored = score_session(session, score, method, steps, top_k, threshold)
    return _finish(path, scored, output, command, text, method)


def _finish(
    path: str | Path, scored: Scored, output: Path, command: str, text: str | None, method: str
) -> DiscoveryResult:
    """Ablate the kept components, draw the faithfulness curve and render the YAML (one corruption)."""
    session, attribution, kept = scored.session, scored.attribution, scored.kept
    ctx, n_edges = session.ctx, int(attribution.graph.valid.sum())
    circuit = measure_circuit(ctx, kept, scored.ranked, n_edges)
    curve = circuit.curve
    timings = {"scoring": scored.seconds, "measuring": scored.measuring + circuit.seconds}
    arch, added = ctx.adapter.arch, session.split_added
    found = Discovery(
        source=Path(path), spec=session.spec, base_dir=Path(session.hypothesis.base_dir),
        split_added=added, command=command, summary=scored.summary,
        edges=kept, edge_effects=scored.effects, components=circuit.components,
        ablation_effects=circuit.ablations, faithfulness=circuit.faithfulness,
        clean=attribution.clean, corrupt=attribution.corrupt, shape=(arch.n_layers, arch.n_heads),
        notes=header_notes(added, text),
        split=session.split,
    )  # fmt: skip
    curve.update(
        {"method": attribution.method, "requested": method, "steps": attribution.steps, "kept": len(kept)}
    )
    return DiscoveryResult(render(found, output), curve, attribution, kept, found, timings)


def is_file_corruption(text: str) -> bool:
    """Whether a ``--corrupt`` value names the hypothesis file's own corruption."""
    return text.strip() == FILE_CORRUPTION


def parse_corruption(text: str | None) -> Any:
    """``--corrupt``'s YAML mapping as a ``CorruptionSpec`` (None: the file's own), one line if bad."""
    if text is None or is_file_corruption(text):
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
            f"'{{set: {{s_con: \"{{s_ori}}\"}}}}', or {FILE_CORRUPTION} ({why})"
        ) from None


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
