"""circuitspec's edge scores against auto-circuit's (Miller et al. 2024) on one model, prompts, corruption.

For each hypothesis file (default: the three planted zoo models), on its prompts and the corruption it
declares, every edge of the model is scored by

- circuitspec ``eap`` and ``eap-ig`` (``engine.attribution_patching``; EAP-IG interpolates the token
  embeddings, ``--steps`` points);
- auto-circuit ``mask_gradient_prune_scores``: ``eap`` (``mask_val=0``, the gradient of every edge's
  patch mask at the clean run, which its docs say equals Syed et al.'s EAP) and ``mask-ig``
  (``integrated_grad_samples=--steps``: all edge masks moved together from 0 to 1, ``steps + 1`` points).

Both graphs are the same: senders = embedding (auto-circuit: ``Resid Start``), heads, MLPs;
receivers = each head's q / k / v input, each MLP's input, the final stream. Scores are put in the same
units: auto-circuit's gradient is of ``-mean(logit diff)`` per batch, summed over batches (and over the
IG samples), so it is multiplied by ``-batch / n`` (and divided by ``steps + 1``). Printed: edges
scored per second, forward / forward+backward passes (counted by a hook on the embedding, so the same
counter reads both tools), Pearson and Spearman correlation of the scores, top-k overlap, and on a
zoo model whether each method finds every planted edge: in its top k (k = number of planted edges)
with |score| >= 5 % of its largest.

auto-circuit is optional (``make bench-autocircuit`` installs it with ``--no-deps``); without it this
script prints one line and exits 0. auto-circuit 1.0.1 imports ``HookedTransformerKeyValueCache``,
which TransformerLens 3 renamed ``TransformerLensKeyValueCache``; it is used only for key-value caches
this benchmark does not use, so the old name is aliased before the import (``_alias_kv_cache``).

auto-circuit reads the logits at the last position and passes no attention mask, so only prompts of
the most common token length are kept (the zoo's are all one length). Model weights are frozen
(``requires_grad=False``, as auto-circuit's own ``load_tl_model`` does) so neither tool computes
weight gradients. Run with one thread:
``OMP_NUM_THREADS=1 python benchmarks/bench_autocircuit.py [FILE ...] [--prompts 32] [--top-k 10]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
from dataclasses import fields, replace
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from bench_discover import PassCounter, _caches, _naive_edge
from scipy.stats import pearsonr, spearmanr

from circuitspec.discover.session import open_session
from circuitspec.engine.attribution_patching import attribution_patching
from circuitspec.engine.context import RunContext
from circuitspec.engine.metrics import logit_diff

ZOO = ["hypotheses/zoo/induction.yaml", "hypotheses/zoo/label_mover.yaml", "hypotheses/zoo/suppression.yaml"]
# The planted edges (each zoo module's docstring), without their position roles: auto-circuit scores an
# edge over all positions at once. Each one's effect is measured here by noising path patching with plain
# TransformerLens hooks (bench_discover._naive_edge). zoo.suppression's ``embed -> L1H0.k`` (the
# suppressor's key reads the token from the embedding) moves the logit difference by +1.6 under this
# corruption, though docs/discover.md's table and tests/test_discover.py leave it out.
PLANTED = {
    "zoo_induction": {("embed", "L0H0.v"), ("L0H0", "L1H1.k"), ("L1H1", "logits")},
    "zoo_label_mover": {("embed", "MLP0"), ("MLP0", "L1H0.v"), ("L1H0", "logits")},
    "zoo_suppression": {
        ("embed", "L0H0.v"), ("L0H0", "logits"), ("L0H0", "L1H0.q"), ("embed", "L1H0.k"), ("embed", "L1H0.v"),
        ("L1H0", "logits"),
    },
}  # fmt: skip
FOUND = 0.05  # a planted edge counts as found at >= 5 % of the largest |score| (and in the top k)
Edge = tuple[str, str]
Scores = dict[Edge, float]


def _alias_kv_cache() -> None:
    """Give TransformerLens 3 the key-value cache names auto-circuit 1.0.1 imports (renamed in TL 3)."""
    import transformer_lens as tl

    if hasattr(tl, "HookedTransformerKeyValueCache"):
        return
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    tl.HookedTransformerKeyValueCache = TransformerLensKeyValueCache  # type: ignore[attr-defined]
    legacy = types.ModuleType("transformer_lens.past_key_value_caching")
    legacy.HookedTransformerKeyValueCache = TransformerLensKeyValueCache  # type: ignore[attr-defined]
    sys.modules.setdefault("transformer_lens.past_key_value_caching", legacy)


def load_auto_circuit() -> types.SimpleNamespace | None:
    """auto-circuit's pieces this benchmark calls, or None (with the reason printed) when absent."""
    try:
        _alias_kv_cache()
        from auto_circuit.data import PromptDataLoader, PromptDataset
        from auto_circuit.prune_algos.ACDC import acdc_prune_scores
        from auto_circuit.prune_algos.mask_gradient import mask_gradient_prune_scores
        from auto_circuit.utils.graph_utils import patchable_model
    except ImportError as error:
        print(f"auto-circuit is not importable ({error}); `make bench-autocircuit` installs it. Skipped.")
        return None
    return types.SimpleNamespace(
        loader=PromptDataLoader, dataset=PromptDataset, mask_gradient=mask_gradient_prune_scores,
        patchable=patchable_model, acdc=acdc_prune_scores,
    )  # fmt: skip


