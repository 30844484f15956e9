"""Run every claim of a compiled hypothesis on a loaded model → one :class:`Measurement` per claim.

One :class:`PromptSet` is built per distinct template selection; all claims on it share one cache
(clean and corrupted runs are computed once, with only the hooks the claims ask for). Claims are
dispatched by kind to the intervention modules. A claim that fails becomes
``Measurement(error=...)`` — one line — and the rest of the run goes on.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from circuitspec.errors import CircuitSpecError
from circuitspec.graph.circuit import CircuitGraph
from circuitspec.measurement import Measurement, RunCost, SweepPoint
from circuitspec.spec.geometry import hook_name

from .context import PassCounter, RunContext
from .metrics import make_metric
from .models import LoadedModel
from .prompts import PromptSet, build_prompt_set
from .sites import Site, resolve_site

__all__ = ["measure_claim", "run_claims"]


def _np(values: torch.Tensor) -> np.ndarray:
    return values.detach().float().cpu().numpy().astype(np.float64)


def _one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, CircuitSpecError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def _needed_hooks(graph: CircuitGraph, claim_ids: list[str], cfg: Any) -> set[str]:
    """Hooks the claims on one prompt set read from the clean / corrupted runs, so each is run once."""
    from .interventions.attribution import dla_hooks
    from .interventions.logit_lens import lens_sites, residual_hook

    names: set[str] = set()
    for claim_id in claim_ids:
        claim = graph.claim(claim_id)
        targets = graph.targets(claim_id)
        if claim.kind in ("ablation", "activation_patching", "scaling"):
            names.update(hook_name(n) for n in targets if n.kind.value not in _NO_HOOK)
        elif claim.kind == "attribution":
            names.update(dla_hooks(cfg))
            names.update(hook_name(n) for n in targets if n.is_feature)
        elif claim.kind == "attention":
            names.update(f"blocks.{n.layer}.attn.hook_pattern" for n in targets if n.layer is not None)
        elif claim.kind == "logit_lens":
            labels = (
                [claim.at] if claim.at else [label for label, _ in lens_sites(cfg.n_layers, cfg.attn_only)]
            )
            names.update(residual_hook(label) for label in labels)
        elif claim.kind == "faithfulness":
            for layer in range(cfg.n_layers):
                names.add(f"blocks.{layer}.attn.hook_z")
                if not cfg.attn_only:
                    names.add(f"blocks.{layer}.hook_mlp_out")
    return names


_NO_HOOK = ("logits",)  # feature nodes live on <site>.hook_sae_acts_post once dictionaries are spliced


def run_claims(
    graph: CircuitGraph,
    loaded: LoadedModel,
    rows: list[dict],
    base_dir: Path,
    progress: bool = True,
    seed: int | None = None,
) -> dict[str, Measurement]:
    """Measure every claim in ``graph`` (file order); never raises for a single claim's failure.

    ``seed`` (default: the hypothesis' ``seed``) seeds resampling and random circuits; prompt
    sampling uses ``data.seed``.
    """
    hypothesis = graph.hypothesis
    seed = hypothesis.seed if seed is None else seed
    data = hypothesis.data
    groups: dict[tuple[str, ...], list[str]] = {}
    for claim in graph.claims:
        groups.setdefault(tuple(graph.templates(claim.id)), []).append(claim.id)
    prompt_sets: dict[tuple[str, ...], PromptSet | str] = {}
    shared: dict[tuple[str, ...], tuple[PassCounter, dict[str, Any]]] = {}
    for templates, claim_ids in groups.items():
        try:
            prompt_sets[templates] = build_prompt_set(
                data, rows, loaded.tokenizer, list(templates), seed=data.seed, n=data.n
            )
        except (CircuitSpecError, ValueError, KeyError) as exc:
            prompt_sets[templates] = _one_line(exc)
        cache: dict[str, Any] = {"_needed": _needed_hooks(graph, claim_ids, loaded.model.cfg)}
        shared[templates] = (PassCounter(), cache)

    results: dict[str, Measurement] = {}
    started = time.perf_counter()
    bar = None
    task = None
    try:
        for done, claim in enumerate(graph.claims):
            if progress and bar is None and time.perf_counter() - started > 1.0:
                from rich.progress import Progress

                bar = Progress(transient=True)
                bar.start()
                task = bar.add_task("measuring claims", total=len(graph.claims), completed=done)
            templates = tuple(graph.templates(claim.id))
            prompts = prompt_sets[templates]
            if isinstance(prompts, str):
                results[claim.id] = Measurement(claim.id, claim.kind, 0, error=prompts)
            else:
                counter, cache = shared[templates]
                results[claim.id] = measure_claim(graph, claim, loaded, prompts, counter, cache, seed=seed)
            if bar is not None and task is not None:
                bar.update(task, advance=1, description=f"measured {claim.id}")
    finally:
        if bar is not None:
            bar.stop()
    return results


def measure_claim(
    graph: CircuitGraph,
    claim,
    loaded: LoadedModel,
    prompts: PromptSet,
    counter: PassCounter | None = None,
    cache: dict[str, Any] | None = None,
    seed: int = 0,
) -> Measurement:
    """One claim → Measurement (errors become ``Measurement.error``); ``cache`` is shared per prompt set."""
    counter = counter if counter is not None else PassCounter()
    cache = cache if cache is not None else {}
    before = (counter.forward_passes, counter.tokens)
    start = time.perf_counter()
    measurement = Measurement(claim.id, claim.kind, len(prompts))
    try:
        ctx = RunContext(loaded.model, prompts, metric=lambda *a, **k: None, counter=counter, _cache=cache)
        _check_encoder_claim(loaded.model, claim)
        ctx.metric = make_metric(claim.metric, lambda: ctx.clean()[0], prompts, reference=ctx.reference)
        _check_features(graph, claim, loaded.model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            measured = _DISPATCH[claim.kind](ctx, claim, graph, measurement, seed)
        if measured is not None:
            measurement = measured
    except Exception as exc:  # one claim must never stop the run
        measurement = Measurement(claim.id, claim.kind, len(prompts), error=_one_line(exc))
    measurement.cost = RunCost(
        forward_passes=counter.forward_passes - before[0],
        tokens=counter.tokens - before[1],
        seconds=time.perf_counter() - start,
    )
    return measurement


# ------------------------------------------------------------------------ per kind

_ENCODER_UNSUPPORTED = {
    "causal_scrubbing": (
        "causal scrubbing splits the residual stream into a sum of component outputs, and a post-LN "
        "encoder's stream is renormalised after every sublayer (valid kinds: ablation, "
        "activation_patching, path_patching, scaling, attribution, logit_lens, attention, faithfulness)"
    ),
}


def _check_encoder_claim(model: Any, claim: Any) -> None:
    """Encoders output sentence embeddings: only embedding metrics and supported kinds apply."""
    if not getattr(model, "is_encoder", False):
        return
    from .metrics import EMBEDDING_METRICS

    if claim.kind in _ENCODER_UNSUPPORTED:
        raise CircuitSpecError(f"{claim.kind} on an encoder: {_ENCODER_UNSUPPORTED[claim.kind]}")
    if claim.kind != "attention" and claim.metric not in EMBEDDING_METRICS and claim.kind != "logit_lens":
        raise CircuitSpecError(
            f"metric '{claim.metric}' needs next-token logits; an encoder outputs a sentence embedding "
            f"(valid: {', '.join(EMBEDDING_METRICS)})"
        )


def _check_features(graph: CircuitGraph, claim, model: Any) -> None:
    """One line when a claim names a feature whose dictionary is not spliced into the model."""
    known = getattr(model, "hook_dict", {})
    for node in graph.targets(claim.id):
        if node.is_feature and hook_name(node) not in known:
            raise CircuitSpecError(
                f"feature node '{node.text}' needs dictionary '{node.dictionary}' spliced in "
                "(declare it under model.dictionaries)"
            )


def _sites(ctx: RunContext, graph: CircuitGraph, claim) -> list[Site]:
    return [resolve_site(node, ctx.prompts) for node in graph.targets(claim.id)]


def _clean_corrupt(ctx: RunContext) -> tuple[np.ndarray, np.ndarray]:
    clean_logits, _ = ctx.clean()
    corrupt_logits, _ = ctx.corrupted()
    return _np(ctx.metric(clean_logits, ctx.prompts)), _np(ctx.metric(corrupt_logits, ctx.prompts))


def _random(ctx: RunContext, graph: CircuitGraph, claim, m: Measurement, seed: int, **kw) -> None:
    """Fill ``m.random_baseline`` when the claim asks for it."""
    if claim.random_baseline is None:
        return
    from .interventions.random_circuits import random_baseline, random_node_sets

    expectation = claim.expectation
    stat = expectation.statistic if expectation.form != "trend" else "mean"
    node_sets = random_node_sets(
        graph.targets(claim.id), ctx.model.cfg, claim.random_baseline.n, claim.random_baseline.seed
    )
    try:
        m.random_baseline = random_baseline(ctx, claim.kind, node_sets, stat, seed=seed, **kw)
    except ValueError as exc:  # the claim itself was measured; only its baseline is unavailable
        m.extra["random_baseline_error"] = _one_line(exc)


def _embedding_attribution(ctx, claim, graph, m: Measurement) -> None:
    """Encoders: direct effect of the targets on cos(embedding, reference) (``cosine``) or on the
    embedding's own direction (any other metric)."""
    from .interventions.embedding_attribution import direct_embedding_effect

    clean = ctx.clean()[0]
    direction = ctx.reference() if claim.metric == "cosine" else clean
    m.arrays["value"] = _np(direct_embedding_effect(ctx, _sites(ctx, graph, claim), direction))
    m.arrays["clean"] = _np(ctx.metric(clean, ctx.prompts))


def _attribution(ctx, claim, graph, m: Measurement, seed: int) -> None:
    from .interventions.attribution import component_attributions, direct_logit_attribution

    if getattr(ctx.model, "is_encoder", False):
        _embedding_attribution(ctx, claim, graph, m)
        return

    sites = _sites(ctx, graph, claim)
    features = [s for s in sites if s.node.is_feature]
    components = [s for s in sites if not s.node.is_feature]
    value = direct_logit_attribution(ctx, components) if components else torch.zeros(len(ctx.prompts))
    if features:
        from circuitspec.features.effects import feature_logit_attribution

        value = value + feature_logit_attribution(ctx, features)
    m.arrays["value"] = _np(value)
    m.arrays["clean"] = _np(ctx.metric(ctx.clean()[0], ctx.prompts))
    table = component_attributions(ctx)
    cfg = ctx.model.cfg
    m.extra["head_grid"] = [
        [float(table[f"L{layer}H{head}"].mean()) for head in range(cfg.n_heads)]
        for layer in range(cfg.n_layers)
    ]
    _random(ctx, graph, claim, m, seed)


def _embedding_lens(ctx, claim, m: Measurement) -> None:
    """Encoders: the logit-lens claim reads the embedding lens (cosine of pooled residual vs final)."""
    from .interventions.embedding_lens import embedding_lens, embedding_lens_sites

    target = "reference" if claim.metric in ("cosine", "distance_change") else "final"
    values = embedding_lens(ctx, reference=target)
    sites = embedding_lens_sites(ctx.model.cfg.n_layers)
    if claim.at:
        if claim.at not in values:
            raise CircuitSpecError(f"embedding lens site '{claim.at}' (valid: {', '.join(values)})")
        m.arrays["value"] = _np(values[claim.at])
        return
    m.sweep_variable = "layer"
    m.sweep = [SweepPoint(float(x), {"value": _np(values[label])}) for label, _, x in sites]
    m.extra["sites"] = [label for label, _, _ in sites]
    m.arrays["value"] = _np(values[sites[-1][0]])


def _logit_lens(ctx, claim, graph, m: Measurement, seed: int) -> None:
    from .interventions.logit_lens import lens_sites, logit_lens

    if getattr(ctx.model, "is_encoder", False):
        _embedding_lens(ctx, claim, m)
        return

    if claim.at:
        m.arrays["value"] = _np(logit_lens(ctx, [claim.at])[claim.at])
        return
    sites = lens_sites(ctx.model.cfg.n_layers, ctx.model.cfg.attn_only)
    values = logit_lens(ctx, [label for label, _ in sites])
    m.sweep_variable = "layer"
    m.sweep = [SweepPoint(x, {"value": _np(values[label])}) for label, x in sites]
    m.extra["sites"] = [label for label, _ in sites]
    m.arrays["value"] = _np(values[sites[-1][0]])


def _attention(ctx, claim, graph, m: Measurement, seed: int) -> None:
    from .interventions.attention import attention_prob, mean_pattern

    sites = _sites(ctx, graph, claim)
    probs = torch.stack([attention_prob(ctx, s, claim.source, claim.destination) for s in sites])
    m.arrays["value"] = _np(probs.mean(0))
    m.extra["pattern"] = mean_pattern(ctx, sites[0])


def _ablation(ctx, claim, graph, m: Measurement, seed: int) -> None:
    from .interventions.ablation import ablate

    intervened = _np(ablate(ctx, _sites(ctx, graph, claim), claim.method, claim.alpha, seed=seed))
    clean, corrupt = _clean_corrupt(ctx)
    m.arrays.update(value=intervened - clean, clean=clean, corrupt=corrupt, intervened=intervened)
    _random(ctx, graph, claim, m, seed, method=claim.method, alpha=claim.alpha)


def _activation_patching(ctx, claim, graph, m: Measurement, seed: int) -> None:
    from .interventions.activation_patching import activation_patch

    intervened = _np(activation_patch(ctx, _sites(ctx, graph, claim), claim.direction))
    clean, corrupt = _clean_corrupt(ctx)
    base = corrupt if claim.direction == "denoising" else clean
    m.arrays.update(value=intervened - base, clean=clean, corrupt=corrupt, intervened=intervened)
    _random(ctx, graph, claim, m, seed, direction=claim.direction)


def _scaling(ctx, claim, graph, m: Measurement, seed: int) -> None:
    from .interventions.scaling import scale_sweep

    sites = _sites(ctx, graph, claim)
    signs = [float(claim.signs.get(s.node.text, claim.signs.get(s.node.component, 1.0))) for s in sites]
    key = f"scaling:{[s.node.text for s in sites]}:{list(claim.alphas)}:{signs}"
    grid = ctx.cached(key, lambda: _np(scale_sweep(ctx, sites, claim.alphas, signs)))  # [alphas, n]
    clean = _clean_corrupt(ctx)[0]
    alone = None
    if claim.interaction:
        alone = [
            _np(scale_sweep(ctx, [s], claim.alphas, [sign])) - clean
            for s, sign in zip(sites, signs, strict=True)
        ]
    m.sweep_variable = "alpha"
    for a, alpha in enumerate(claim.alphas):
        arrays = {"value": grid[a] - clean, "clean": clean, "intervened": grid[a]}
        if alone is not None:
            arrays["interaction"] = arrays["value"] - sum(effect[a] for effect in alone)
        m.sweep.append(SweepPoint(float(alpha), arrays))
    m.arrays.update(m.sweep[-1].arrays)  # top level: the last α listed
    _random(ctx, graph, claim, m, seed)


def _faithfulness(ctx, claim, graph, m: Measurement, seed: int) -> None:
    from .interventions.faithfulness import faithfulness

    result = faithfulness(ctx, _sites(ctx, graph, claim), claim.method, seed=seed)
    m.arrays.update(
        value=_np(result.recovery),
        clean=_np(result.clean),
        corrupt=_np(result.baseline),
        intervened=_np(result.circuit),
    )
    _random(ctx, graph, claim, m, seed, method=claim.method)


def _external(module: str, function: str) -> Callable[..., Measurement]:
    def measure(ctx, claim, graph, m: Measurement, seed: int) -> Measurement:
        import importlib

        try:
            fn = getattr(importlib.import_module(f"circuitspec.engine.interventions.{module}"), function)
        except (ImportError, AttributeError):
            m.error = (
                f"{claim.kind} is not available in this build (circuitspec.engine.interventions.{module})"
            )
            return m
        result = fn(ctx, claim, graph)
        result.n_prompts = result.n_prompts or len(ctx.prompts)
        return result

    return measure


_DISPATCH: dict[str, Callable[..., Measurement | None]] = {
    "attribution": _attribution,
    "logit_lens": _logit_lens,
    "attention": _attention,
    "ablation": _ablation,
    "activation_patching": _activation_patching,
    "scaling": _scaling,
    "faithfulness": _faithfulness,
    "path_patching": _external("path_patching", "measure_path_patching"),
    "causal_scrubbing": _external("scrubbing", "measure_causal_scrubbing"),
}
