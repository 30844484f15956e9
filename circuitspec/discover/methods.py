"""The discovery methods ``circuitspec discover --method`` accepts, by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from circuitspec.errors import CircuitSpecError

from . import eap, eap_ig, eap_ig_act

__all__ = ["METHODS", "method"]

METHODS: dict[str, Callable[..., Any]] = {
    "eap": eap.score,
    "eap-ig": eap_ig.score,
    "eap-ig-act": eap_ig_act.score,
}


def method(name: str) -> Callable[..., Any]:
    """The scoring function called ``name`` (one line naming the valid ones otherwise)."""
    if name not in METHODS:
        raise CircuitSpecError(f"--method {name} is not a discovery method (valid: {', '.join(METHODS)})")
    return METHODS[name]