def one_length(prompts: Any, limit: int, batch: int) -> Any:
    """The first prompts of the most common token length (at most ``limit``, a multiple of ``batch``),
    trimmed to that length: auto-circuit reads position -1 and passes no attention mask."""
    lengths = prompts.lengths
    common = int(torch.mode(lengths).values)
    rows = torch.nonzero(lengths == common).flatten()
    keep = min(limit, len(rows)) // batch * batch
    if keep == 0:
        raise SystemExit(f"no {batch} prompts of one length (the most common is {common} tokens)")
    rows = rows[:keep]
    n, changes = len(lengths), {}
    for field in fields(prompts):
        value = getattr(prompts, field.name)
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == n:
            value = value[rows]
            value = value[:, :common] if field.name in ("tokens", "corrupt_tokens") else value
        elif isinstance(value, dict):
            value = {k: v[rows] for k, v in value.items()}
        elif isinstance(value, (list, tuple)) and len(value) == n:
            value = [value[i] for i in rows.tolist()]
        else:
            continue
        changes[field.name] = value
    return replace(prompts, **changes)


def circuitspec_scores(loaded: Any, prompts: Any, method: str, steps: int, batch: int) -> Scores:
    """circuitspec's edge scores (mean over prompts, metric units) from a fresh context."""
    ctx = RunContext(loaded.model, prompts, logit_diff, tokenizer=loaded.tokenizer)
    result = attribution_patching(ctx, method=method, steps=steps, batch_size=batch)
    graph, totals = result.graph, result.totals
    return {
        (s, r): float(totals[i, j])
        for i, s in enumerate(graph.senders)
        for j, r in enumerate(graph.receivers)
        if bool(graph.valid[i, j])
    }


def _node_name(name: str) -> str:
    """auto-circuit's node names in circuitspec's: ``Resid Start`` → embed, ``A1.0.Q`` → L1H0.q,
    ``MLP 0`` → MLP0, ``Resid End`` → logits."""
    if name == "Resid Start":
        return "embed"
    if name == "Resid End":
        return "logits"
    if name.startswith("MLP "):
        return f"MLP{name[4:]}"
    layer, head, *channel = name[1:].split(".")
    return f"L{layer}H{head}" + (f".{channel[0].lower()}" if channel else "")


def make_patchable(ac: types.SimpleNamespace, model: Any) -> Any:
    """The model wrapped by auto-circuit for edge patching (separate q / k / v, all positions at once)."""
    model.cfg.use_attn_result = True
    model.cfg.use_split_qkv_input = True
    if not model.cfg.attn_only:
        model.cfg.use_hook_mlp_in = True
    return ac.patchable(
        model, factorized=True, slice_output="last_seq", separate_qkv=True, device=torch.device("cpu")
    )


