"""Run every claim of a compiled hypothesis on a loaded model → one :class:`Measurement` per claim.

One :class:`PromptSet` is built per distinct row split and template selection; all claims on it
share one context whose clean and corrupted runs are computed once, caching every hook the registry says
those claims read (:attr:`ClaimKind.needed_hooks`) and the residual streams their edited passes
start from, nothing else. Each claim then calls its kind's ``measure(ctx, claim, graph, seed)``. A
claim that fails becomes ``Measurement(error=...)`` — one line — and the rest of the run goes on.
Once the last claim reading a prompt set's runs is done (its own, or one of a smaller set sliced from
them), the set's caches are freed, so memory does not grow with the number of prompt sets.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from circuitspec.claims import claim_kind
from circuitspec.errors import CircuitSpecError, one_line
from circuitspec.graph.circuit import CircuitGraph
from circuitspec.measurement import Measurement, RunCost
from circuitspec.spec.geometry import expand_kv, hook_name
from circuitspec.spec.splits import claim_split, select_rows

from .adapter import ModelAdapter, adapt
from .architecture import Architecture
from .context import PassCounter, RunContext, release_runs
from .edits import start_hooks
from .metrics import make_metric
from .models import LoadedModel
from .progress import ClaimProgress
from .prompts import PromptSet, build_prompt_set
from .reference_sets import add_reference_groups, link_reference_sets
from .shared_runs import link_to_superset

if TYPE_CHECKING:
    import torch

__all__ = ["measure_claim", "needed_hooks", "prompt_key", "run_claims"]


# kinds whose measurement runs edited passes from the shared runs' cached residual stream
_EDITING = frozenset({"ablation", "activation_patching", "scaling", "faithfulness"})


def needed_hooks(graph: CircuitGraph, claim_ids: list[str], arch: Architecture) -> set[str]:
    """Hooks the claims on one prompt set read from the clean / corrupted runs, so each runs once: what
    the registry says each kind reads, plus the streams its edited passes start from (every block's
    when random circuits, which may start anywhere, are drawn)."""
    names: set[str] = set()
    for claim_id in claim_ids:
        claim = graph.claim(claim_id)
        kind = claim_kind(claim.kind)
        read = kind.needed_hooks(claim, graph, arch)
        names |= read
        if claim.kind not in _EDITING:
            continue
        if claim.kind == "faithfulness":  # one pass edits every layer: it starts at the first
            names |= set(start_hooks(read, arch))
        else:  # scaling with interaction, for one, scales each target alone
            names |= {hook for name in read for hook in start_hooks([name], arch)}
        if getattr(claim, "random_baseline", None) is not None:
            names |= set(arch.stream_hooks)
    return names


def prompt_key(graph: CircuitGraph, claim: Any, run_split: str | None = None) -> tuple[str, ...]:
    """The prompt set a claim runs on: its row split (``spec.splits``), then its template ids."""
    return (claim_split(claim, graph.hypothesis, run_split), *graph.templates(claim.id))


def _prompt_sets(
    graph: CircuitGraph, loaded: LoadedModel, rows: Sequence[dict], run_split: str | None = None
) -> dict[tuple[str, ...], tuple[PromptSet | str, PassCounter, dict[str, Any]]]:
    """Per (split, template selection): its prompts (or why they could not be built), counter and cache."""
    data = graph.hypothesis.data
    groups: dict[tuple[str, ...], list[str]] = {}
    for claim in graph.claims:
        groups.setdefault(prompt_key(graph, claim, run_split), []).append(claim.id)
    add_reference_groups(groups, graph, run_split)  # mean_from: the prompts a mean ablation averages over
    out: dict[tuple[str, ...], tuple[PromptSet | str, PassCounter, dict[str, Any]]] = {}
    counter = PassCounter()  # one counter: a run shared between prompt sets is charged once
    arch = adapt(loaded.model).arch
    for key, claim_ids in groups.items():
        split, *templates = key
        prompts: PromptSet | str
        try:
            chosen = select_rows(rows, data, split)
            prompts = build_prompt_set(data, chosen, loaded.tokenizer, templates, seed=data.seed, n=data.n)
        except (CircuitSpecError, ValueError, KeyError) as exc:
            prompts = one_line(exc)
        cache: dict[str, Any] = {"_needed": needed_hooks(graph, claim_ids, arch), "_declared": True}
        out[key] = (prompts, counter, cache)
    _share_runs(out, loaded)
    own_key = lambda claim: prompt_key(graph, claim, run_split)  # noqa: E731
    link_reference_sets(out, graph, loaded.model, loaded.tokenizer, own_key, run_split)
    return out


def _share_runs(
    sets: dict[tuple[str, ...], tuple[PromptSet | str, PassCounter, dict[str, Any]]], loaded
) -> None:
    """Let each prompt set read its clean / corrupted runs from the largest set of the same split holding
    its templates, which then caches every hook either needs (one run instead of several, see
    ``shared_runs``)."""
    for key, (prompts, counter, cache) in sets.items():
        supersets = [
            t
            for t in sets
            if t[0] == key[0] and set(key[1:]) < set(t[1:]) and not isinstance(sets[t][0], str)
        ]
        if isinstance(prompts, str) or not supersets:
            continue
        large_prompts, _, large_cache = sets[max(supersets, key=len)]
        assert not isinstance(large_prompts, str)
        large = RunContext(loaded.model, large_prompts, _metric_not_set, counter, large_cache)
        if link_to_superset(cache, prompts, large):
            large_cache["_needed"] = large_cache["_needed"] | cache["_needed"]


def run_claims(
    graph: CircuitGraph,
    loaded: LoadedModel,
    rows: Sequence[dict],
    base_dir: Path,
    progress: bool = True,
    seed: int | None = None,
    split: str | None = None,
) -> dict[str, Measurement]:
    """Measure every claim in ``graph`` (file order); never raises for a single claim's failure.

    ``seed`` (default: the hypothesis' ``seed``) seeds resampling, scrubbing and random circuits;
    prompt sampling uses ``data.seed``. ``split`` (``verify --split``) puts every claim on that row
    split; otherwise each claim's own or the hypothesis' default (:func:`spec.splits.claim_split`).
    """
    seed = graph.hypothesis.seed if seed is None else seed
    shared = _prompt_sets(graph, loaded, rows, split)
    last_use = _last_uses(graph, shared, split)
    results: dict[str, Measurement] = {}
    reporter = ClaimProgress(len(graph.claims)) if progress else None
    try:
        for done, claim in enumerate(graph.claims):
            prompts, counter, cache = shared[prompt_key(graph, claim, split)]
            if isinstance(prompts, str):
                results[claim.id] = Measurement(claim.id, claim.kind, 0, error=prompts, seed=seed)
            else:
                results[claim.id] = measure_claim(graph, claim, loaded, prompts, counter, cache, seed=seed)
            for templates, last in last_use.items():
                if last == done:  # no claim left reads this prompt set's runs
                    release_runs(shared[templates][2])
            if reporter is not None:
                reporter.measured(done + 1, claim.id, results[claim.id].cost.forward_passes)
    finally:
        if reporter is not None:
            reporter.close()
    return results


def _last_uses(
    graph: CircuitGraph,
    shared: dict[tuple[str, ...], tuple[Any, Any, dict[str, Any]]],
    split: str | None = None,
) -> dict[tuple[str, ...], int]:
    """Per prompt set, the index of the last claim that reads its runs: its own claims' and, for a set
    others slice their runs from, theirs (transitively)."""
    last: dict[tuple[str, ...], int] = {}
    for index, claim in enumerate(graph.claims):
        last[prompt_key(graph, claim, split)] = index
    return extend_to_sources(last, shared)


def extend_to_sources(
    last: dict[tuple[str, ...], int], shared: dict[tuple[str, ...], tuple[Any, Any, dict[str, Any]]]
) -> dict[tuple[str, ...], int]:
    """``last`` (per prompt set, the index of the last claim reading its runs) extended to the sets those
    runs are sliced from (transitively): a set is kept while a set sliced from it is still read."""
    by_cache = {id(cache): templates for templates, (_, _, cache) in shared.items()}
    links = [
        (templates, by_cache[id(source.context._cache)])
        for templates, (_, _, cache) in shared.items()
        for key in ("clean:from", "corrupt:from")
        if (source := cache.get(key)) is not None and id(source.context._cache) in by_cache
    ]
    changed = True
    while changed:
        changed = False
        for small, large in links:
            if last.get(small, -1) > last.get(large, -1):
                last[large] = last[small]
                changed = True
    return last


def _metric_not_set(*args: Any, **kwargs: Any) -> torch.Tensor:
    """Stands in for the claim's metric until the run context it reads from exists."""
    raise RuntimeError("the claim's metric is read before it was set")


def _name_shared_heads(measurement: Measurement, targets: list[Any], arch: Any) -> None:
    """A shared key/value head (``L7KV1.v``) acts through every query head of its group: the report
    names them (``extra["shared_kv_heads"]``)."""
    groups = {
        node.text: [head.text for head in expand_kv(node, arch.n_heads, arch.n_kv_heads)]
        for node in targets
        if node.is_kv
    }
    if groups:
        measurement.extra["shared_kv_heads"] = groups


def measure_claim(
    graph: CircuitGraph,
    claim: Any,
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
    kind = claim_kind(claim.kind)
    try:
        ctx = RunContext(loaded.model, prompts, _metric_not_set, counter, cache, tokenizer=loaded.tokenizer)
        ctx.need(sorted(kind.needed_hooks(claim, graph, ctx.adapter.arch)))
        _check_encoder_claim(ctx.adapter.arch, claim)
        getattr(ctx.adapter, "check_claim", lambda kind: None)(claim.kind)  # kinds a backend cannot run
        ctx.metric = make_metric(claim.metric, lambda: ctx.clean()[0], prompts, reference=ctx.reference)
        _check_features(graph, claim, ctx.adapter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            measurement = kind.load_measure()(ctx, claim, graph, seed)
        _name_shared_heads(measurement, graph.targets(claim.id), ctx.adapter.arch)
        return measurement
    except Exception as exc:  # one claim must never stop the run
        measurement = Measurement(claim.id, claim.kind, len(prompts), error=one_line(exc), seed=seed)
        measurement.cost = RunCost(
            forward_passes=counter.forward_passes - before[0],
            tokens=counter.tokens - before[1],
            seconds=time.perf_counter() - start,
        )
        return measurement


def _check_encoder_claim(arch: Architecture, claim: Any) -> None:
    """Encoders output sentence embeddings: only embedding metrics and supported kinds apply."""
    if not arch.encoder:
        return
    from circuitspec.claims import REGISTRY

    from .metrics import EMBEDDING_METRICS

    kind = claim_kind(claim.kind)
    if not kind.encoder:
        valid = ", ".join(name for name, entry in REGISTRY.items() if entry.encoder)
        raise CircuitSpecError(f"{claim.kind} on an encoder: {kind.encoder_reason} (valid kinds: {valid})")
    if claim.kind not in ("attention", "logit_lens") and claim.metric not in EMBEDDING_METRICS:
        raise CircuitSpecError(
            f"metric '{claim.metric}' needs next-token logits; an encoder outputs a sentence embedding "
            f"(valid: {', '.join(EMBEDDING_METRICS)})"
        )


def _check_features(graph: CircuitGraph, claim: Any, adapter: ModelAdapter) -> None:
    """One line when a claim names a feature whose dictionary is not spliced into the model."""
    for node in graph.targets(claim.id):
        if node.is_feature and not adapter.has_hook(hook_name(node)):
            raise CircuitSpecError(
                f"feature node '{node.text}' needs dictionary '{node.dictionary}' spliced in "
                "(declare it under model.dictionaries)"
            )
