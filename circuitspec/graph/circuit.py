"""The compiled hypothesis: a networkx graph plus what each claim targets (contract)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import networkx as nx

from circuitspec.spec.nodes import NodeRef
from circuitspec.spec.schema import ClaimSpec, Hypothesis, ModelShape

__all__ = ["CircuitGraph"]


@dataclass
class CircuitGraph:
    """A hypothesis compiled and validated against a model shape.

    ``digraph`` nodes are node texts (``L7H5.v@s_con``) with attributes ``ref`` (NodeRef),
    ``kind``, ``layer``, ``head``, ``role``, ``order``, ``groups``; edges carry ``channel``
    (``q``/``k``/``v``/``mlp_in``/``resid``/``logits``) and ``paths`` (names).
    ``claims`` are the hypothesis' claims after ``each:`` expansion, in file order.
    """

    hypothesis: Hypothesis
    shape: ModelShape
    digraph: nx.DiGraph
    claims: list[ClaimSpec]
    claim_targets: dict[str, list[NodeRef]] = field(default_factory=dict)
    claim_chains: dict[str, list[list[NodeRef]]] = field(default_factory=dict)
    claim_templates: dict[str, list[str]] = field(default_factory=dict)

    def claim(self, claim_id: str) -> ClaimSpec:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)

    def targets(self, claim_id: str) -> list[NodeRef]:
        """Every node a claim names (groups and paths expanded, duplicates removed, in order)."""
        return self.claim_targets[claim_id]

    def chains(self, claim_id: str) -> list[list[NodeRef]]:
        """The node chains of the paths / edges a claim names (``A -> B -> C`` is one chain)."""
        return self.claim_chains.get(claim_id, [])

    def edges(self, claim_id: str) -> list[tuple[NodeRef, NodeRef]]:
        return [(a, b) for chain in self.chains(claim_id) for a, b in itertools.pairwise(chain)]

    def templates(self, claim_id: str) -> list[str]:
        """Template ids whose prompts the claim runs on."""
        return self.claim_templates[claim_id]
