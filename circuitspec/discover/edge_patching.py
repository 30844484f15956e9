"""Exact edge patching: each edge's score is the metric change when that edge alone carries the
corrupted run (path patching, noising, MLPs frozen): what the emitted ``path_patching`` claims
measure on the held-out rows, not an estimate of it.

For an edge ``sender -> receiver`` the sender's corrupted − clean write is added into that one
receiver input (a head's q / k / v input, an MLP's input, the final stream), everything else stays
clean, and the model runs on from the receiver's block (:func:`engine.paths.path_patch_jobs`: the
receiver deltas in closed form where the stream is a sum, jobs batched into passes of
``MAX_ROWS_PER_PASS`` rows, one pass per start block and chunk). Then each edge that moves the
metric by at least :data:`PIN_FLOOR` of ``|clean − corrupted|`` is patched again at each named role
and ``end`` alone (``sender@role -> receiver@role``: the claim a pinned edge becomes); ``other`` is
what those leave of the all-positions effect, and a weaker edge keeps its whole effect there (it is
emitted unpinned if kept, and its claim then measures exactly its score). An edge into the logits
is read per prompt at the end position's bucket, no extra job.

Cost: one job per edge, plus ``roles + 1`` per edge above the floor; no backward pass. Gradient
methods estimate the same number and miss edges whose effect needs the receiver's other inputs to
stay clean: zoo.suppression's ``embed@name -> L1H0.k@name`` is +1.6 patched alone and exactly 0
under EAP, EAP-IG and EAP-IG on activations (:mod:`.methods`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from circuitspec.engine.attribution_patching import (
    Attribution,
    EdgeGraph,
    model_edge_graph,
    position_buckets,
)
from circuitspec.spec.nodes import parse_node

__all__ = ["LOGITS", "PIN_FLOOR", "edge_patch_graph", "score"]

LOGITS = "logits"
PIN_FLOOR = 0.01  # share of |clean - corrupted| above which an edge is patched per role (pinned)
Job = tuple[int, int, int | None]  # sender index, receiver index, bucket (None: every position)


def edge_patch_graph(ctx: Any) -> EdgeGraph:
    """The edges discovery scores on ``ctx``'s model (the graph attribution patching uses)."""
    return model_edge_graph(ctx.adapter.arch)


def _pair(graph: EdgeGraph, buckets: list[str], job: Job) -> Any:
    """The job as a path-patching pair of nodes (``embed@name``, ``L1H0.k@name``)."""
    from circuitspec.engine.paths.jobs import PathJob

    s, r, k = job
    at = "" if k is None else f"@{buckets[k]}"
    receiver = graph.receivers[r]
    return PathJob.joint([(parse_node(graph.senders[s] + at), parse_node(receiver + at))])


def _start(graph: EdgeGraph, job: Job) -> int:
    """The block a job's pass starts at (its receiver's), to batch jobs that share one."""
    receiver = graph.receivers[job[1]]
    if receiver == LOGITS:
        return 1 << 30
    layer = parse_node(receiver.split(".")[0]).layer
    assert layer is not None  # every receiver but the logits is a head's input or an MLP
    return layer


def _owners(prompts: Any, buckets: list[str], bucket_of: torch.Tensor) -> torch.Tensor:
    """``[bucket, n]``: whether the position a named bucket patches in each prompt counts for it in
    attribution patching's bucketing (``bucket_of``: a position two roles share, or a role and the
    end, counts once); the ``other`` row is unused."""
    rows = torch.arange(len(prompts))
    owns = torch.zeros(len(buckets), len(prompts), dtype=torch.bool)
    for k, name in enumerate(buckets[:-1]):
        owns[k] = bucket_of[rows, prompts.positions(name)] == k
    return owns


def _run(
    ctx: Any, graph: EdgeGraph, buckets: list[str], jobs: list[Job], report: Callable[[int], None]
) -> torch.Tensor:
    """``[jobs, n]`` patched − clean metric of each job, in passes of jobs that start at one block."""
    from circuitspec.engine.paths import path_patch_jobs
    from circuitspec.engine.paths.runs import MAX_ROWS_PER_PASS

    order = sorted(range(len(jobs)), key=lambda i: _start(graph, jobs[i]))
    chunk = max(1, MAX_ROWS_PER_PASS // len(ctx.prompts))
    out = torch.zeros(len(jobs), len(ctx.prompts))
    for lo in range(0, len(order), chunk):
        part = order[lo : lo + chunk]
        patched, base, _ = path_patch_jobs(ctx, [_pair(graph, buckets, jobs[i]) for i in part])
        out[part] = (patched - base[None]).float().cpu()
        report(len(part))
    return out


def score(ctx: Any, steps: int = 1, progress: Callable[[int, int], None] | None = None) -> Attribution:
    """Exact edge scores ``[bucket, sender, receiver]`` on ``ctx``'s prompts (``steps`` is ignored)."""
    graph, n = edge_patch_graph(ctx), len(ctx.prompts)
    buckets, bucket_of = position_buckets(ctx.prompts)
    edges: list[Job] = [(s, r, None) for s, r in graph.valid.nonzero().tolist()]
    done, total = [0], [len(edges)]

    def report(count: int) -> None:
        done[0] += count
        if progress is not None:
            progress(done[0], total[0])

    whole = _run(ctx, graph, buckets, edges, report)  # [edges, n]
    totals = torch.zeros(len(graph.senders), len(graph.receivers))
    scores = torch.zeros(len(buckets), len(graph.senders), len(graph.receivers))
    end_bucket = bucket_of[torch.arange(n), ctx.prompts.lengths - 1]  # the bucket each end counts for
    for (s, r, _), effect in zip(edges, whole, strict=True):
        totals[s, r] = effect.mean()
        if graph.receivers[r] == LOGITS:  # the logits read the end position only: its bucket per prompt
            scores[:, s, r] = torch.zeros(len(buckets)).index_add_(0, end_bucket, effect) / n
    clean = float(ctx.metric(ctx.clean()[0], ctx.prompts).float().mean())
    corrupt = float(ctx.metric(ctx.corrupted()[0], ctx.prompts).float().mean())
    floor = PIN_FLOOR * abs(clean - corrupt)
    pinned: list[Job] = [
        (s, r, k)
        for s, r, _ in edges
        if graph.receivers[r] != LOGITS and abs(float(totals[s, r])) >= floor
        for k in range(len(buckets) - 1)
    ]
    total[0] += len(pinned)
    owns = _owners(ctx.prompts, buckets, bucket_of).float()
    for (s, r, k), effect in zip(pinned, _run(ctx, graph, buckets, pinned, report), strict=True):
        scores[k, s, r] = (effect * owns[k]).sum() / n
    scores[-1] = totals - scores[:-1].sum(0)  # ``other``: what the named positions leave
    return Attribution(
        graph, buckets, scores * graph.valid, {}, clean=clean, corrupt=corrupt,
        method="edge-patching", steps=1, n_prompts=n, backward_passes=0,
    )  # fmt: skip
