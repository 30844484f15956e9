"""A causal-scrubbing hypothesis: its edges between components, treeified, every resampling drawn.

The claim's paths are read as a graph ``I`` of edges ``sender -> receiver``: a head's output, an
MLP's output or an embedding into a head's q/k/v input, an MLP's input or the logits. Which nodes
may send and receive is the claim registry's rule (``SCRUB_SENDER`` / ``SCRUB_RECEIVER``), derived
from the node geometry; so is the order check. :func:`build_plan` treeifies ``I`` from the logits
down and draws every resampled input (class-mates per equivalence, one random prompt per sample).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from circuitspec.claims.rules import SCRUB_RECEIVER, SCRUB_SENDER
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.geometry import sends_where_pinned, writes
from circuitspec.spec.nodes import NodeKind, NodeRef, parse_node

from ..paths.jobs import check_edge, input_channels

__all__ = [
    "LOGITS",
    "Component",
    "Edge",
    "ScrubPlan",
    "TreeNode",
    "build_plan",
    "component",
    "hypothesis_edges",
]


@dataclass(frozen=True)
class Component:
    """A model component as a hypothesis node: a head's or MLP's output, an embedding, the logits."""

    node: NodeRef  # without a role: L7H5, MLP3, embed, pos_embed or logits

    @property
    def name(self) -> str:
        return self.node.text


LOGITS = Component(parse_node("logits"))


def component(node: NodeRef) -> Component:
    """The component whose output (or, for the logits, input) ``node`` names."""
    what = writes(node)
    if what == "head":
        return Component(NodeRef(f"L{node.layer}H{node.head}", NodeKind.HEAD, node.layer, node.head))
    if what == "mlp":
        return Component(NodeRef(f"MLP{node.layer}", NodeKind.MLP, node.layer))
    return Component(node.with_role(None))


@dataclass(frozen=True)
class Edge:
    """``sender`` (at ``sender_role``, else everywhere) into ``receiver``'s ``channel`` (at its role)."""

    sender: Component
    receiver: Component
    channel: str  # q | k | v | mlp_in | logits
    sender_role: str | None
    receiver_role: str | None
    sender_text: str


def hypothesis_edges(chains: Sequence[Sequence[NodeRef]], targets: Sequence[NodeRef] = ()) -> list[Edge]:
    """The hypothesis graph's edges from the claim's chains, checked to form paths into the logits."""
    edges: dict[tuple, Edge] = {}
    for chain in chains:
        for a, b in itertools.pairwise(chain):
            check_edge(a, b, "causal scrubbing", SCRUB_SENDER, SCRUB_RECEIVER)
            sender, receiver = component(a), component(b)
            # a head reached through its key/value at @role reads there but writes at its query positions
            send_role = a.role if sends_where_pinned(a) else None
            for chan in input_channels(b):
                edges[(sender, receiver, chan, send_role, b.role)] = Edge(
                    sender, receiver, chan, send_role, b.role, a.text
                )
    edge_list = list(edges.values())
    _check_reach(edge_list, targets)
    return edge_list


def _check_reach(edges: Sequence[Edge], targets: Sequence[NodeRef]) -> None:
    """Every target lies on a path, and every hypothesis node reaches the logits."""
    on_paths = {e.sender for e in edges} | {e.receiver for e in edges}
    for node in targets:
        if component(node) not in on_paths:
            raise CircuitSpecError(
                f"causal scrubbing: node '{node}' is on no path of the hypothesis "
                "(name paths 'A -> B -> logits')"
            )
    reaches = {LOGITS}
    changed = True
    while changed:
        changed = False
        for e in edges:
            if e.receiver in reaches and e.sender not in reaches:
                reaches.add(e.sender)
                changed = True
    stranded = sorted(comp.name for comp in on_paths - reaches)
    if stranded:
        raise CircuitSpecError(
            f"causal scrubbing: {', '.join(stranded)} do(es) not reach logits along the hypothesis' paths "
            "(every path must end at logits)"
        )


