"""A learned intervention's training hyper-parameters (torch-free, so the Pareto tables and plots load
without torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters: the objective's margin ``m`` and weights ``λ_F``, ``λ_M``; Adam's learning rate
    and steps (full-batch epochs); the initial noise's standard deviation and the seed.

    ``lr_end``: when set, the learning rate falls linearly from ``lr`` at the first step to ``lr_end`` at
    the last. Adam on the ℓ1 term moves a scalar the task does not need by about the learning rate every
    step, so at a constant ``lr`` it oscillates around 0 with amplitude ``lr`` and never drops below the
    0.01 that the minimality count uses; a small final rate lets it settle.
    """

    margin: float = 1.0
    lambda_f: float = 1.0
    lambda_m: float = 0.01
    steps: int = 40
    lr: float = 0.05
    init_std: float = 0.00316  # the paper's N(0, 1e-5), read as a variance
    seed: int = 0
    lr_end: float | None = None  # None: a constant learning rate

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)
