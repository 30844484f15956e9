"""Engine benchmark: batched path patching and ablation vs naive per-edge / per-ablation loops.

A random-weight model shaped like GPT-2 small (12 layers × 12 heads, d_model 768, d_mlp 3072; a
1000-token vocabulary, n_ctx 64) runs ``--prompts`` prompts. Two workloads, each timed for the engine
and for a naive loop in the same run, with forward passes counted and results cross-checked:

- path patching of 30 IOI-shaped edges (late heads / MLPs → logits, S-inhibition-like → name-mover
  queries, induction-like → keys/values), MLPs frozen: the engine's ``path_patch_edges`` against one
  IOI three-step path patch per edge (``naive_path_patch`` with the clean/corrupted caches shared);
- an ablation set (8 single-head mean ablations): the engine's batched edits (each copy of the batch
  starting at its head's layer from the cached clean stream, end tokens unembedded only) against one
  plain hooked full pass per ablation.

Torch threads: one clean pass is timed with 1 and with 2 threads and the faster setting is used
(``--threads`` forces one). ``--naive-edges k`` (default 12, to stay under ~3 minutes on 2 cores)
times the naive loop on the first k edges and scales its time linearly (each naive edge costs
exactly two identical full passes); ``--naive-edges 30`` times all of them.
Run: ``python benchmarks/bench_engine.py`` (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.ablation import ablation_source, edits_for, run_edits
from circuitspec.engine.interventions.path_patching import path_patch_edges
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.prompts import PromptSet
from circuitspec.engine.sites import resolve_site
from circuitspec.spec.nodes import parse_node

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/references: the IOI reference
from tests.references.path_patching import naive_path_patch, run_cache_names

EDGES = (
    [
        (s, "logits")
        for s in ["L11H0", "L11H1", "L11H2", "L11H3", "L10H7", "L10H10", "L9H6", "L9H9", "MLP11", "MLP10"]
    ]
    + [(s, r) for s in ["L7H3", "L7H9", "L8H6", "L8H10", "MLP8"] for r in ["L9H6.q@end", "L9H9.q@end"]]
    + [(s, r) for s in ["L5H5", "L5H8", "L6H9", "L5H9@s2", "L4H11"] for r in ["L7H3.v", "L8H6.k"]]
)
ABLATED_HEADS = ["L1H4", "L2H2", "L3H7", "L5H1", "L6H6", "L8H0", "L9H3", "L10H11"]


def make_model(seed: int = 0):
    """A GPT-2-small-shaped HookedTransformer with TransformerLens' default random initialisation."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=12,
        n_heads=12,
        d_model=768,
        d_head=64,
        d_mlp=3072,
        d_vocab=1000,
        n_ctx=64,
        act_fn="gelu_new",
        normalization_type="LN",
        seed=seed,
        device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HookedTransformer(cfg)
    return model.eval()


def make_prompts(n: int, max_len: int, seed: int = 0) -> PromptSet:
    """``n`` random prompts of lengths ``max_len - 2 … max_len``; each twin differs at role s1."""
    gen = torch.Generator().manual_seed(seed)
    lengths = max_len - torch.randint(0, 3, (n,), generator=gen)
    tokens = torch.randint(1, 1000, (n, max_len), generator=gen)
    tokens[torch.arange(max_len)[None, :] >= lengths[:, None]] = 0
    s1 = torch.full((n,), 1)
    s2 = lengths - 3
    corrupt = tokens.clone()
    corrupt[torch.arange(n), s1] = 1 + (tokens[torch.arange(n), s1] + 7) % 999
    answers = torch.randint(1, 1000, (n, 2), generator=gen)
    return PromptSet(
        tokens=tokens,
        corrupt_tokens=corrupt,
        lengths=lengths,
        role_positions={"s1": s1, "s2": s2},
        desired=answers[:, 0],
        undesired=answers[:, 1],
        corrupt_desired=answers[:, 0],
        corrupt_undesired=answers[:, 1],
        rows=[{} for _ in range(n)],
        template_ids=["t"] * n,
    )


def pick_threads(model, prompts: PromptSet) -> tuple[int, dict[int, float]]:
    """Time one clean pass with 1 and 2 torch threads; the faster wins."""
    seconds = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            model(prompts.tokens[:8])  # warm up
            t0 = time.perf_counter()
            model(prompts.tokens)
            seconds[threads] = time.perf_counter() - t0
    best = min(seconds, key=seconds.get)
    return best, seconds


