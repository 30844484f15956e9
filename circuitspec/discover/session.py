"""A hypothesis' model and exploration prompts, ready for discovery (one run context)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError

__all__ = ["DEFAULT_SPLIT", "Session", "open_session"]

DEFAULT_SPLIT = {"test_fraction": 0.5, "seed": 0}  # added when the hypothesis has no data.split


@dataclass
class Session:
    """What discovery reads: the loaded hypothesis, model, rows of the chosen split, and a context."""

    path: Path
    hypothesis: Any  # LoadedHypothesis
    loaded: Any  # LoadedModel
    split: str  # the rows scored: explore | test | all
    split_added: dict[str, float] | None  # the split used where the hypothesis had none (written out)
    ctx: Any  # RunContext over the chosen rows' prompts
    spec: Any  # the hypothesis spec discovered from: its data.corrupt replaced where --corrupt was given


def open_session(
    path: str | Path,
    split: str = "explore",
    templates: list[str] | None = None,
    loaded_model: Any = None,
    test_fraction: float = DEFAULT_SPLIT["test_fraction"],
    corrupt: Any = None,
) -> Session:
    """Load ``path`` (validated as ``verify`` would), its model, and the prompts of ``split``'s rows.

    A hypothesis without ``data.split`` gets one (``test_fraction``, seed 0), so discovery reads the
    explore rows and the emitted file verifies on the held-out test rows. ``corrupt`` (a
    ``CorruptionSpec``) replaces the file's corruptions, ``data.corrupt`` and every template's, so a
    different counterfactual (the word instead of the label) exercises other parts of the model."""
    from circuitspec.engine.context import RunContext
    from circuitspec.engine.metrics import logit_diff
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.pipeline import load_hypothesis_model
    from circuitspec.spec.loader import load_hypothesis, load_rows
    from circuitspec.spec.schema import SplitSpec
    from circuitspec.spec.splits import select_rows

    if split not in ("explore", "test", "all"):
        raise CircuitSpecError(f"--split {split} is not a split (valid: explore, test, all)")
    hypothesis = load_hypothesis(path)
    compile_hypothesis(hypothesis)  # the file must validate before anything is discovered from it
    rows = load_rows(hypothesis.spec.data, hypothesis.base_dir, hypothesis=hypothesis)
    spec = hypothesis.spec if corrupt is None else _with_corruption(hypothesis.spec, corrupt, rows)
    added = spec.data.split is None
    added_split = {"test_fraction": test_fraction, "seed": DEFAULT_SPLIT["seed"]} if added else None
    data = spec.data
    if added_split:
        data = data.model_copy(update={"split": SplitSpec(test_fraction=test_fraction, seed=0)})
    chosen = select_rows(rows, data, split)
    loaded = loaded_model or load_hypothesis_model(spec.model, hypothesis.base_dir)
    known = {t.id for t in spec.data.templates}
    if templates and set(templates) - known:
        bad = sorted(set(templates) - known)
        raise CircuitSpecError(
            f"--template {', '.join(bad)}: no such template (valid: {', '.join(sorted(known))})"
        )
    prompts = build_prompt_set(data, chosen, loaded.tokenizer, templates or None, seed=data.seed, n=data.n)
    ctx = RunContext(loaded.model, prompts, logit_diff, tokenizer=loaded.tokenizer)
    return Session(Path(path), hypothesis, loaded, split, added_split, ctx, spec)


def _with_corruption(spec: Any, corrupt: Any, rows: list[Any]) -> Any:
    """``spec`` with ``corrupt`` as its only corruption (the templates' own ones dropped); one line
    when it reads a slot some row lacks."""
    from circuitspec.spec.templates import slots_of

    read = [*corrupt.shuffle, *(s for value in corrupt.set.values() for s in slots_of(value))]
    for slot in read:
        if any(slot not in row for row in rows):
            known = sorted(set.intersection(*(set(row) for row in rows))) if rows else []
            raise CircuitSpecError(
                f"--corrupt reads slot '{slot}', which the data rows lack (every row has: {', '.join(known)})"
            )
    templates = [t.model_copy(update={"corrupt": None}) for t in spec.data.templates]
    data = spec.data.model_copy(update={"corrupt": corrupt, "templates": templates})
    return spec.model_copy(update={"data": data})
