"""Where a learned intervention acts: a site (``attn_out``, ``mlp_out``, ``resid_post``), a layer and a
token role (torch-free).

The paper's intervention points are layers × token positions × sites (its Eq. 3: ``attnOut`` s = 1,
``mlpOut`` s = 3, ``residPost`` s = 4). Absolute positions only line up across prompts of one length, so
circuitspec pins a location to a *role* (a template slot or ``end``), which lines up across prompts of any
length; ``role = None`` means every position (DynScalar's probes, shared across positions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from circuitspec.errors import CircuitSpecError

__all__ = ["SITES", "Location", "grid", "parse_layers", "parse_location"]

SITES = {
    "attn_out": "blocks.{layer}.hook_attn_out",
    "mlp_out": "blocks.{layer}.hook_mlp_out",
    "resid_post": "blocks.{layer}.hook_resid_post",
}
_LABEL = re.compile(r"^(attn_out|mlp_out|resid_post)(\d+)(?:@([A-Za-z_][A-Za-z0-9_]*))?$")


@dataclass(frozen=True, order=True)
class Location:
    """One intervention point: ``site`` at ``layer``, at ``role``'s token (None: every position)."""

    site: str
    layer: int
    role: str | None = None

    @property
    def hook(self) -> str:
        """The TransformerLens hook whose activation is edited."""
        return SITES[self.site].format(layer=self.layer)

    @property
    def label(self) -> str:
        """``mlp_out3@end``: how reports, files and the CLI name it."""
        return f"{self.site}{self.layer}" + (f"@{self.role}" if self.role else "")


def parse_location(text: str, where: str = "") -> Location:
    """``mlp_out3@end`` → :class:`Location` (one-line error naming the grammar otherwise)."""
    match = _LABEL.match(text.strip())
    if match is None:
        raise CircuitSpecError(
            f"'{text}' is not a location (valid: attn_out<l>, mlp_out<l>, resid_post<l>, optionally @role)",
            file=where or None,
        )
    return Location(match[1], int(match[2]), match[3])


def parse_layers(text: str, n_layers: int) -> list[int]:
    """``all``, ``3``, ``0-11`` or ``0,4,8-9`` → sorted layers, each checked against ``n_layers``."""
    if text.strip() == "all":
        return list(range(n_layers))
    layers: set[int] = set()
    for part in text.split(","):
        bounds = part.strip().split("-")
        if not all(b.strip().isdigit() and b.strip().isascii() for b in bounds) or len(bounds) > 2:
            raise CircuitSpecError(f"--layers '{text}': use all, 3, 0-11 or 0,4,8-9")
        lo, hi = int(bounds[0]), int(bounds[-1])
        if lo > hi or hi >= n_layers:
            raise CircuitSpecError(f"--layers '{text}': layers run from 0 to {n_layers - 1}")
        layers.update(range(lo, hi + 1))
    return sorted(layers)


def grid(sites: Iterable[str], layers: Sequence[int], roles: Sequence[str | None]) -> list[Location]:
    """Every site × layer × role (sites checked), in layer order then site then role."""
    sites = list(sites)
    unknown = [s for s in sites if s not in SITES]
    if unknown or not sites:
        raise CircuitSpecError(f"--sites '{','.join(sites)}' (valid: {', '.join(SITES)})")
    return [Location(s, layer, role) for layer in layers for s in sites for role in roles]
