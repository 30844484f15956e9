"""The ``causal_scrubbing`` claim kind: a claim's paths as a hypothesis, scrubbed with
:mod:`circuitspec.engine.scrubbing`.

Each hypothesis node has an *equivalence*: the data-row fields it computes (``equivalence`` in the
claim; ``default`` for unlisted nodes; without ``default`` an unlisted node keeps its prompt's exact
row). Resampling is seeded by the seed ``measure`` is given (the run's), so ``verify --seed`` changes the
resampled inputs. Reported per prompt (means over samples): ``intervened`` the scrubbed metric,
``clean`` the model's metric, ``corrupt`` the random-scrub metric (the empty hypothesis: the whole
run on a random prompt), so ``recovered = (L_scrubbed − L_random) / (L_model − L_random)``. The
slow explicit reference the tests compare against lives in ``tests/references/scrubbing.py``.
"""

from __future__ import annotations

from typing import Any

import torch

from circuitspec.measurement import Measurement

from ..context import RunContext
from ..scrubbing import ScrubPlan, build_plan, clean_run, hypothesis_edges, scrub
from .measuring import MeasurementBuilder

__all__ = ["ScrubPlan", "build_plan", "hypothesis_edges", "measure", "scrub"]


def _end_logits(ctx: RunContext, logits: torch.Tensor) -> torch.Tensor:
    """``[n, vocab]`` logits at each prompt's last real token (2-D logits already are)."""
    if logits.dim() == 2:
        return logits
    return logits[torch.arange(logits.shape[0]), ctx.prompts.lengths - 1]


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """A ``causal_scrubbing`` claim (see the module docstring); ``seed`` draws every resampled input."""
    b = MeasurementBuilder(ctx, claim, seed)
    edges = hypothesis_edges(graph.chains(claim.id), graph.targets(claim.id))
    plan = build_plan(ctx.prompts, edges, claim.equivalence, claim.samples, seed)
    scrubbed_logits, counts = scrub(ctx, plan)
    clean_logits, _ = clean_run(ctx)
    n = len(ctx.prompts)
    row_prompts = ctx.prompts.take(plan.originals)
    scrubbed = ctx.metric(scrubbed_logits, row_prompts).reshape(plan.samples, n).mean(0)
    # a random prompt has its original's length, so its end-token logits are read at the same place
    random_last = _end_logits(ctx, clean_logits)[torch.as_tensor(plan.randoms)]
    random = ctx.metric(random_last, row_prompts).reshape(plan.samples, n).mean(0)
    model_metric = ctx.metric(clean_logits, ctx.prompts)
    b.arrays(value=scrubbed - model_metric, clean=model_metric, corrupt=random, intervened=scrubbed)
    return b.note(
        **counts,
        samples=plan.samples,
        # prompts with no other prompt of their shape keep themselves as the "random" input
        prompts_without_partner=int((plan.randoms == plan.originals).sum() // plan.samples),
        edges=[f"{e.sender.name}->{e.receiver.name}.{e.channel}" for e in edges],
    ).build()