@dataclass
class TreeNode:
    """One treeified evaluation of a component: on rows ``inputs`` (prompt index per batch row)."""

    component: Component
    inputs: np.ndarray  # [B] prompt indices
    edge: Edge | None = None  # the edge this evaluation feeds (None for the root)
    children: list[int] = field(default_factory=list)  # indices into ScrubPlan.nodes


@dataclass
class ScrubPlan:
    """The treeified hypothesis with every resampling decision made (shared by engine and reference).

    Batch row ``b`` is prompt ``originals[b]`` in sample ``b // n``; ``randoms[b]`` is its shared
    random other prompt; ``nodes[0]`` is the logits.
    """

    originals: np.ndarray
    randoms: np.ndarray
    nodes: list[TreeNode]
    samples: int


def _fields_for(
    edge: Edge, equivalence: Mapping[str, Sequence[str]], all_fields: Sequence[str]
) -> tuple[str, ...]:
    for key in (edge.sender_text, edge.sender_text.split("@", 1)[0], edge.sender.name):
        if key in equivalence:
            return tuple(equivalence[key])
    if "default" in equivalence:
        return tuple(equivalence["default"])
    return tuple(all_fields)


class _Classes:
    """Prompts grouped by shape (length and role positions: activations line up token by token)
    and by the values of chosen row fields."""

    def __init__(self, prompts: Any) -> None:
        roles = sorted(prompts.role_positions)
        self.rows = prompts.rows
        self.shapes = [
            (int(prompts.lengths[i]), *(int(prompts.role_positions[r][i]) for r in roles))
            for i in range(len(prompts))
        ]
        self._groups: dict[tuple[str, ...], dict[tuple, list[int]]] = {}

    def key(self, i: int, fields: tuple[str, ...]) -> tuple:
        return (self.shapes[i], *(self.rows[i].get(f) for f in fields))

    def members(self, i: int, fields: tuple[str, ...]) -> list[int]:
        """The prompts in ``i``'s class for ``fields`` (``i`` included)."""
        if fields not in self._groups:
            groups: dict[tuple, list[int]] = {}
            for j in range(len(self.shapes)):
                groups.setdefault(self.key(j, fields), []).append(j)
            self._groups[fields] = groups
        return self._groups[fields][self.key(i, fields)]


def build_plan(
    prompts: Any,
    edges: Sequence[Edge],
    equivalence: Mapping[str, Sequence[str]],
    samples: int,
    seed: int,
    max_tree_nodes: int = 4096,
) -> ScrubPlan:
    """Treeify the hypothesis and draw every resampled input (class-mates and the random prompt)."""
    rng = np.random.default_rng(seed)
    all_fields = sorted({f for row in prompts.rows for f in row})
    for key, fields in equivalence.items():
        for f in fields:
            if f not in all_fields:
                raise CircuitSpecError(
                    f"causal scrubbing: equivalence of '{key}' names field '{f}' that the data rows lack "
                    f"(valid: {', '.join(all_fields)})"
                )
    classes = _Classes(prompts)
    originals = np.tile(np.arange(len(prompts)), samples)
    randoms = np.empty_like(originals)
    for b, x in enumerate(originals):
        others = [j for j in classes.members(int(x), ()) if j != x]
        randoms[b] = rng.choice(others) if others else x
    incoming: dict[Component, list[Edge]] = {}
    for e in edges:
        incoming.setdefault(e.receiver, []).append(e)
    nodes = [TreeNode(LOGITS, originals.copy())]
    stack = [0]
    while stack:
        parent = stack.pop()
        for e in incoming.get(nodes[parent].component, []):
            fields = _fields_for(e, equivalence, all_fields)
            drawn = np.array([rng.choice(classes.members(int(x), fields)) for x in nodes[parent].inputs])
            nodes.append(TreeNode(e.sender, drawn, e))
            nodes[parent].children.append(len(nodes) - 1)
            stack.append(len(nodes) - 1)
            if len(nodes) > max_tree_nodes:
                raise CircuitSpecError(
                    f"causal scrubbing: the treeified hypothesis exceeds {max_tree_nodes} nodes "
                    f"at '{e.sender.name}' (too many paths; scrub a smaller hypothesis)"
                )
    return ScrubPlan(originals, randoms, nodes, samples)
