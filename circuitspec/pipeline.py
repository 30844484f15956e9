"""`circuitspec verify`: YAML → spec → graph → engine → stats → reports, and the exit code.

Heavy imports (torch, TransformerLens) happen inside :func:`run_verification`, only once a
model actually has to run.
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Verification",
    "default_report_dir",
    "exit_code",
    "free_model_memory",
    "load_hypothesis_model",
    "run_verification",
    "verify",
]


@dataclass
class Verification:
    """Everything one verification produced, in memory (reports are written from this)."""

    hypothesis: Any  # LoadedHypothesis
    graph: Any  # CircuitGraph
    model_identity: dict
    measurements: dict[str, Any]  # claim id -> Measurement
    outcomes: list[Any]  # ClaimOutcome, in claim order
    correction: str
    seed: int
    checkpoint: int | str | None = None
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)

    @property
    def verdicts(self) -> dict[str, str]:
        return {o.claim_id: o.verdict for o in self.outcomes}


def default_report_dir(hypothesis_path: Path, name: str, checkpoint: int | str | None = None) -> Path:
    """``reports/<hypothesis name>/`` beside the hypotheses folder's project (cwd), per checkpoint."""
    base = Path("reports") / name
    return base if checkpoint is None else base / f"checkpoint-{checkpoint}"


def run_verification(
    path: str | Path,
    *,
    checkpoint: int | str | None = None,
    seed: int | None = None,
    progress: bool = True,
    loaded_model: Any = None,
) -> Verification:
    """Load, compile, run and evaluate every claim of one hypothesis file."""
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis, load_rows
    from circuitspec.stats import adjust, evaluate_claim

    started = time.perf_counter()
    hypothesis = load_hypothesis(path)
    spec = hypothesis.spec
    seed = spec.seed if seed is None else seed
    checkpoint = checkpoint if checkpoint is not None else spec.model.checkpoint
    graph = compile_hypothesis(hypothesis)  # validated against the declared / known shape first
    rows = load_rows(spec.data, hypothesis.base_dir)

    from circuitspec.engine.planner import run_claims

    model = loaded_model or load_hypothesis_model(spec.model, hypothesis.base_dir, checkpoint)
    _choose_cpu_threads(model.model)
    if model.shape != graph.shape:  # the weights are the final word on the shape
        graph = compile_hypothesis(hypothesis, shape=model.shape)
    measurements = run_claims(graph, model, rows, hypothesis.base_dir, progress=progress, seed=seed)

    outcomes = []
    for claim in graph.claims:
        outcomes.append(
            evaluate_claim(measurements[claim.id], claim.expectation, confidence=claim.confidence, seed=seed)
        )
    correction = adjust(outcomes, method=spec.multiple_comparisons)
    return Verification(
        hypothesis=hypothesis,
        graph=graph,
        model_identity=dict(model.identity),
        measurements=measurements,
        outcomes=outcomes,
        correction=correction,
        seed=seed,
        checkpoint=checkpoint,
        seconds=time.perf_counter() - started,
    )


def load_hypothesis_model(model_spec: Any, base_dir: Path, checkpoint: int | str | None = None) -> Any:
    """The ``LoadedModel`` a hypothesis' ``model:`` names, with its declared dictionaries spliced in.

    :func:`circuitspec.engine.models.load_model` only loads; feature nodes need the transcoders / SAEs
    spliced (:func:`circuitspec.features.splice.with_dictionaries`), so every run goes through here.
    """
    from circuitspec.engine.models import load_model
    from circuitspec.features.splice import with_dictionaries

    loaded = load_model(model_spec, Path(base_dir), checkpoint=checkpoint)
    return with_dictionaries(loaded, model_spec, Path(base_dir))


def free_model_memory() -> None:
    """Collect garbage and return cached GPU memory (only if torch is already imported)."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _choose_cpu_threads(model: Any) -> None:
    """Honour ``CIRCUITSPEC_THREADS`` (torch's intra-op threads); otherwise keep torch's default.

    Measured on the 2-core machines this project targets (toy hypothesis, claims only): with both
    cores free, 2 threads 2.7 s vs 1 thread 4.5 s; with another job on the machine, 1 thread 3.5 s
    vs 2 threads 23 s. So the default stays, and the test suite, which runs two pytest workers on the
    two cores, sets ``CIRCUITSPEC_THREADS=1`` (tests/conftest.py).
    """
    import os

    import torch

    requested = os.environ.get("CIRCUITSPEC_THREADS")
    if requested and requested.isdigit() and int(requested) > 0:
        torch.set_num_threads(int(requested))


def exit_code(outcomes: list[Any], allow_inconclusive: bool = False) -> int:
    """0 when every claim passes (or is inconclusive and that is allowed), else 1."""
    ok = {"pass", "inconclusive"} if allow_inconclusive else {"pass"}
    return 0 if all(o.verdict in ok for o in outcomes) else 1


def verify(
    path: str | Path,
    *,
    checkpoint: int | str | None = None,
    out: str | Path | None = None,
    allow_inconclusive: bool = False,
    junit: str | Path | None = None,
    baseline: str | Path | None = None,
    seed: int | None = None,
    progress: bool = True,
    console: Any = None,
) -> int:
    """Run a hypothesis, write its reports, print the verdict table; return the exit code.

    Raises :class:`CircuitSpecError` on bad input (the CLI turns it into one line and exit 2).
    """
    from circuitspec.reports import build_report_input, print_verdict_table, write_junit, write_reports
    from circuitspec.reports.table import make_console

    console = console or make_console()
    result = run_verification(path, checkpoint=checkpoint, seed=seed, progress=progress)
    out_dir = Path(out) if out else default_report_dir(Path(path), result.hypothesis.spec.name, None)
    report_input = build_report_input(result)
    paths = write_reports(report_input, out_dir)
    print_verdict_table(result.outcomes, console, paths["html"])
    if junit:
        write_junit(result.outcomes, Path(junit), result.hypothesis.spec.name, allow_inconclusive)
    code = exit_code(result.outcomes, allow_inconclusive)
    if baseline:
        from circuitspec.regress.diff import diff_reports

        regressions = diff_reports(Path(baseline), paths["json"], console=console)
        code = max(code, 1 if regressions else 0)
    return code
