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
    "judge_verification",
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
    split: dict = field(default_factory=dict)  # the row split verdicts used (spec.splits.split_summary)
    prompt_sample: list = field(default_factory=list)  # first prompt per template (engine.prompt_sample)

    @property
    def verdicts(self) -> dict[str, str]:
        return {o.claim_id: o.verdict for o in self.outcomes}


def default_report_dir(hypothesis_path: Path, name: str, checkpoint: int | str | None = None) -> Path:
    """``reports/<hypothesis name>/`` beside the hypotheses folder's project (cwd), per checkpoint."""
    base = Path("reports") / name
    return base if checkpoint is None else base / f"checkpoint-{checkpoint}"


def run_verification(
    path: str | Path | Any,
    *,
    checkpoint: int | str | None = None,
    seed: int | None = None,
    progress: bool = True,
    loaded_model: Any = None,
    split: str | None = None,
    model_overrides: dict[str, str] | None = None,
    shard: tuple[int, int] | None = None,
) -> Verification:
    """Load, compile, run and evaluate every claim of one hypothesis file (``split``: every claim on
    that row split, as ``verify --split``); ``path`` may be a hypothesis already loaded (one model's
    view of a ``models:`` file, :mod:`circuitspec.compare.views`). ``shard=(i, k)`` measures only
    shard ``i`` of ``k`` of the prompts (:mod:`circuitspec.engine.shards`) and judges nothing: the
    shards' Verifications are merged, then judged (:mod:`circuitspec.distributed.shards`)."""
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis, load_rows
    from circuitspec.spec.splits import check_run_split, split_summary
    from circuitspec.spec.vocabulary import check_vocabulary

    started = time.perf_counter()
    hypothesis = _single_model(load_hypothesis(path) if isinstance(path, str | Path) else path)
    spec = hypothesis.spec
    seed, checkpoint = _seed_and_checkpoint(spec, seed, checkpoint)  # checked before any model loads
    graph = compile_hypothesis(hypothesis)  # validated against the declared / known shape first
    rows = load_rows(spec.data, hypothesis.base_dir, hypothesis=hypothesis)
    check_run_split(spec, split, rows, graph.claims)

    from circuitspec.engine.progress import phase, say  # lines and a heartbeat when verify opened a log

    model_spec = spec.model.model_copy(update=model_overrides) if model_overrides else spec.model
    say(f"{spec.name}: {len(graph.claims)} claims, {len(rows)} data rows")
    with phase(f"loading the model ({_model_words(model_spec, checkpoint)})", "model loaded"):
        import circuitspec.engine.planner  # noqa: F401  (torch and TransformerLens load in this phase)

        model = loaded_model or load_hypothesis_model(model_spec, hypothesis.base_dir, checkpoint)
    _choose_cpu_threads(model.model)
    if model.shape != graph.shape:  # the weights are the final word on the shape
        graph = compile_hypothesis(hypothesis, shape=model.shape)
    check_vocabulary(spec.data, rows, model.tokenizer.unknown_words)  # before any pass: <unk> is bad input
    measurements, outcomes = _measure_and_judge(
        graph, model, rows, hypothesis.base_dir, seed, split, shard, progress
    )
    sample = _prompt_sample(spec, rows, model.tokenizer, split)
    return Verification(
        hypothesis=hypothesis,
        graph=graph,
        model_identity=dict(model.identity),
        measurements=measurements,
        outcomes=outcomes,
        correction=spec.family,
        seed=seed,
        checkpoint=checkpoint,
        seconds=time.perf_counter() - started,
        split=split_summary(spec, rows, split),
        prompt_sample=sample,
    )


def _measure_and_judge(
    graph: Any,
    model: Any,
    rows: Any,
    base_dir: Path,
    seed: int,
    split: str | None,
    shard: tuple[int, int] | None,
    progress: bool,
) -> tuple[dict[str, Any], list[Any]]:
    """Every claim's Measurement and verdict; on a prompt shard, its claims' Measurements only."""
    from circuitspec.engine.planner import run_claims
    from circuitspec.engine.progress import phase

    n = len(graph.claims)
    with phase(f"measuring {n} claims", f"measured {n} claims"):
        if shard is None:
            measurements = run_claims(graph, model, rows, base_dir, progress=progress, seed=seed, split=split)
        else:
            from circuitspec.engine.shards import run_claims_on_shard

            measurements = run_claims_on_shard(graph, model, rows, base_dir, shard, seed, split)
    if shard is not None:
        return measurements, []
    with phase(f"judging {n} claims (intervals, family-wise correction)", "verdicts"):
        return measurements, _judge(graph, measurements, seed, split)


def _single_model(loaded: Any) -> Any:
    """``loaded``, refused when it names several models: those run one view per model
    (:func:`circuitspec.compare.run.verify_models`, which ``circuitspec verify`` calls for them)."""
    if loaded.spec.models:
        from circuitspec.errors import CircuitSpecError

        names = ", ".join(loaded.spec.models)
        raise CircuitSpecError(
            f"{loaded.path.name} names several models ({names}): verify it with `circuitspec verify` "
            "or circuitspec.compare.run.verify_models"
        )
    return loaded


def _model_words(model_spec: Any, checkpoint: int | str | None) -> str:
    """``bundled toy_sentiment, checkpoint final``: where the model comes from, for the progress log."""
    fields = ("bundled", "name", "package", "gguf", "path")
    source = next((f"{f} {getattr(model_spec, f)}" for f in fields if getattr(model_spec, f, None)), "model")
    return source if checkpoint is None else f"{source}, checkpoint {checkpoint}"


