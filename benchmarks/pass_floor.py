"""The pass floor of a hypothesis: the distinct forward passes (one per prompt sequence) its claims need.

Any engine has to run at least these rows, however it batches or caches; ``bench_smollm2.py`` prints the
rows circuitspec counted against it. Per prompt set of ``n`` prompts (the claims reading the same
templates share it; a set inside a larger one adds nothing): ``n`` clean rows, plus ``n`` corrupted rows
when a claim compares against the corrupted prompts. Per claim, on its ``n`` prompts:

- attribution, attention, logit_lens: 0 (read off the clean run);
- ablation, activation_patching, path_patching: ``n`` (one edited pass);
- scaling: ``n`` per α other than 1 (α = 1 is the unedited model: the clean run), and per target alone
  again with ``interaction``;
- faithfulness: ``n`` for the fully ablated model, ``n`` for the circuit, ``n`` per random circuit;
- causal_scrubbing: 0, where the stream is a sum (decoders): it recomputes only its tree's components
  (one attention or MLP call each, on the clean run's cached stream; the claim's
  ``extra["component_calls"]``) and reads its random reference off the clean runs.
A partial pass counts as one row here as in circuitspec's counter (``layer_passes`` says how much of
the model it ran).
"""

from __future__ import annotations

from typing import Any

__all__ = ["pass_floor"]

_READ_ONLY = {"attribution", "attention", "logit_lens", "behaviour", "causal_scrubbing"}
_ONE_EDIT = {"ablation", "activation_patching", "path_patching"}
_READS_CORRUPT = {"activation_patching", "path_patching"}


def _claim_rows(claim: Any, n: int) -> int:
    kind = claim.kind
    if kind in _READ_ONLY:
        return 0
    if kind in _ONE_EDIT:
        return n
    if kind == "scaling":
        copies = 1 + (len(claim.targets) if getattr(claim, "interaction", False) else 0)
        return n * sum(1 for alpha in claim.alphas if alpha != 1) * copies
    if kind == "faithfulness":
        randoms = claim.random_baseline.n if claim.random_baseline is not None else 0
        return n * (2 + randoms)
    raise ValueError(f"no pass floor known for claim kind '{kind}'")


def pass_floor(graph: Any, n_prompts: dict[str, int]) -> int:
    """Rows the claims of ``graph`` need, given each claim's number of prompts (``n_prompts[id]``)."""
    sets: dict[tuple[str, ...], tuple[int, bool]] = {}
    total = 0
    for claim in graph.claims:
        n = n_prompts[claim.id]
        templates = tuple(graph.templates(claim.id))
        size, corrupt = sets.get(templates, (0, False))
        sets[templates] = (max(size, n), corrupt or claim.kind in _READS_CORRUPT)
        total += _claim_rows(claim, n)
    for templates, (size, corrupt) in sets.items():
        larger = [other for other in sets if set(templates) < set(other)]  # runs sliced from these
        total += 0 if larger else size
        if corrupt and not any(sets[other][1] for other in larger):
            total += size
    return total