def autocircuit_scores(
    ac: types.SimpleNamespace, patchable: Any, prompts: Any, variant: str, steps: int, batch: int
) -> Scores:
    """auto-circuit's mask-gradient edge scores, in circuitspec's units and sign."""
    loader = _loader(ac, prompts, batch)
    for wrapper in patchable.dest_wrappers:
        wrapper.patch_mask.grad = None
    options = {"mask_val": 0.0} if variant == "eap" else {"integrated_grad_samples": steps}
    raw = ac.mask_gradient(
        patchable, loader, None, grad_function="logit", answer_function="avg_diff", **options
    )
    scale = -batch / len(prompts) / (1 if variant == "eap" else steps + 1)
    return {
        (_node_name(e.src.name), _node_name(e.dest.name)): float(raw[e.dest.module_name][e.patch_idx]) * scale
        for e in patchable.edges
    }


def _loader(ac: types.SimpleNamespace, prompts: Any, batch: int) -> Any:
    """auto-circuit's data loader over the clean / corrupted prompts and their two answers."""
    answers = [torch.tensor([int(x)]) for x in prompts.desired]
    wrong = [torch.tensor([int(x)]) for x in prompts.undesired]
    data = ac.dataset(prompts.tokens, prompts.corrupt_tokens, answers, wrong)
    return ac.loader(data, seq_len=None, diverge_idx=0, batch_size=batch, shuffle=False)


def acdc_line(
    ac: types.SimpleNamespace, patchable: Any, prompts: Any, name: str, counter: PassCounter
) -> str:
    """auto-circuit's ACDC (its default τ grid, KL to the clean output, one batch of every prompt):
    the edges it never prunes at any τ of the grid (1e-5 … 0.09), set against the planted ones."""
    counter.reset()
    started = time.perf_counter()
    raw = ac.acdc(patchable, _loader(ac, prompts, len(prompts)), None)
    seconds = time.perf_counter() - started
    kept = {
        (_node_name(e.src.name), _node_name(e.dest.name))
        for e in patchable.edges
        if float(raw[e.dest.module_name][e.patch_idx]) == float("inf")  # never pruned, at any τ
    }
    planted = PLANTED.get(name)
    verdict = "" if planted is None else f"; planted missed: {sorted(planted - kept) or 'none'}, "
    verdict += "" if planted is None else f"extra: {sorted(kept - planted) or 'none'}"
    shown = ", ".join(f"{s}->{r}" for s, r in sorted(kept)) if len(kept) <= 12 else f"{len(kept)} edges"
    return f"  {'auto-circuit acdc':20s} {seconds:.2f} s, {counter}; kept at every τ: {shown}{verdict}"


def compare(a: Scores, b: Scores, k: int) -> str:
    """Pearson and Spearman r of two score maps over the same edges, and their top-k overlap."""
    edges = sorted(a)
    x, y = np.array([a[e] for e in edges]), np.array([b[e] for e in edges])
    top_a, top_b = _top(a, k), _top(b, k)
    return (
        f"Pearson {pearsonr(x, y)[0]:.4f}, Spearman {spearmanr(x, y)[0]:.4f}, "
        f"top-{k} overlap {len(top_a & top_b)}/{k}, max |diff| {np.abs(x - y).max():.2e} "
        f"(max |score| {np.abs(x).max():.3g})"
    )


def _top(scores: Scores, k: int) -> set[Edge]:
    """The ``k`` edges of largest |score| (ties broken by name, so the set is deterministic)."""
    return set(sorted(scores, key=lambda e: (-abs(scores[e]), e))[:k])


def planted_effects(model: Any, prompts: Any, planted: set[Edge]) -> str:
    """Each planted edge's effect by noising path patching with plain hooks (the independent reference)."""
    clean, corrupt = _caches(model, prompts)
    effects = {edge: _naive_edge(model, prompts, clean, corrupt, *edge) for edge in sorted(planted)}
    shown = ", ".join(f"{s}->{r} {value:+.3g}" for (s, r), value in effects.items())
    return f"  planted edges, path patched (plain hooks): {shown}"