def _prompt_sample(spec: Any, rows: Any, tokenizer: Any, split: str | None) -> list[dict]:
    """The first prompt of each template on the split verdicts use, as ``circuitspec prompts`` shows it
    (the report's "what was run"); tokenization only, no forward pass."""
    from circuitspec.engine.prompt_sample import sample_prompts
    from circuitspec.spec.splits import default_split, select_rows

    try:
        chosen = select_rows(rows, spec.data, split or default_split(spec))
        return sample_prompts(spec.data, chosen, tokenizer)
    except Exception:  # a view of the run: it must never lose the verdicts
        return []


def judge_verification(result: Verification, split: str | None = None) -> Verification:
    """``result`` with its verdicts judged from its measurements (a merge of prompt shards, which
    :func:`run_verification` with ``shard=`` leaves unjudged); ``split`` as given to the run."""
    result.outcomes = _judge(result.graph, result.measurements, result.seed, split)
    return result


def _judge(graph: Any, measurements: dict[str, Any], seed: int, split: str | None) -> list[Any]:
    """Verdicts under the hypothesis' family-wise error control, each stating its row split; then the
    behaviour gates (a claim whose required claim did not pass is inconclusive)."""
    from circuitspec.spec.splits import claim_split
    from circuitspec.stats import ClaimRequest, evaluate_family
    from circuitspec.stats.gates import apply_requirements

    spec = graph.hypothesis
    requests = [  # interval levels follow the hypothesis' family-wise error control
        ClaimRequest(measurements[c.id], c.expectation, c.confidence, c.min_n or spec.min_n)
        for c in graph.claims
    ]
    outcomes = evaluate_family(requests, family=spec.family, seed=seed)
    for claim, outcome in zip(graph.claims, outcomes, strict=True):
        outcome.details["split"] = claim_split(claim, spec, split)
    apply_requirements(outcomes, graph)
    return outcomes


def _seed_and_checkpoint(spec: Any, seed: int | None, checkpoint: int | str | None) -> tuple[int, Any]:
    """The run's seed and checkpoint (arguments over the file's); a one-line error for a negative seed
    or a checkpoint the model does not have."""
    from circuitspec.errors import CircuitSpecError
    from circuitspec.graph.checkpoint_checks import check_checkpoint

    seed = spec.seed if seed is None else seed
    if seed < 0:
        raise CircuitSpecError(f"--seed {seed} is negative; seeds are whole numbers from 0")
    checkpoint = checkpoint if checkpoint is not None else spec.model.checkpoint
    return seed, check_checkpoint(spec.model, checkpoint)


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


def exit_code(outcomes: list[Any], allow_inconclusive: bool = False, allow_errors: bool = False) -> int:
    """2 when a claim could not be measured (unless allowed); else 0 when every claim passes (or is
    inconclusive and that is allowed), else 1. An error is never counted as a fail."""
    verdicts = [o.verdict for o in outcomes]
    if "error" in verdicts and not allow_errors:
        return 2
    ok = {"pass", "error"} | ({"inconclusive"} if allow_inconclusive else set())
    return 0 if all(v in ok for v in verdicts) else 1


def _plot_progress(log: Any, progress: bool) -> Any:
    """The report's ``progress(done, total)`` for its plots: lines on the run log off a terminal,
    one line rewritten in place on a terminal (``html_report.plot_progress``), none without progress."""
    if log is not None and log.heartbeat:
        return log.steps("drew plots")
    if progress:
        from circuitspec.reports.html_report import plot_progress

        return plot_progress()
    return None


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
    allow_errors: bool = False,
    split: str | None = None,
    model_overrides: dict[str, str] | None = None,
) -> int:
    """Run a hypothesis, write its reports, print the verdict table; return the exit code.

    ``model_overrides`` replaces fields of the file's ``model:`` for this run (``device``, ``dtype``).
    Raises :class:`CircuitSpecError` on bad input (the CLI turns it into one line and exit 2).
    """
    from circuitspec.engine.progress import phase, run_log
    from circuitspec.reports import build_report_input, check_output_file, report_set
    from circuitspec.reports.outputs import write_run_outputs
    from circuitspec.reports.table import make_console
    from circuitspec.spec.loader import load_hypothesis

    console = console or make_console()
    name = _single_model(load_hypothesis(path)).spec.name  # outputs are checked before the run
    out_dir = Path(out) if out else default_report_dir(Path(path), name, None)
    if junit:
        check_output_file(junit, "--junit")
    if baseline:
        from circuitspec.regress.diff import load_report

        load_report(baseline)
    with report_set(out_dir) as prepared, run_log(progress) as log:  # lock held; removed on SIGINT / SIGTERM
        run: dict[str, Any] = {"checkpoint": checkpoint, "seed": seed, "split": split}
        result = run_verification(path, progress=progress, model_overrides=model_overrides, **run)
        with phase("writing the reports", "reports written"):
            paths = write_run_outputs(
                build_report_input(result),
                result.outcomes,
                prepared,
                console,
                name=name,
                junit=junit,
                allow_inconclusive=allow_inconclusive,
                progress=_plot_progress(log, progress),
            )
    code = exit_code(result.outcomes, allow_inconclusive, allow_errors)
    if baseline:
        from circuitspec.regress.diff import diff_reports

        regressions = diff_reports(Path(baseline), paths["json"], console=console)
        code = max(code, 1 if regressions else 0)
    return code
