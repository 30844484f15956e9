"""The paper's three learned interventions as torch modules with one signature (after pyvene's trainable
interventions: a small module that edits one activation and owns its parameters).

Each holds one parameter row per :class:`~circuitspec.learned.locations.Location` and edits the
activation ``h`` there for a per-row strength ``β`` (``β = 0`` is the clean model, ``−β`` reverses it):

- :class:`ActivScalar` (Eq. 5): ``h · (1 + β·α_k)``, one scalar per location;
- :class:`SteerVec` (Eq. 4): ``h + β·v_k``, one vector per location;
- :class:`DynScalar` (Eq. 10 with Eq. 5): ``h · (1 + β·g_kᵀ h/‖h‖)``, one probe ``g_k`` per site and layer,
  applied at every position (its locations have ``role = None``).

:meth:`LearnedIntervention.hooks` turns the module into TransformerLens forward hooks for a batch whose
role positions are given, so the same module is trained (gradients flow into its parameters) and later
applied by the claim (under ``torch.inference_mode``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from .locations import Location

__all__ = [
    "METHODS",
    "ActivScalar",
    "DynScalar",
    "LearnedIntervention",
    "SteerVec",
    "build",
    "from_parameters",
]

Hook = tuple[str, Callable[..., Any]]


class LearnedIntervention(torch.nn.Module):
    """Base class: ``locations`` and a parameter tensor ``theta`` (one row per location)."""

    method: ClassVar[str] = ""
    per_position: ClassVar[bool] = False  # True: meant for every position (locations without a role)

    def __init__(self, locations: Sequence[Location], theta: torch.Tensor) -> None:
        super().__init__()
        self.locations = list(locations)
        self.theta = torch.nn.Parameter(theta)

    def edit(self, k: int, h: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """The edited activation at location ``k``: ``h`` ``[rows, d]`` or ``[rows, pos, d]``, ``beta``
        broadcastable to ``h`` without its last axis."""
        raise NotImplementedError

    def vector(self) -> torch.Tensor:
        """``vec(θ)``: every parameter as one flat vector (minimality and the |θ| > 0.01 count read it)."""
        return self.theta.reshape(-1)

    def hooks(self, positions: Mapping[str, torch.Tensor], beta: torch.Tensor) -> list[Hook]:
        """Forward hooks editing every location for a batch: ``positions`` maps each role to its token
        position per row ``[rows]``, ``beta`` is the strength per row ``[rows]``."""
        by_hook: dict[str, list[int]] = {}
        for k, loc in enumerate(self.locations):
            by_hook.setdefault(loc.hook, []).append(k)
        return [(name, self._hook(ks, positions, beta)) for name, ks in by_hook.items()]

    def _hook(
        self, ks: list[int], positions: Mapping[str, torch.Tensor], beta: torch.Tensor
    ) -> Callable[..., torch.Tensor]:
        def apply(act: torch.Tensor, hook: Any) -> torch.Tensor:
            b = beta.to(act.device, act.dtype)
            rows = torch.arange(act.shape[0], device=act.device)
            out = act
            for k in ks:
                role = self.locations[k].role
                if role is None:
                    out = self.edit(k, out, b[:, None])
                    continue
                pos = positions[role].to(act.device)
                out = out.index_put((rows, pos), self.edit(k, out[rows, pos], b))
            return out

        return apply


class ActivScalar(LearnedIntervention):
    """``h · (1 + β·α_k)``: the paper's activation scalars (ACTIVSCALAR, Eq. 5)."""

    method = "activ_scalar"

    def edit(self, k: int, h: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return h * (1 + beta * self.theta[k].to(h.dtype))[..., None]

    def alphas(self) -> torch.Tensor:
        return self.theta


class SteerVec(LearnedIntervention):
    """``h + β·v_k``: additive steering vectors (STEERVEC, Eq. 4), the paper's baseline."""

    method = "steer_vec"

    def edit(self, k: int, h: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return h + beta[..., None] * self.theta[k].to(h.dtype)

    def alphas(self) -> torch.Tensor:
        """Each vector's norm (how strongly a location is steered; a vector has no sign)."""
        return self.theta.norm(dim=-1)


class DynScalar(LearnedIntervention):
    """``h · (1 + β·α)`` with ``α = g_kᵀ h / ‖h‖``: dynamic scalars (DYNSCALAR, Eq. 10), one probe per
    site and layer shared across positions, so it transfers to prompts of other lengths."""

    method = "dyn_scalar"
    per_position = True

    def scalar(self, k: int, h: torch.Tensor) -> torch.Tensor:
        """α at every row (and position) of ``h``: ``gᵀh/‖h‖`` (0 where ``h`` is all zero)."""
        norm = h.norm(dim=-1).clamp_min(torch.finfo(h.dtype).tiny)
        return (h @ self.theta[k].to(h.dtype)) / norm

    def edit(self, k: int, h: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return h * (1 + beta * self.scalar(k, h))[..., None]

    def alphas(self) -> torch.Tensor:
        """Each probe's norm (the largest |α| it can produce)."""
        return self.theta.norm(dim=-1)


METHODS: dict[str, type[LearnedIntervention]] = {
    cls.method: cls for cls in (ActivScalar, SteerVec, DynScalar)
}


def build(
    method: str, locations: Sequence[Location], width: int, *, init_std: float, seed: int
) -> LearnedIntervention:
    """A fresh intervention, parameters drawn from ``N(0, init_std²)`` with its own seeded generator
    (the paper initialises with Gaussian noise ``N(0, 1e-5)``)."""
    cls = METHODS[method]
    shape = (len(locations),) if cls is ActivScalar else (len(locations), width)
    generator = torch.Generator().manual_seed(int(seed))
    theta = torch.randn(shape, generator=generator, dtype=torch.float32) * float(init_std)
    return cls(locations, theta)


def from_parameters(method: str, locations: Sequence[Location], theta: torch.Tensor) -> LearnedIntervention:
    """An intervention with given parameters (a loaded file)."""
    return METHODS[method](locations, theta.to(torch.float32))
