"""The discovery methods ``circuitspec discover --method`` accepts, by name, and the default.

The default, ``auto``, runs ``edge-patching`` (:mod:`.edge_patching`: each edge path-patched alone,
exactly what the emitted ``path_patching`` claims measure) when the model has at most
:data:`EXACT_EDGE_BUDGET` edges, and ``eap-ig-act`` (integrated gradients over each component's
output) above it; the result records the method that ran. Gradient methods estimate the patched
effect and share a blind spot: an edge whose effect needs the receiver's other inputs to stay clean.
zoo.suppression's suppressor L1H0 reads the name through its key; ``embed@name -> L1H0.k@name``
path-patched alone moves the logit difference by +1.6, and EAP, EAP-IG and EAP-IG on activations
all score it exactly 0 (query and key move together along any interpolation, L1H0's attention stays
saturated). ``eap-ig`` (over the input embeddings) also misses ``L0H0 -> L1H0.q`` (2.9e-7 at 5 steps,
1.9e-7 at 100; patched: +1.6), which ``eap-ig-act`` sees (+1.74).

The budget: edge patching runs one path-patching job per edge (plus ``roles + 1`` for each edge above
its pinning floor), batched ``512 / prompts`` jobs to a forward pass from the receiver's block;
``eap-ig-act`` runs ``steps × (1 + 2 × layers)`` forward and backward passes per batch. Measured on
one CPU thread (load ~4 on 2 shared cores; docs/discover.md): the toy model's 110 edges on 384
prompts score in 12-33 s exactly against 12-15 s for ``eap-ig-act``, the zoo's 29-257 edges in
0.05-0.25 s. Scaled linearly, 2,000 edges (a 4-layer, 8-head model with MLPs has 1,519; 6 × 6:
2,188) take minutes on a CPU at a hundred-odd prompts; above that the gradient screen is the
affordable one (GPT-2 small: 32,491 edges; SmolLM2-135M: 123,211) and its blind spot is the price.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from circuitspec.engine.attribution_patching import Attribution
from circuitspec.errors import CircuitSpecError

from . import eap, eap_ig, eap_ig_act, edge_patching

__all__ = ["AUTO", "DEFAULT_METHOD", "EXACT_EDGE_BUDGET", "METHODS", "auto", "method"]

AUTO = "auto"
EXACT_EDGE_BUDGET = 2000  # at most this many edges: exact edge patching, else eap-ig-act


def auto(
    ctx: Any, steps: int = eap_ig.DEFAULT_STEPS, progress: Callable[[int, int], None] | None = None
) -> Attribution:
    """``edge-patching`` where the model has at most :data:`EXACT_EDGE_BUDGET` edges, else ``eap-ig-act``
    (``Attribution.method`` says which ran)."""
    n_edges = int(edge_patching.edge_patch_graph(ctx).valid.sum())
    if n_edges <= EXACT_EDGE_BUDGET:
        return edge_patching.score(ctx, steps=steps, progress=progress)
    return eap_ig_act.score(ctx, steps=steps, progress=progress)


METHODS: dict[str, Callable[..., Any]] = {
    AUTO: auto,
    "edge-patching": edge_patching.score,
    "eap": eap.score,
    "eap-ig": eap_ig.score,
    "eap-ig-act": eap_ig_act.score,
}
DEFAULT_METHOD = AUTO


def method(name: str) -> Callable[..., Any]:
    """The scoring function called ``name`` (one line naming the valid ones otherwise)."""
    if name not in METHODS:
        raise CircuitSpecError(f"--method {name} is not a discovery method (valid: {', '.join(METHODS)})")
    return METHODS[name]
