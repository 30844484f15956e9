"""``circuitspec verify`` on a hypothesis naming several models (``models:``).

Each model runs as its own single-model verification (:func:`circuitspec.compare.views.model_view`),
one model loaded at a time, with its reports in ``reports/<name>/<model>/``. While a model is loaded,
the cross-model claims read their sites on it; once every model ran they are measured (numpy) and
judged as one family of their own. ``models.{json,md,html}`` show the claims × models matrix, the
cross-model claims in a column of their own, and their tables (overlap per k, cosine per category).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError
from circuitspec.regress.matrix import ACROSS_MODELS

from .views import cross_model_claims, model_names, model_view

__all__ = ["ACROSS", "baseline_models", "compile_views", "verify_file", "verify_models"]

ACROSS = ACROSS_MODELS  # the matrix column of the cross-model claims


def verify_file(path: str | Path, *, console: Any = None, **options: Any) -> int:
    """``circuitspec verify FILE``: :func:`circuitspec.pipeline.verify` for a single-model file, else
    :func:`verify_models`; ``options`` are ``pipeline.verify``'s keyword arguments."""
    from circuitspec.pipeline import verify
    from circuitspec.reports.table import make_console
    from circuitspec.spec.loader import load_hypothesis

    loaded = load_hypothesis(path)
    if not loaded.spec.models:
        return verify(path, **options, **({} if console is None else {"console": console}))
    allowed = (options.pop("allow_inconclusive", False), options.pop("allow_errors", False))
    run = {"progress": True, "seed": None, "split": None, "junit": None, "out": None} | options
    (
        run.setdefault("checkpoint", None),
        run.setdefault("baseline", None),
        run.setdefault("model_overrides", None),
    )
    return verify_models(loaded, console or make_console(), allowed, **run)


def _refuse_single_model_options(checkpoint: Any, baseline: Any) -> None:
    if checkpoint is not None:
        raise CircuitSpecError(
            "--checkpoint picks one model's checkpoint: with 'models:', set 'checkpoint:' under each model"
        )
    if baseline:
        raise CircuitSpecError(
            "--baseline compares one report.json: with 'models:', compare each model's "
            "reports/<name>/<model>/report.json with `circuitspec diff`"
        )


def _check_sites(cross: list[Any], views: dict[str, Any], graphs: dict[str, Any]) -> None:
    """Every cross-model claim's sites exist in the model that reads them (before any model loads)."""
    from circuitspec.spec.nodes import parse_node

    for claim in cross:
        for side, (name, site) in enumerate(zip(claim.models, claim.sites, strict=True)):
            node, shape = parse_node(site), graphs[name].shape
            if node.layer is not None and node.layer >= shape.n_layers:
                loaded = views[name]
                where = loaded.claim_loc(claim.id, "sites", side)
                message = (
                    f"site '{site}': model '{name}' has {shape.n_layers} layers (0–{shape.n_layers - 1})"
                )
                raise loaded.error(message, where)


def compile_views(loaded: Any) -> dict[str, Any]:
    """Each model's compiled view (its claims checked against its shape, without loading weights), after
    checking every cross-model claim's sites against the shape of the model that reads them."""
    from circuitspec.graph.compile import compile_hypothesis

    views = {name: model_view(loaded, name) for name in model_names(loaded)}
    graphs = {name: compile_hypothesis(view) for name, view in views.items()}
    _check_sites(cross_model_claims(loaded), views, graphs)
    return graphs


def verify_models(
    loaded: Any, console: Any, allowed: tuple[bool, bool], *, out: Any, seed: int | None, split: str | None,
    progress: bool, junit: Any, checkpoint: Any, baseline: Any, model_overrides: dict[str, str] | None,
) -> int:  # fmt: skip
    """Verify every model's claims, then the cross-model claims; write each model's reports and the
    side-by-side matrix; return the worst exit code (``allowed``: allow inconclusive, allow errors)."""
    from circuitspec.engine.progress import run_log
    from circuitspec.pipeline import default_report_dir, exit_code
    from circuitspec.reports.atomic import ReportSet

    _refuse_single_model_options(checkpoint, baseline)
    names = model_names(loaded)
    views = {name: model_view(loaded, name) for name in names}
    compile_views(loaded)  # every model's claims and every cross-model site, before any model loads
    cross = cross_model_claims(loaded)
    out_dir = Path(out) if out else default_report_dir(loaded.path, loaded.spec.name)
    run = {"seed": seed, "split": split, "progress": progress, "overrides": model_overrides}
    files = [f"models.{ext}" for ext in ("json", "md", "html")]
    with ReportSet(out_dir, files) as prepared, run_log(progress):
        reads: dict[tuple[str, int], Any] = {}
        outcomes = {}
        for name in names:
            result = _run_model(loaded, name, views[name], cross, reads, run)
            junit_path = None if junit is None else Path(junit).with_stem(f"{Path(junit).stem}-{name}")
            _write_model_reports(result, out_dir / name, console, name, junit_path, allowed[0])
            outcomes[name] = result.outcomes
        outcomes[ACROSS] = _judge_cross(loaded, cross, reads, seed)
        _write_matrix(loaded, outcomes, cross, prepared, console)
    every = [o for group in outcomes.values() for o in group]
    return exit_code(every, *allowed)


