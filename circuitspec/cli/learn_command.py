"""``circuitspec learn``: train a learned intervention (activation scalars, steering vectors or dynamic
scalars; the activation-scaling paper) on a hypothesis' prompts, over a λ grid, and save it.

Rows: ``--train-split`` (default ``explore`` when the hypothesis splits its rows, else ``all``). Each λ
setting is evaluated on the training prompts, on the held-out ``test`` split (when there is one) and on
``--other-template`` (a template left out of training, the paper's Table 2 column C). One setting: saved
to ``-o``. A grid: every setting saved as ``<stem>.<i>.safetensors``, the table with the Pareto front
(effectiveness vs faithfulness, on the *training* prompts, so the held-out split stays unseen) written to
``<stem>.pareto.json`` (and ``--plot``), and ``-o`` gets the front's setting with the largest E₀ + F on
the training prompts.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from circuitspec.errors import CircuitSpecError

__all__ = ["LearnRequest", "learn_command", "register"]

_METHODS = ("activ_scalar", "steer_vec", "dyn_scalar")


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise CircuitSpecError(f"{what} '{text}': give numbers separated by commas") from None
    if any(v < 0 or v != v or v == float("inf") for v in values):
        raise CircuitSpecError(f"{what} '{text}': each value must be a finite number ≥ 0")
    return values


@dataclass(frozen=True)
class LearnRequest:
    """The command's options, checked (each bad one is a one-line error)."""

    sites: list[str]
    layers: str
    roles: str
    method: str
    lambdas: list[tuple[float, float]]  # (λ_F, λ_M) per grid point
    margins: list[float]
    steps: int
    lr: float
    lr_end: float | None
    seed: int
    train_split: str | None
    data: list[str] | None
    other_template: str | None

    @classmethod
    def parse(cls, sites: str, lambdas: list[str], margin: str, method: str, **rest: Any) -> LearnRequest:
        from circuitspec.learned.locations import SITES

        bad = [s for s in sites.split(",") if s.strip() not in SITES]
        if bad:
            raise CircuitSpecError(f"--sites '{sites}': unknown {', '.join(bad)} (valid: {', '.join(SITES)})")
        if method not in _METHODS:
            raise CircuitSpecError(f"--method '{method}' (valid: {', '.join(_METHODS)})")
        pairs = []
        for text in lambdas or ["1,0.01"]:
            values = _floats(text, "--lambda")
            if len(values) != 2:
                raise CircuitSpecError(f"--lambda '{text}': give λ_F,λ_M (e.g. 1,0.01)")
            pairs.append((values[0], values[1]))
        if rest["steps"] < 1 or not rest["lr"] > 0 or not (rest["lr_end"] is None or rest["lr_end"] > 0):
            raise CircuitSpecError("--steps must be at least 1, --lr and --lr-end above 0")
        if rest["train_split"] not in (None, "explore", "test", "all"):
            raise CircuitSpecError(f"--train-split '{rest['train_split']}' (valid: explore, test, all)")
        text = rest.pop("data", None)
        data = [d.strip() for d in text.split(",")] if text else None
        return cls([s.strip() for s in sites.split(",")], lambdas=pairs, margins=_floats(margin, "--margin"),
                   method=method, data=data, **rest)  # fmt: skip


def _prompt_context(loaded: Any, hyp: Any, split: str, templates: list[str] | None) -> Any:
    """A run context over ``templates`` (None: all) on the rows of ``split`` of the loaded hypothesis."""
    from circuitspec.engine.context import RunContext
    from circuitspec.engine.metrics import logit_diff
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.spec.loader import load_rows
    from circuitspec.spec.splits import select_rows

    spec = hyp.spec
    rows = select_rows(load_rows(spec.data, hyp.base_dir, hypothesis=hyp), spec.data, split)
    prompts = build_prompt_set(
        spec.data, rows, loaded.tokenizer, templates, seed=spec.data.seed, n=spec.data.n
    )
    return RunContext(loaded.model, prompts, metric=logit_diff)


def _template_ids(spec: Any, names: list[str] | None, other: str | None) -> list[str]:
    """Training templates: ids or tags named by ``--data`` (default: all but ``--other-template``)."""
    ids = [t.id for t in spec.data.templates]
    if other is not None and other not in ids:
        raise CircuitSpecError(f"--other-template '{other}' (valid: {', '.join(ids)})")
    chosen = [t.id for t in spec.data.templates if names is None or t.id in names or set(t.tags) & set(names)]
    chosen = [t for t in chosen if t != other]
    if not chosen:
        raise CircuitSpecError(f"--data {names}: no template left to train on (templates: {', '.join(ids)})")
    return chosen