def planted_line(name: str, scores: Scores, planted: set[Edge]) -> str:
    """Whether every planted edge is found: ranked in the top len(planted) with |score| at least
    ``FOUND`` of the method's largest (an edge scoring ~0 that ties its way into the top k is not)."""
    order = sorted(scores, key=lambda e: (-abs(scores[e]), e))
    ranks = {e: order.index(e) + 1 for e in planted}
    floor = FOUND * max(abs(v) for v in scores.values())
    missed = sorted(e for e in planted if ranks[e] > len(planted) or abs(scores[e]) < floor)
    detail = ", ".join(f"{s}->{r} #{ranks[(s, r)]} ({scores[(s, r)]:+.3g})" for s, r in sorted(planted))
    verdict = "all found" if not missed else "missed " + ", ".join(f"{s}->{r}" for s, r in missed)
    return f"  {name:20s} planted edges (top {len(planted)}, >= {FOUND:.0%} of max): {verdict}; {detail}"


def run_file(ac: types.SimpleNamespace, path: str, args: argparse.Namespace) -> None:
    """Score one hypothesis' edges with both tools and print the comparison."""
    session = open_session(path, "all", [args.template] if args.template else None)
    model = session.loaded.model
    for param in model.parameters():
        param.requires_grad_(False)
    prompts = one_length(session.ctx.prompts, args.prompts, args.batch)
    name, width = session.hypothesis.spec.name, prompts.tokens.shape[1]
    print(f"\n{path}: {name}, {len(prompts)} prompts of {width} tokens")
    counter, results = PassCounter(model), {}
    for method in ("eap", "eap-ig"):
        counter.reset()
        started = time.perf_counter()
        results[f"circuitspec {method}"] = circuitspec_scores(
            session.loaded, prompts, method, args.steps, args.batch
        )
        _timing(f"circuitspec {method}", len(results[f"circuitspec {method}"]), started, counter)
    if name in PLANTED:
        print(planted_effects(model, prompts, PLANTED[name]))
    started = time.perf_counter()
    patchable = make_patchable(ac, model)
    print(f"  auto-circuit patchable_model: {time.perf_counter() - started:.2f} s, {patchable.n_edges} edges")
    for variant in ("eap", "mask-ig"):
        counter.reset()
        started = time.perf_counter()
        scores = autocircuit_scores(ac, patchable, prompts, variant, args.steps, args.batch)
        results[f"auto-circuit {variant}"] = scores
        _timing(f"auto-circuit {variant}", len(scores), started, counter)
    _report(results, name, args.top_k)
    if patchable.n_edges <= args.acdc_max_edges:
        print(acdc_line(ac, patchable, prompts, name, counter))
    counter.handle.remove()


def _timing(name: str, n_edges: int, started: float, counter: PassCounter) -> None:
    seconds = time.perf_counter() - started
    print(f"  {name:20s} {n_edges} edges in {seconds:.2f} s = {n_edges / seconds:,.0f} edges/s; {counter}")


def _report(results: dict[str, Scores], name: str, top_k: list[int]) -> None:
    """Edge sets, correlations, top-k overlaps and (zoo) planted-edge recovery."""
    reference = results["circuitspec eap"]
    for label, scores in results.items():
        if set(scores) != set(reference):
            missing, extra = set(reference) - set(scores), set(scores) - set(reference)
            raise SystemExit(f"{label}: edge sets differ ({len(missing)} missing, {len(extra)} extra)")
    pairs = [
        ("circuitspec eap", "auto-circuit eap"), ("circuitspec eap-ig", "auto-circuit mask-ig"),
        ("circuitspec eap-ig", "auto-circuit eap"), ("circuitspec eap", "circuitspec eap-ig"),
    ]  # fmt: skip
    for k in top_k:
        for a, b in pairs:
            print(f"  {a} vs {b}: {compare(results[a], results[b], min(k, len(reference)))}")
    if name in PLANTED:
        for label, scores in results.items():
            print(planted_line(label, scores, PLANTED[name]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", default=ZOO)
    parser.add_argument("--prompts", type=int, default=32, help="at most this many prompts (of one length)")
    parser.add_argument("--template", default=None, help="only this template's prompts")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--top-k", type=int, nargs="+", default=[3, 10])
    parser.add_argument(
        "--acdc-max-edges", type=int, default=1000, help="run ACDC (one pass per edge per τ) up to this size"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    ac = load_auto_circuit()
    if ac is None:
        return
    print(f"load average {os.getloadavg()}")
    for path in args.files:
        run_file(ac, path, args)
    print(f"\nload average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
