"""Edges scored per second on SmolLM2-135M: EAP and EAP-IG against a naive patching sweep, one run.

Prompts: ``hypotheses/smollm2_sentiment.yaml`` (``--prompts`` of them, its first template unless
``--template``), the corruption it declares (the second label set to the first). Every edge of the
model is scored: 301 senders (embedding, 270 heads, 30 MLPs) × 841 receivers (each head's q / k / v
input, each MLP, the logits) where the sender comes first.

- EAP: one forward + backward pass per batch (``engine.attribution_patching``).
- EAP-IG: ``--steps`` of them per batch.
- EAP-IG over activations (``eap-ig-act``, what ``discover --method auto`` runs on a model with more
  than 2,000 edges): ``--steps`` per sender component and batch, so about ``1 + 2 × layers`` times EAP-IG.
- Naive sweep: what EAP estimates, measured edge by edge with plain TransformerLens hooks: one
  forward pass over the prompts per edge, adding the sender's corrupted − clean write to the
  receiver's input only (``hook_{q,k,v}_input`` / ``hook_mlp_in`` / the final stream) and recomputing
  everything after it. Timed on ``--naive-edges`` edges (the strongest half by EAP-IG, the rest
  drawn with a seed) and extrapolated to every edge: the script says so. The same subset gives the
  correlation of each estimate with the patched effect.

Run with one thread (``OMP_NUM_THREADS=1``, also set here); the machine is shared, so the load
average is printed with the numbers. ``python benchmarks/bench_discover.py [--prompts 16]``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from circuitspec.discover.session import open_session
from circuitspec.engine.attribution_patching import attribution_patching


class PassCounter:
    """Counts model passes through a forward hook on the unembedding (every pass that reaches the
    logits, partial ones included): with gradients on (each is followed by one backward pass in the
    code timed here) and without, and the prompt rows they carry. Shared with bench_autocircuit.py."""

    def __init__(self, model: Any) -> None:
        self.grad = self.plain = self.rows = 0
        self.handle = model.unembed.register_forward_hook(self._seen)

    def _seen(self, module: Any, args: Any, output: Any) -> None:
        if torch.is_grad_enabled():
            self.grad += 1
        else:
            self.plain += 1
        self.rows += int(args[0].shape[0])

    def reset(self) -> None:
        self.grad = self.plain = self.rows = 0

    def __str__(self) -> str:
        return f"{self.grad} fwd+bwd, {self.plain} fwd-only passes, {self.rows} prompt rows"


def _naive_edge(model, prompts, clean, corrupt, sender: str, receiver: str) -> float:
    """Mean metric change with ``sender``'s corrupted write added to ``receiver``'s input only."""
    if sender == "embed":
        delta = corrupt["hook_embed"] - clean["hook_embed"]
    elif sender.startswith("MLP"):
        name = f"blocks.{sender[3:]}.hook_mlp_out"
        delta = corrupt[name] - clean[name]
    else:
        layer, head = (int(x) for x in sender[1:].split("H"))
        dz = (
            corrupt[f"blocks.{layer}.attn.hook_z"][:, :, head]
            - clean[f"blocks.{layer}.attn.hook_z"][:, :, head]
        )
        delta = dz @ model.blocks[layer].attn.W_O[head]
    if receiver == "logits":
        hook, index = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post", None
    elif receiver.startswith("MLP"):
        hook, index = f"blocks.{receiver[3:]}.hook_mlp_in", None
    else:
        node, channel = receiver.split(".")
        layer, head = (int(x) for x in node[1:].split("H"))
        hook, index = f"blocks.{layer}.hook_{channel}_input", head

    def add(act, hook):
        if index is None:
            return act + delta
        act = act.clone()
        act[:, :, index] = act[:, :, index] + delta
        return act

    rows, ends = torch.arange(len(prompts)), prompts.lengths - 1
    with torch.no_grad():
        logits = model.run_with_hooks(prompts.tokens, fwd_hooks=[(hook, add)])
        last = logits[rows, ends]
        base = clean["_logits"][rows, ends]
        diff = (last[rows, prompts.desired] - last[rows, prompts.undesired]) - (
            base[rows, prompts.desired] - base[rows, prompts.undesired]
        )
    return float(diff.mean())


def _caches(model, prompts):
    model.set_use_split_qkv_input(True)
    if not model.cfg.attn_only:
        model.set_use_hook_mlp_in(True)
    keep = lambda n: n == "hook_embed" or n.endswith(("hook_z", "hook_mlp_out"))  # noqa: E731
    with torch.no_grad():
        clean_logits, clean = model.run_with_cache(prompts.tokens, names_filter=keep)
        _, corrupt = model.run_with_cache(prompts.corrupt_tokens, names_filter=keep)
    clean = dict(clean.items())
    clean["_logits"] = clean_logits
    return clean, dict(corrupt.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--template", default="sub_contextual")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--naive-edges", type=int, default=40)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument(
        "--methods",
        default="eap,eap-ig,eap-ig-act",
        help="comma-separated; eap-ig-act is what `discover`'s default `auto` runs on a model this size",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    session = open_session("hypotheses/smollm2_sentiment.yaml", "all", [args.template])
    ctx = session.ctx
    ctx.prompts = ctx.prompts.take(slice(0, args.prompts))
    print(
        f"loaded in {time.perf_counter() - started:.1f} s; {len(ctx.prompts)} prompts, load {os.getloadavg()}"
    )
    results, counter, passes = {}, PassCounter(session.loaded.model), {}
    for method in args.methods.split(","):
        steps = 1 if method == "eap" else args.steps
        counter.reset()
        t = time.perf_counter()
        results[method] = attribution_patching(ctx, method=method, steps=steps, batch_size=args.batch)
        seconds = time.perf_counter() - t
        n_edges = int(results[method].graph.valid.sum())
        print(
            f"{method:7s} {n_edges} edges in {seconds:.1f} s = {n_edges / seconds:,.0f} edges/s "
            f"({results[method].backward_passes} forward+backward passes of <= {args.batch} prompts)"
        )
        passes[method] = (
            f"{counter.grad} forward+backward + {counter.plain} forward ({counter.rows} prompt rows)"
        )
    model = session.loaded.model
    counter.reset()
    clean, corrupt = _caches(model, ctx.prompts)
    ranked = results.get("eap-ig", next(iter(results.values()))).ranked()  # the naive sweep's edge picks
    rng = np.random.default_rng(0)
    half = args.naive_edges // 2
    picks = ranked[:half] + [ranked[i] for i in rng.choice(np.arange(half, len(ranked)), half, replace=False)]
    t = time.perf_counter()
    naive = [_naive_edge(model, ctx.prompts, clean, corrupt, s, r) for s, r, _, _ in picks]
    seconds = time.perf_counter() - t
    measured = f"{counter.plain} forward: 2 caches + {len(picks)} edges ({counter.rows} prompt rows)"
    per_edge = seconds / len(picks)
    print(
        f"naive   {len(picks)} edges in {seconds:.1f} s = {1 / per_edge:.2f} edges/s; extrapolated to all "
        f"{n_edges} edges: {per_edge * n_edges / 3600:.1f} h ({n_edges} passes of {len(ctx.prompts)} prompts)"
    )
    for method, result in results.items():
        totals, graph = result.totals, result.graph
        est = [float(totals[graph.senders.index(s), graph.receivers.index(r)]) for s, r, _, _ in picks]
        print(
            f"{method:7s} vs naive on the {len(picks)} edges: Pearson r = {np.corrcoef(est, naive)[0, 1]:.3f}"
        )
    _print_passes(passes, measured, n_edges, len(ctx.prompts))
    counter.handle.remove()
    print(f"load average at the end {os.getloadavg()}")


def _print_passes(passes: dict[str, str], measured: str, n_edges: int, n_prompts: int) -> None:
    """The passes each method needs for every edge: counted for EAP / EAP-IG, by formula for the sweep."""
    print(
        f"passes to score all {n_edges} edges of {n_prompts} prompts (counted on the unembedding; "
        "the clean and corrupted runs are cached once, by the first method):"
    )
    for method, text in passes.items():
        print(f"  {method:7s} {text}")
    print(
        f"  naive   2 + {n_edges} = {2 + n_edges} forward ({n_prompts * (2 + n_edges)} prompt rows; "
        f"measured: {measured})"
    )


if __name__ == "__main__":
    main()