def _run_model(loaded: Any, name: str, view: Any, cross: list[Any], reads: dict, run: dict) -> Any:
    """One model: load it, run its view's claims, read the cross-model claims' sites on it, free it."""
    from circuitspec.engine.progress import phase, say
    from circuitspec.pipeline import free_model_memory, load_hypothesis_model, run_verification

    model_spec = view.spec.model
    if run["overrides"]:
        model_spec = model_spec.model_copy(update=run["overrides"])
    say(f"model {name} ({len(view.claims)} claims)")
    with phase(f"loading model {name}", f"model {name} loaded"):
        model = load_hypothesis_model(model_spec, view.base_dir, model_spec.checkpoint)
    result = run_verification(
        view, seed=run["seed"], split=run["split"], progress=run["progress"], loaded_model=model
    )
    mine = [(claim, side) for claim in cross for side, m in enumerate(claim.models) if m == name]
    if mine:
        with phase(f"reading {len(mine)} cross-model sites on {name}", "sites read"):
            for claim, side in mine:
                reads[(claim.id, side)] = _read(model, view, claim, side, run["split"])
    del model
    free_model_memory()
    return result


def _read(model: Any, view: Any, claim: Any, side: int, split: str | None) -> Any:
    """The claim's site on this side: fit prompts on the exploration rows, evaluation on its verdict's."""
    from circuitspec.engine.interventions.alignment import read_sites
    from circuitspec.spec.loader import load_rows
    from circuitspec.spec.splits import claim_split, select_rows

    spec = view.spec
    rows = load_rows(spec.data, view.base_dir, hypothesis=view)
    fit_split = "explore" if spec.data.split is not None else "all"
    chosen = {"fit": select_rows(rows, spec.data, fit_split)}
    chosen["evaluate"] = select_rows(rows, spec.data, claim_split(claim, spec, split))
    return read_sites(model, spec, claim, side, chosen)


def _judge_cross(loaded: Any, cross: list[Any], reads: dict, seed: int | None) -> list[Any]:
    """Measure and judge the cross-model claims as one family (the hypothesis' ``family`` rule)."""
    from circuitspec.claims.registry import claim_kind
    from circuitspec.engine.progress import phase
    from circuitspec.stats import ClaimRequest, evaluate_family

    if not cross:
        return []
    spec = loaded.spec
    seed = spec.seed if seed is None else seed
    with phase(f"measuring {len(cross)} cross-model claims", "cross-model claims measured"):
        measurements = [
            claim_kind(c.kind).load_measure()((reads[(c.id, 0)], reads[(c.id, 1)]), c, seed) for c in cross
        ]
    requests = [
        ClaimRequest(m, c.expectation, c.confidence, c.min_n or spec.min_n)
        for m, c in zip(measurements, cross, strict=True)
    ]
    outcomes = evaluate_family(requests, family=spec.family, seed=seed)
    for outcome, measurement in zip(outcomes, measurements, strict=True):
        outcome.details.update(measurement.extra)
    return outcomes


def _write_model_reports(result: Any, out: Path, console: Any, name: str, junit: Any, allow: bool) -> None:
    """One model's report.{json,md,html} in ``out`` (and its JUnit file), as ``verify`` writes them."""
    from circuitspec.reports import build_report_input, report_set
    from circuitspec.reports.outputs import write_run_outputs

    out.mkdir(parents=True, exist_ok=True)
    with report_set(out) as prepared:
        label = f"{result.hypothesis.spec.name} ({name})"
        write_run_outputs(
            build_report_input(result), result.outcomes, prepared, console, name=label, junit=junit,
            allow_inconclusive=allow,
        )  # fmt: skip


def _write_matrix(
    loaded: Any, outcomes: dict[str, list[Any]], cross: list[Any], prepared: Any, console: Any
) -> None:
    """``models.{json,md,html}``: claims × models, the cross-model column, and the cross-model tables."""
    from circuitspec.regress.matrix import CheckpointRun, build_matrix, print_matrix_table, write_matrix

    runs = [
        CheckpointRun(name, group, None if name == ACROSS else name)
        for name, group in outcomes.items()
        if group or name != ACROSS
    ]
    matrix = build_matrix(loaded.spec.name, str(loaded.path), runs, axis="model")
    matrix.appendix = _cross_tables(outcomes.get(ACROSS, []))
    write_matrix(matrix, prepared.out, prepared=prepared, stem="models")
    print_matrix_table(matrix, console)


def _cross_tables(outcomes: list[Any]) -> list[dict[str, Any]]:
    """Per cross-model claim: its subspace overlap per k and its offset cosine per category."""
    tables = []
    for outcome in outcomes:
        details = outcome.details
        if details.get("subspace_overlap"):
            tables.append(
                {"title": f"{outcome.claim_id}: subspace overlap", "rows": details["subspace_overlap"]}
            )
        by_category = details.get("offset_cosine_by_category") or {}
        if by_category:
            rows = [{"category": c, "offset cosine": v} for c, v in by_category.items()]
            tables.append({"title": f"{outcome.claim_id}: offset cosine per category", "rows": rows})
    return tables


def baseline_models(path: str | Path, console: Any = None, seed: int | None = None) -> list[Path]:
    """``circuitspec baseline`` for a ``models:`` file: verify it into ``reports/<name>/``, then keep each
    model's report.json as ``<model>/baseline.json`` and the matrix as ``models-baseline.json``."""
    from circuitspec.pipeline import default_report_dir
    from circuitspec.reports import atomic_write_bytes
    from circuitspec.reports.table import make_console
    from circuitspec.spec.loader import load_hypothesis

    loaded = load_hypothesis(path)
    out = default_report_dir(loaded.path, loaded.spec.name)
    verify_models(
        loaded, console or make_console(), (True, False), out=out, seed=seed, split=None, progress=True,
        junit=None, checkpoint=None, baseline=None, model_overrides=None,
    )  # fmt: skip
    pairs = [(out / name / "report.json", out / name / "baseline.json") for name in model_names(loaded)]
    pairs.append((out / "models.json", out / "models-baseline.json"))
    for source, target in pairs:
        atomic_write_bytes(target, source.read_bytes())
    return [target for _, target in pairs]
