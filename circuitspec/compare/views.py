"""One hypothesis naming several models, seen one model at a time (torch-free).

A file with ``models: {smollm2: ..., gemma: ...}`` is verified as one single-model hypothesis per
model — the claims without ``model:`` plus those naming it, with ``model:`` set to that model — so
the compiler, the engine and the reports stay single-model. Cross-model claims (``alignment``) are
kept out of every view and run once every model has been read (:mod:`circuitspec.compare.run`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from circuitspec.claims.registry import claim_kind

__all__ = ["cross_model_claims", "is_multi_model", "model_names", "model_view"]


def is_multi_model(loaded: Any) -> bool:
    """Whether the file names its models under ``models:``."""
    return bool(loaded.spec.models)


def model_names(loaded: Any) -> list[str]:
    """The file's model names in the order written."""
    return list(loaded.spec.models)


def _cross(claim: Any) -> bool:
    return claim_kind(claim.kind).cross_model


def cross_model_claims(loaded: Any) -> list[Any]:
    """The claims that read two models (expanded, file order)."""
    return [claim for claim in loaded.claims if _cross(claim)]


def model_view(loaded: Any, name: str) -> Any:
    """The hypothesis as if it named only model ``name``: ``model:`` is that model, ``models:`` empty,
    and the claims are the single-model ones that run on it (``require`` limited to those)."""
    spec = loaded.spec
    kept = [c for c in loaded.claims if not _cross(c) and c.model in (None, name)]
    ids = {c.id for c in kept}
    kept = [c.model_copy(update={"require": [r for r in c.require if r in ids]}) for c in kept]
    file_claims = [c for c in spec.claims if not _cross(c) and c.model in (None, name)]
    view_spec = spec.model_copy(update={"model": spec.models[name], "models": {}, "claims": file_claims})
    return replace(loaded, spec=view_spec, claims=kept)