def layer_equivalent_passes(n_layers: int = 12) -> float:
    """Engine compute in full passes: two cached runs plus, per edge, the blocks from its receiver on."""
    total = 2.0
    for _, receiver in EDGES:
        node = parse_node(receiver)
        total += 0.0 if node.layer is None else (n_layers - node.layer) / n_layers
    return total


def bench_path_patching(model, prompts: PromptSet, naive_edges: int) -> dict:
    edges = [(parse_node(a), parse_node(b)) for a, b in EDGES]
    n = len(prompts)
    ctx = RunContext(model=model, prompts=prompts, metric=logit_diff)
    t0, c0 = time.perf_counter(), time.process_time()
    patched, clean, _ = path_patch_edges(ctx, edges, mlps="frozen")
    engine_s, engine_cpu = time.perf_counter() - t0, time.process_time() - c0
    engine_passes = ctx.counter.forward_passes / n
    engine_equivalents = ctx.counter.layer_passes / n

    positions = {
        "s1": prompts.role_positions["s1"],
        "s2": prompts.role_positions["s2"],
        "end": prompts.lengths - 1,
    }
    naive_passes = 0

    def count(batch: int) -> None:
        nonlocal naive_passes
        naive_passes += 1

    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        names = run_cache_names(model)
        caches = tuple(
            model.run_with_cache(t, names_filter=names)[1].cache_dict
            for t in (prompts.tokens, prompts.corrupt_tokens)
        )
        naive_passes += 2
        cache_s, cache_cpu = time.perf_counter() - t0, time.process_time() - c0
        worst = 0.0
        for row, edge in enumerate(edges[:naive_edges]):
            logits = naive_path_patch(
                model,
                prompts.tokens,
                prompts.corrupt_tokens,
                list(edge),
                positions=positions,
                caches=caches,
                count=count,
            )
            worst = max(worst, float((logit_diff(logits, prompts) - patched[row]).abs().max()))
    naive_s, naive_cpu = time.perf_counter() - t0, time.process_time() - c0
    scale = len(edges) / naive_edges
    naive_total = cache_s + (naive_s - cache_s) * scale
    naive_total_cpu = cache_cpu + (naive_cpu - cache_cpu) * scale
    return {
        "edges": len(edges),
        "engine_s": engine_s,
        "engine_cpu": engine_cpu,
        "engine_passes": engine_passes,
        "engine_equivalents": engine_equivalents,
        "naive_s": naive_total,
        "naive_cpu": naive_total_cpu,
        "naive_measured_edges": naive_edges,
        "naive_passes": 2 + 2 * len(edges),
        "max_abs_diff": worst,
        "moved": int(((patched - clean).abs().max(-1).values > 1e-4).sum()),
    }


def bench_ablation(model, prompts: PromptSet, repeats: int = 3) -> dict:
    """Engine vs naive loop, interleaved ``repeats`` times; the fastest run of each is reported (the
    least disturbed by other work on a shared machine), passes from the first engine run."""
    n = len(prompts)
    ctx = RunContext(model=model, prompts=prompts, metric=logit_diff)
    sites = [resolve_site(parse_node(h), prompts) for h in ABLATED_HEADS]
    hooks = sorted({s.hook_name for s in sites})
    _, cache = ctx.clean(hooks)  # the clean run the means come from (shared by both loops, not timed)
    sources = {id(s): ablation_source(ctx, s, "mean") for s in sites}
    shapes = {h: cache[h].shape for h in hooks}

    def engine() -> torch.Tensor:
        logits = run_edits(
            ctx, prompts.tokens, edits_for([[s] for s in sites], sources, shapes), copies=len(sites)
        )
        return torch.stack([logit_diff(logits[i * n : (i + 1) * n], prompts) for i in range(len(sites))])

    def naive() -> torch.Tensor:
        out = []
        with torch.inference_mode():
            for site in sites:
                mean = sources[id(site)]

                def ablate(act, hook, site=site, mean=mean):
                    act = act.clone()
                    act[:, :, site.head] = mean[:, :, site.head]
                    return act

                logits = model.run_with_hooks(prompts.tokens, fwd_hooks=[(site.hook_name, ablate)])
                out.append(logit_diff(logits, prompts))
        return torch.stack(out)

    passes0, layers0 = ctx.counter.forward_passes, ctx.counter.layer_passes
    timings: dict[str, list[tuple[float, float]]] = {"engine": [], "naive": []}
    results = {}
    for _ in range(repeats):
        for name, run in (("engine", engine), ("naive", naive)):
            t0, c0 = time.perf_counter(), time.process_time()
            results[name] = run()
            timings[name].append((time.perf_counter() - t0, time.process_time() - c0))
    per_repeat = (ctx.counter.forward_passes - passes0) / repeats / n
    return {
        "ablations": len(sites),
        "repeats": repeats,
        "engine_s": min(t for t, _ in timings["engine"]),
        "engine_cpu": min(c for _, c in timings["engine"]),
        "naive_s": min(t for t, _ in timings["naive"]),
        "naive_cpu": min(c for _, c in timings["naive"]),
        "all_engine_s": [round(t, 2) for t, _ in timings["engine"]],
        "all_naive_s": [round(t, 2) for t, _ in timings["naive"]],
        "engine_passes": per_repeat,
        "engine_equivalents": (ctx.counter.layer_passes - layers0) / repeats / n,
        "naive_passes": len(sites),
        "max_abs_diff": float((results["engine"] - results["naive"]).abs().max()),
    }


