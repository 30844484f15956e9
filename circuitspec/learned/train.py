"""Learning an intervention by gradient descent on −Ψ (the paper's Eq. 9), independent of the model.

The model enters as ``run(intervention, beta) -> logits``: the logits at each prompt's last token for the
prompts stacked twice (rows ``0..N−1`` at ``β = +1``, ``N..2N−1`` at ``β = −1``), with gradients flowing
into the intervention's parameters (``circuitspec.engine.learning`` builds it for a TransformerLens model;
the tests pass a plain function). Full-batch Adam (the paper's optimiser), seeded: on CPU the same seed
gives the same parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .config import TrainConfig
from .interventions import LearnedIntervention
from .objective import objective

__all__ = ["Task", "TrainConfig", "TrainResult", "Trained", "lr_factor", "train"]

Runner = Callable[[LearnedIntervention, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Task:
    """The training prompts as the objective sees them: clean log-probabilities at the last token
    ``[N, vocab]`` and the correct / wrong answer ids ``[N]``."""

    clean_logprobs: torch.Tensor
    correct: torch.Tensor
    wrong: torch.Tensor

    def __len__(self) -> int:
        return int(self.correct.shape[0])


@dataclass
class Trained:
    """One step's objective terms (floats), for the progress lines and the history."""

    step: int
    psi: float
    effectiveness: float
    faithfulness: float
    minimality: float


@dataclass
class TrainResult:
    intervention: LearnedIntervention
    config: TrainConfig
    history: list[Trained] = field(default_factory=list)


def betas(n: int) -> torch.Tensor:
    """``[2n]``: +1 for the first copy of the prompts, −1 for the second."""
    return torch.cat([torch.ones(n), -torch.ones(n)])


def lr_factor(config: TrainConfig, k: int) -> float:
    """The learning rate at step ``k + 1`` as a multiple of ``config.lr``: 1 without ``lr_end``, else
    linear from 1 at the first step to ``lr_end / lr`` at the last."""
    if config.lr_end is None or config.steps < 2:
        return 1.0
    end = config.lr_end / config.lr
    return 1.0 + (end - 1.0) * min(k, config.steps - 1) / (config.steps - 1)


def train(
    intervention: LearnedIntervention,
    run: Runner,
    task: Task,
    config: TrainConfig,
    say: Callable[[str], None] | None = None,
) -> TrainResult:
    """Maximise Ψ over the intervention's parameters with Adam for ``config.steps`` full-batch steps;
    ``say`` gets a progress line about every tenth step."""
    torch.manual_seed(config.seed)
    optimiser = torch.optim.Adam(intervention.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: lr_factor(config, k))
    n = len(task)
    beta = betas(n)
    result = TrainResult(intervention, config)
    every = max(1, config.steps // 10)
    for step in range(1, config.steps + 1):
        optimiser.zero_grad()
        logits = run(intervention, beta)
        terms = objective(
            logits[:n],
            logits[n:],
            task.clean_logprobs,
            (task.correct, task.wrong),
            intervention.vector(),
            margin=config.margin,
            lambda_f=config.lambda_f,
            lambda_m=config.lambda_m,
        )
        (-terms.psi).backward()
        optimiser.step()
        schedule.step()
        values = (terms.psi, terms.effectiveness, terms.faithfulness, terms.minimality)
        record = Trained(step, *(float(v.detach()) for v in values))
        result.history.append(record)
        if say is not None and (step % every == 0 or step == config.steps):
            say(
                f"step {step}/{config.steps}: Ψ {record.psi:.3f} (E {record.effectiveness:.3f}, "
                f"F {record.faithfulness:.3f}, M {record.minimality:.3f})"
            )
    return result
