"""Learned interventions on a model: gradient passes for training, counted passes for evaluation.

Training needs gradients through the model into the intervention's parameters, and
:meth:`ModelAdapter.forward` runs under ``torch.inference_mode``; so :func:`runner` calls the
TransformerLens model itself (this module is one of those allowed to, ``tests/test_adapter.py``), with the
model's own weights frozen for the duration. Evaluation needs no gradient and goes through
:meth:`RunContext.forward` like every other intervention (counted, read out at each prompt's last token).

The correct answer ``c`` is each prompt's ``desired`` token and the wrong one ``w`` its ``undesired``
token; ``β = +1`` must favour ``c`` and ``β = −1`` favour ``w`` (the paper's Eq. 6).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from circuitspec.errors import CircuitSpecError
from circuitspec.learned.interventions import LearnedIntervention, build
from circuitspec.learned.locations import Location
from circuitspec.learned.objective import hinge_terms, kl_from_clean
from circuitspec.learned.pareto import Scores
from circuitspec.learned.train import Task, TrainConfig, TrainResult, train

from .context import RunContext

__all__ = ["check_locations", "clean_task", "evaluate", "learn", "per_prompt", "role_positions", "runner"]


def role_positions(ctx: RunContext, copies: int) -> dict[str, torch.Tensor]:
    """Every role's position per row (``end`` included) for ``copies`` stacked copies of the prompts."""
    prompts = ctx.prompts
    roles = {**prompts.role_positions, "end": prompts.lengths - 1}
    return {role: pos.repeat(copies) for role, pos in roles.items()}


def check_locations(ctx: RunContext, locations: Sequence[Location], where: str = "") -> None:
    """Every location's layer exists and its role is defined by these prompts (one-line error)."""
    roles = set(ctx.prompts.role_positions) | {"end"}
    n_layers = ctx.adapter.arch.n_layers
    for loc in locations:
        if loc.layer >= n_layers:
            raise CircuitSpecError(
                f"location {loc.label}: the model has layers 0-{n_layers - 1}", file=where or None
            )
        if loc.role is not None and loc.role not in roles:
            raise CircuitSpecError(
                f"location {loc.label}: role '{loc.role}' is not defined by these prompts "
                f"(valid: {', '.join(sorted(roles))})",
                file=where or None,
            )


def clean_task(ctx: RunContext) -> Task:
    """The clean run's log-probabilities at the last token and the answer ids, for the objective."""
    logits, _ = ctx.clean()
    logprobs = torch.log_softmax(logits.detach().float(), dim=-1)
    return Task(logprobs, ctx.prompts.desired.to(logits.device), ctx.prompts.undesired.to(logits.device))


@contextlib.contextmanager
def _frozen(model: Any) -> Iterator[None]:
    """The model's own weights take no gradient while an intervention trains (restored after)."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def runner(
    ctx: RunContext, first_layer: int = 0
) -> Callable[[LearnedIntervention, torch.Tensor], torch.Tensor]:
    """``run(intervention, beta)``: logits ``[2N, vocab]`` at each prompt's last token for the prompts
    stacked twice (``beta`` ``[2N]``), with gradients into the intervention's parameters. Every pass
    starts at block ``first_layer`` (no location below it) from the residual stream entering it, which is
    computed once: blocks below an intervention never change while it trains."""
    model = ctx.adapter.model
    prompts = ctx.prompts
    tokens = prompts.tokens.repeat(2, 1).to(ctx.device)
    ends = (prompts.lengths - 1).repeat(2).to(ctx.device)
    rows = torch.arange(tokens.shape[0], device=ctx.device)
    positions = role_positions(ctx, 2)
    n_tokens = int(prompts.lengths.sum()) * 2
    n_layers = ctx.adapter.arch.n_layers
    start: dict[str, Any] = {}
    inputs = tokens
    if first_layer > 0:
        with torch.no_grad():
            inputs = model(tokens, stop_at_layer=first_layer)
        ctx.counter.add(tokens.shape[0], n_tokens, first_layer / n_layers)
        start = {"start_at_layer": first_layer}

    def run(intervention: LearnedIntervention, beta: torch.Tensor) -> torch.Tensor:
        ctx.counter.add(tokens.shape[0], n_tokens, (n_layers - first_layer) / n_layers)
        hooks = intervention.hooks(positions, beta)
        with torch.enable_grad(), model.hooks(fwd_hooks=hooks):
            logits = model(inputs, **start)
        return logits[rows, ends]

    return run


def learn(
    ctx: RunContext,
    locations: Sequence[Location],
    method: str,
    config: TrainConfig,
    say: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a fresh ``method`` intervention at ``locations`` on the context's prompts."""
    check_locations(ctx, locations)
    intervention = build(
        method, locations, ctx.adapter.arch.d_model, init_std=config.init_std, seed=config.seed
    )
    intervention.to(ctx.device)
    task = clean_task(ctx)
    with _frozen(ctx.adapter.model):
        first = min(loc.layer for loc in locations)
        result = train(intervention, runner(ctx, first), task, config, say)
    intervention.requires_grad_(False)
    return result


def per_prompt(
    ctx: RunContext, intervention: LearnedIntervention, scale: float = 1.0
) -> dict[str, np.ndarray]:
    """Per prompt, at ``β = ±scale``: the logit differences ``Δ = f_c − f_w`` (``delta_plus``,
    ``delta_minus``), ``KL(run ‖ clean)`` (``kl_plus``, ``kl_minus``) and the clean ``Δ`` (``clean``)."""
    n = len(ctx.prompts)
    beta = torch.cat([torch.full((n,), scale), torch.full((n,), -scale)]).to(ctx.device)
    tokens = ctx.prompts.tokens.repeat(2, 1)
    with torch.inference_mode():
        logits = ctx.forward(tokens, intervention.hooks(role_positions(ctx, 2), beta)).float()
        clean = clean_task(ctx)
        rows = torch.arange(n, device=logits.device)
        c, w = clean.correct.to(logits.device), clean.wrong.to(logits.device)
        clean_logits, _ = ctx.clean()
        out = {
            "delta_plus": logits[:n][rows, c] - logits[:n][rows, w],
            "delta_minus": logits[n:][rows, c] - logits[n:][rows, w],
            "kl_plus": kl_from_clean(logits[:n], clean.clean_logprobs.to(logits.device)),
            "kl_minus": kl_from_clean(logits[n:], clean.clean_logprobs.to(logits.device)),
            "clean": clean_logits.float()[rows, c] - clean_logits.float()[rows, w],
        }
    return {k: v.detach().cpu().double().numpy() for k, v in out.items()}


def scores(arrays: dict[str, np.ndarray]) -> Scores:
    """``E_0``, ``F``, the share flipped both ways and the mean KL from :func:`per_prompt`'s arrays."""
    plus, minus = torch.as_tensor(arrays["delta_plus"]), torch.as_tensor(arrays["delta_minus"])
    kl = arrays["kl_plus"] + arrays["kl_minus"]
    return Scores(
        effectiveness=float(-hinge_terms(plus, minus, 0.0).mean()),
        faithfulness=float(-kl.mean()),
        flipped=float(((arrays["delta_plus"] > 0) & (arrays["delta_minus"] < 0)).mean()),
        kl=float(kl.mean() / 2),
        n=int(plus.shape[0]),
    )


def evaluate(ctx: RunContext, intervention: LearnedIntervention) -> Scores:
    """The intervention's scores on the context's prompts (one counted pass of 2N rows)."""
    check_locations(ctx, intervention.locations)
    return scores(per_prompt(ctx, intervention))