def _locations(request: LearnRequest, ctx: Any) -> list[Any]:
    from circuitspec.learned.locations import grid, parse_layers

    layers = parse_layers(request.layers, ctx.adapter.arch.n_layers)
    if request.method == "dyn_scalar":
        roles: list[str | None] = [None]  # one probe per site and layer, applied at every position
    elif request.roles == "all":
        roles = [*sorted(ctx.prompts.role_positions), "end"]
    elif request.roles == "every":
        roles = [None]
    else:
        roles = [r.strip() for r in request.roles.split(",")]
    return grid(request.sites, layers, roles)


def _contexts(hypothesis: Path, request: LearnRequest) -> tuple[Any, dict[str, Any], str, list[str]]:
    """The loaded hypothesis' model label and a run context per evaluation set (``train`` first)."""
    from circuitspec.claims.steering_checks import model_label
    from circuitspec.engine.progress import phase
    from circuitspec.pipeline import load_hypothesis_model
    from circuitspec.spec.loader import load_hypothesis

    hyp = load_hypothesis(hypothesis)
    spec = hyp.spec
    templates = _template_ids(spec, request.data, request.other_template)
    split = request.train_split or ("explore" if spec.data.split is not None else "all")
    with phase("loading the model", "model loaded"):
        loaded = load_hypothesis_model(spec.model, hyp.base_dir)
    contexts = {"train": _prompt_context(loaded, hyp, split, templates)}
    if spec.data.split is not None and split != "test":
        contexts["test"] = _prompt_context(loaded, hyp, "test", templates)
    if request.other_template is not None:
        other_split = "test" if spec.data.split is not None else "all"
        contexts["template"] = _prompt_context(loaded, hyp, other_split, [request.other_template])
    return model_label(spec.model), contexts, split, templates


def learn_command(hypothesis: Path, request: LearnRequest, out: Path, plot: Path | None = None) -> str:
    """Train every grid point, evaluate, save; return a summary (one line per grid point)."""
    from circuitspec.engine.learning import evaluate, learn
    from circuitspec.engine.progress import run_log
    from circuitspec.learned.pareto import GridPoint, grid_configs, pareto_front, plot_front
    from circuitspec.learned.train import TrainConfig

    for path in (out, plot):
        if path is not None and not path.parent.is_dir():
            raise CircuitSpecError(f"'{path}': the folder {path.parent} does not exist")
    base = TrainConfig(steps=request.steps, lr=request.lr, seed=request.seed, lr_end=request.lr_end)
    configs = [c for lf, lm in request.lambdas for c in grid_configs(base, [lf], [lm], request.margins)]
    points: list[GridPoint] = []
    learned: list[Any] = []
    with run_log() as log:
        say = log.line if log is not None else None
        model, contexts, split, templates = _contexts(hypothesis, request)
        locations = _locations(request, contexts["train"])
        for i, config in enumerate(configs, 1):
            if log is not None:
                log.set_phase(f"training grid point {i}/{len(configs)}")
                log.line(
                    f"grid point {i}/{len(configs)}: λ_F {config.lambda_f}, λ_M {config.lambda_m}, "
                    f"m {config.margin}"
                )
            result = learn(contexts["train"], locations, request.method, config, say)
            count = int((result.intervention.vector().abs() > 0.01).sum())
            if log is not None:
                log.set_phase(f"evaluating grid point {i}/{len(configs)} on {', '.join(contexts)}")
            scores = {name: evaluate(ctx, result.intervention) for name, ctx in contexts.items()}
            points.append(GridPoint(config, count, scores))
            learned.append(result.intervention)
    front = pareto_front([(p.scores["train"].effectiveness, p.scores["train"].faithfulness) for p in points])
    for point, on in zip(points, front, strict=True):
        point.on_front = on
    meta = {"model": model, "split": split, "templates": templates, "method": request.method}
    thetas = [i.theta.detach().cpu().double().numpy() for i in learned]
    chosen = _save_all(out, points, thetas, meta, [loc.label for loc in locations], contexts["train"])
    if plot is not None:
        title = f"{hypothesis.stem}: {request.method} at {len(locations)} locations"
        plot_front(points, plot, title, list(contexts))
    return _summary(points, chosen, out)


