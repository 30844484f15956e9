"""Compile a loaded hypothesis into a :class:`CircuitGraph`, validated against a model shape.

Everything here is checked without weights: ranges of layers / heads / neurons / features,
that edges run forward (in layer order and, for causal models, in token position), that every
name a claim uses exists, that every role is defined by the templates the claim runs on, and
the kind-specific rules of each claim (from the claim registry). Every error points at the YAML
line of the bad value. Names and paths: ``resolver.py``; claims: ``claim_checks.py``.
"""

from __future__ import annotations

import networkx as nx

from circuitspec.errors import CircuitSpecError, ModelNotAvailable
from circuitspec.spec.loader import LoadedHypothesis
from circuitspec.spec.schema import ModelShape

from .circuit import CircuitGraph
from .claim_checks import compile_claim
from .resolver import Resolver, receiver_channel
from .screen_checks import compile_screen, is_screen
from .shapes import shape_for

__all__ = ["compile_hypothesis", "receiver_channel"]


def _shape(loaded: LoadedHypothesis) -> ModelShape:
    try:
        return shape_for(loaded.spec.model, loaded.base_dir)
    except CircuitSpecError as exc:
        if exc.file or isinstance(exc, ModelNotAvailable):  # not installed here: callers may skip
            raise
        raise loaded.error(exc.message, ("model",)) from None


def compile_hypothesis(loaded: LoadedHypothesis, shape: ModelShape | None = None) -> CircuitGraph:
    """Validate ``loaded`` against ``shape`` (default: :func:`shape_for` its model) and build the graph."""
    resolver = Resolver(loaded, shape if shape is not None else _shape(loaded))
    resolver.index_templates()
    resolver.validate_dictionaries()
    for name, value in loaded.spec.nodes.items():
        members = [value] if isinstance(value, str) else value
        if not members:
            raise resolver.fail(f"group '{name}' is empty", ("nodes", name))
        resolver.resolve_name(name, ("nodes", name))
    paths = resolver.compile_paths()
    all_templates = list(resolver.template_roles)
    for chains in paths.values():
        for chain in chains:
            resolver.check_positions(chain, all_templates, chain.loc)
    graph = CircuitGraph(
        hypothesis=loaded.spec, shape=resolver.shape, digraph=resolver.graph, claims=list(loaded.claims)
    )
    for claim in loaded.claims:
        if is_screen(claim):  # one claim over many cells, none of them drawn as circuit nodes
            compile_screen(resolver, claim, graph)
        else:
            compile_claim(resolver, claim, paths, graph)
    if not nx.is_directed_acyclic_graph(resolver.graph):
        cycle = nx.find_cycle(resolver.graph)
        raise loaded.error(f"the circuit has a cycle: {' -> '.join(a for a, _ in cycle)}", ("paths",))
    return graph