def report(label: str, wall: float, cpu: float, passes: str) -> None:
    print(f"  {label} {wall:7.2f} s wall, {cpu:7.2f} s CPU, {passes}")


def speedup(result: dict) -> None:
    wall = result["naive_s"] / result["engine_s"]
    cpu = result["naive_cpu"] / result["engine_cpu"]
    print(f"  speed-up {wall:.1f}x wall, {cpu:.1f}x CPU; max |engine - naive| {result['max_abs_diff']:.1e}")


def path_patching(model, prompts: PromptSet, args: argparse.Namespace) -> None:
    """Time and print the path-patching workload."""
    pp = bench_path_patching(model, prompts, max(1, min(args.naive_edges, len(EDGES))))
    timed = pp["naive_measured_edges"]
    scaled = "" if timed == pp["edges"] else f" (timed on {timed} edges, scaled linearly)"
    print(f"path patching, {pp['edges']} edges, MLPs frozen, batches of {args.prompts} prompts:")
    report("engine", pp["engine_s"], pp["engine_cpu"], f"{pp['engine_passes']:.0f} passes counted")
    print(
        f"    ({pp['engine_equivalents']:.2f} full-pass equivalents counted; "
        f"{layer_equivalent_passes():.2f} expected: 2 cached runs + each edge from its receiver's layer)"
    )
    report("naive ", pp["naive_s"], pp["naive_cpu"], f"{pp['naive_passes']} passes{scaled}")
    speedup(pp)
    print(f"  {pp['moved']} of {pp['edges']} edges move the metric")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--length", type=int, default=8, help="longest prompt, in tokens")
    parser.add_argument("--naive-edges", type=int, default=12, help="naive loop on the first k edges, scaled")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: time 1 vs 2, use the faster)"
    )
    parser.add_argument("--skip-ablation", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="ablation set: interleaved runs of each")
    parser.add_argument("--skip-path-patching", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    model = make_model()
    prompts = make_prompts(args.prompts, args.length)
    if args.threads:
        torch.set_num_threads(args.threads)
        print(f"torch threads: {args.threads} (forced)")
    else:
        threads, seconds = pick_threads(model, prompts)
        torch.set_num_threads(threads)
        print(
            f"torch threads: one clean pass {seconds[1]:.2f} s with 1, "
            f"{seconds[2]:.2f} s with 2; using {threads}"
        )
    print(
        f"model: 12L x 12H, d_model 768, d_mlp 3072, vocab 1000; "
        f"{args.prompts} prompts of <= {args.length} tokens"
    )

    if not args.skip_path_patching:
        path_patching(model, prompts, args)
    if not args.skip_ablation:
        ab = bench_ablation(model, prompts, args.repeats)
        print(
            f"ablation set, {ab['ablations']} single-head mean ablations "
            f"(fastest of {ab['repeats']}, interleaved):"
        )
        counted = (
            f"{ab['engine_passes']:.0f} passes counted, {ab['engine_equivalents']:.2f} full-pass "
            "equivalents (each copy from its head's layer)"
        )
        report("engine", ab["engine_s"], ab["engine_cpu"], counted)
        report("naive ", ab["naive_s"], ab["naive_cpu"], f"{ab['naive_passes']} passes")
        speedup(ab)
        print(f"  every run: engine {ab['all_engine_s']} s, naive {ab['all_naive_s']} s")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