def _save_all(
    out: Path, points: list[Any], thetas: list[Any], meta: dict[str, Any], labels: list[str], train_ctx: Any
) -> int:
    """Save each grid point (one point: to ``out``); return the index of the one saved to ``out``."""
    from dataclasses import asdict

    from circuitspec.learned.store import LearnedProvenance, save

    def provenance(point: Any) -> LearnedProvenance:
        return LearnedProvenance(
            model=meta["model"], method=meta["method"], locations=tuple(labels),
            width=int(train_ctx.adapter.arch.d_model), config=point.config.as_dict(),
            templates=tuple(meta["templates"]), split=meta["split"], n=len(train_ctx.prompts),
            scores={name: asdict(s) for name, s in point.scores.items()},
        )  # fmt: skip

    if len(points) == 1:
        save(out, thetas[0], provenance(points[0]))
        return 0
    for i, point in enumerate(points):
        save(out.with_suffix(f".{i}{out.suffix}"), thetas[i], provenance(point))
    front = [i for i, p in enumerate(points) if p.on_front]
    chosen = max(
        front, key=lambda i: points[i].scores["train"].effectiveness + points[i].scores["train"].faithfulness
    )
    save(out, thetas[chosen], replace(provenance(points[chosen]), notes=f"grid point {chosen}"))
    table = {**meta, "locations": labels, "chosen": chosen, "grid": [p.as_dict() for p in points]}
    out.with_suffix(".pareto.json").write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    return chosen


def _summary(points: list[Any], chosen: int, out: Path) -> str:
    """One line per grid point: λs, margin, |θ| > 0.01 count, E₀ / F / flipped per evaluation set."""
    lines = []
    for i, p in enumerate(points):
        c = p.config
        sets = "; ".join(
            f"{name} E0 {s.effectiveness:.2f} F {s.faithfulness:.2f} flipped {s.flipped:.0%} (n {s.n})"
            for name, s in p.scores.items()
        )
        mark = ("*" if p.on_front else " ") + (">" if i == chosen else " ")
        lines.append(
            f"{mark} {i}: λ_F {c.lambda_f:g} λ_M {c.lambda_m:g} m {c.margin:g}: {p.count} |θ|>0.01; {sets}"
        )
    lines.append(f"wrote {out} (grid point {chosen}; * on the train Pareto front, > saved to -o)")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``learn`` to ``app``."""

    @app.command("learn")
    def learn_cli(
        hypothesis: Annotated[Path, typer.Argument(help="hypothesis YAML naming the model and templates")],
        out: Annotated[Path, typer.Option("--out", "-o", help="the .safetensors file to write")],
        sites: Annotated[
            str, typer.Option(help="attn_out, mlp_out, resid_post (comma-separated)")
        ] = "attn_out,mlp_out",
        layers: Annotated[str, typer.Option(help="all, 3, 0-11 or 0,4,8-9")] = "all",
        roles: Annotated[
            str, typer.Option(help="all (every role and end), every (all positions) or a list")
        ] = "all",
        method: Annotated[str, typer.Option(help="activ_scalar, steer_vec or dyn_scalar")] = "activ_scalar",
        lambdas: Annotated[list[str], typer.Option("--lambda", help="λ_F,λ_M; repeat for a grid")] = [],  # noqa: B006
        margin: Annotated[str, typer.Option(help="the hinge margin m; a comma list for a grid")] = "1",
        steps: Annotated[int, typer.Option(help="Adam steps (full batch)")] = 40,
        lr: Annotated[float, typer.Option(help="Adam's learning rate")] = 0.05,
        lr_end: Annotated[
            float | None, typer.Option(help="decay the learning rate linearly to this by the last step")
        ] = None,
        seed: Annotated[int, typer.Option(help="seed of the initial noise")] = 0,
        train_split: Annotated[
            str | None, typer.Option(help="explore (default when split), test or all")
        ] = None,
        data: Annotated[
            str | None, typer.Option(help="template ids or tags to train on (default: all)")
        ] = None,
        other_template: Annotated[str | None, typer.Option(help="a template held out for evaluation")] = None,
        plot: Annotated[Path | None, typer.Option(help="write the Pareto plot (.svg or .png)")] = None,
    ) -> None:
        """Learn activation scalars (or steering vectors, dynamic scalars) that flip the answer."""
        try:
            request = LearnRequest.parse(
                sites, lambdas, margin, method, layers=layers, roles=roles, steps=steps, lr=lr, lr_end=lr_end,
                seed=seed, train_split=train_split, data=data, other_template=other_template,
            )  # fmt: skip
            print(learn_command(hypothesis, request, out, plot))
        except CircuitSpecError as error:
            print(str(error), file=sys.stderr)
            raise typer.Exit(2) from None
