"""The discovery methods ``circuitspec discover --method`` accepts, by name, and the default.

The default is ``eap-ig-act`` (integrated gradients over each component's output, MIB's
"EAP-IG-activations"): on the planted zoo it is the one method that recovers every planted edge and
no decoy at the default threshold. ``eap-ig`` (over the input embeddings) scores zoo.suppression's
``L0H0 -> L1H0.q`` at 2e-7 however many steps it takes (5: 2.9e-7, 100: 1.9e-7; path patching the
edge: +1.6), because that edge acts only while the keys stay clean and its line moves both
(docs/discover.md). ``eap-ig-act`` costs ``1 + 2 × layers`` times EAP-IG's passes (one sender
component at a time); on a deep model ``--method eap-ig`` is the cheaper screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from circuitspec.errors import CircuitSpecError

from . import eap, eap_ig, eap_ig_act

__all__ = ["DEFAULT_METHOD", "METHODS", "method"]

METHODS: dict[str, Callable[..., Any]] = {
    "eap": eap.score,
    "eap-ig": eap_ig.score,
    "eap-ig-act": eap_ig_act.score,
}
DEFAULT_METHOD = "eap-ig-act"


def method(name: str) -> Callable[..., Any]:
    """The scoring function called ``name`` (one line naming the valid ones otherwise)."""
    if name not in METHODS:
        raise CircuitSpecError(f"--method {name} is not a discovery method (valid: {', '.join(METHODS)})")
    return METHODS[name]
