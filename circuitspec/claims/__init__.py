"""Claim kinds: one registry entry per kind (compile rules, needed hooks, measure function, plots).

Torch-free at import; see :mod:`circuitspec.claims.registry`.
"""

from .registry import REGISTRY, ClaimKind, claim_kind

__all__ = ["REGISTRY", "ClaimKind", "claim_kind"]
