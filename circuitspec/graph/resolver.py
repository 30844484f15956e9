"""Names → nodes and chains, checked against the shape and the templates; builds the networkx graph.

:class:`Resolver` owns everything a hypothesis names outside its claims: templates and their roles,
node names and groups, path chains and their edges. Claim checks (``claim_checks.py``) use it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from circuitspec.errors import CircuitSpecError
from circuitspec.spec.geometry import node_order, receive_channels
from circuitspec.spec.loader import LoadedHypothesis
from circuitspec.spec.nodes import (
    NEURON_RANGE,
    SCREEN_TARGETS,
    NodeKind,
    NodeRef,
    NodeSyntaxError,
    expand_neuron_range,
    parse_layer_range,
    parse_node,
)
from circuitspec.spec.schema import ModelShape, split_path
from circuitspec.spec.templates import roles_of, slots_of

from .node_checks import dictionary_error, node_error

__all__ = ["Chain", "Loc", "Resolver", "receiver_channel"]

Loc = tuple[int | str, ...]


def receiver_channel(receiver: NodeRef) -> str | None:
    """How an edge enters ``receiver``: ``q``/``k``/``v``, ``mlp_in``, ``resid``, ``logits``."""
    channels = receive_channels(receiver)
    return channels[0] if channels else None


@dataclass
class Chain:
    """A path chain with where it was written (for errors) and which path it belongs to."""

    nodes: list[NodeRef]
    loc: Loc
    text: str
    path_name: str | None = None


@dataclass
class Resolver:
    loaded: LoadedHypothesis
    shape: ModelShape
    template_roles: dict[str, list[str]] = field(default_factory=dict)
    template_slots: dict[str, list[str]] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)

    def fail(self, message: str, loc: Sequence[int | str]) -> CircuitSpecError:
        return self.loaded.error(message, tuple(loc))

    def claim_loc(self, claim_id: str, *rest: int | str) -> Loc:
        return self.loaded.claim_loc(claim_id, *rest)

    @property
    def spec(self) -> Any:
        return self.loaded.spec

    # ------------------------------------------------------------------ nodes
    def parse(self, text: str, loc: Loc) -> NodeRef:
        """Parse a node name and check it against the shape and the templates' roles."""
        try:
            node = parse_node(text)
        except NodeSyntaxError as exc:
            raise self.fail(str(exc), loc) from None
        problem = node_error(node, self.shape, self.spec.model.dictionaries)
        if problem:
            raise self.fail(problem, loc)
        known = {role for roles in self.template_roles.values() for role in roles}
        if node.role is not None and node.role not in known:
            raise self.fail(
                f"role '{node.role}' of node '{node.text}' is not defined by any template "
                f"(valid: {', '.join(sorted(known))})",
                loc,
            )
        return node

    def add_node(self, node: NodeRef, group: str | None = None) -> None:
        if node.text not in self.graph:
            self.graph.add_node(
                node.text,
                ref=node,
                kind=node.kind.value,
                layer=node.layer,
                head=node.head,
                index=node.index,
                role=node.role,
                order=node_order(node),
                groups=[],
            )
        if group and group not in self.graph.nodes[node.text]["groups"]:
            self.graph.nodes[node.text]["groups"].append(group)

    def validate_dictionaries(self) -> None:
        for key in self.spec.model.dictionaries:
            problem = dictionary_error(key, self.shape)
            if problem:
                raise self.fail(problem, ("model", "dictionaries", key))

    def resolve_name(self, name: str, loc: Loc, stack: tuple[str, ...] = ()) -> list[NodeRef]:
        """A node name or a name in ``nodes`` (groups, and neuron ranges ``MLP3.post[10:20]``, expanded)
        → NodeRefs."""
        nodes = self.spec.nodes
        if name not in nodes and NEURON_RANGE.match(str(name).strip()):
            return self._neuron_range(name, loc)
        if name not in nodes:
            node = self.parse(name, loc)
            self.add_node(node)
            return [node]
        if name in stack:
            raise self.fail(f"group '{name}' contains itself ({' -> '.join([*stack, name])})", loc)
        members = nodes[name]
        out: list[NodeRef] = []
        for j, member in enumerate([members] if isinstance(members, str) else members):
            member_loc: Loc = ("nodes", name) if isinstance(members, str) else ("nodes", name, j)
            for node in self.resolve_name(member, member_loc, (*stack, name)):
                if node not in out:
                    out.append(node)
                self.add_node(node, group=name if not isinstance(members, str) else None)
        return out

    def _neuron_range(self, name: str, loc: Loc) -> list[NodeRef]:
        """``MLP3.post[10:20]`` → its neuron nodes, each checked like any node (an empty range, or one
        ending past ``d_mlp``, is refused naming the range)."""
        try:
            members = expand_neuron_range(name) or []
        except NodeSyntaxError as exc:
            raise self.fail(str(exc), loc) from None
        d_mlp, last = self.shape.d_mlp, parse_node(members[-1]).index
        if d_mlp is not None and last is not None and last >= d_mlp:
            raise self.fail(f"neuron range '{name}' ends past d_mlp = {d_mlp} (valid: stop ≤ {d_mlp})", loc)
        found = [self.parse(member, loc) for member in members]
        for node in found:
            self.add_node(node)
        return found

    def screen_cells(
        self, keyword: str, layers: str | int | None, roles: list[str | None], loc: Loc, layers_loc: Loc
    ) -> list[NodeRef]:
        """A screen target (``all_heads``, ``all_mlps``, ``all_resid_pre`` ...) → its cells, layer by layer,
        each at every role in ``roles`` (None: unpinned); checked like any node, never added to the
        circuit drawing (a screen is one claim over many cells)."""
        if keyword not in SCREEN_TARGETS:
            raise self.fail(f"'{keyword}' is not a screen target (valid: {', '.join(SCREEN_TARGETS)})", loc)
        try:
            chosen = list(range(self.shape.n_layers)) if layers is None else parse_layer_range(layers)
        except NodeSyntaxError as exc:
            raise self.fail(str(exc), layers_loc) from None
        if chosen[-1] >= self.shape.n_layers:
            raise self.fail(
                f"layer {chosen[-1]} out of range for a model with {self.shape.n_layers} layers "
                f"(valid: 0–{self.shape.n_layers - 1})",
                layers_loc,
            )
        kind = SCREEN_TARGETS[keyword]
        heads = range(self.shape.n_heads) if kind is NodeKind.HEAD else [None]
        base = {NodeKind.HEAD: "L{l}H{h}", NodeKind.MLP: "MLP{l}"}.get(kind, kind.value + "{l}")
        return [
            self.parse(base.format(l=layer, h=head) + (f"@{role}" if role else ""), loc)
            for layer in chosen
            for head in heads
            for role in roles
        ]

    def single(self, name: str, loc: Loc) -> NodeRef:
        """A path element: one node (a name in ``nodes`` must stand for exactly one)."""
        nodes = self.resolve_name(name, loc)
        if len(nodes) != 1:
            raise self.fail(
                f"path element '{name}' is a group of {len(nodes)} nodes; a path step must be one node", loc
            )
        return nodes[0]

    # ------------------------------------------------------------------ edges and paths
    def chain(self, text: str, loc: Loc, path_name: str | None = None) -> Chain:
        try:
            parts = split_path(text)
        except ValueError as exc:
            raise self.fail(str(exc), loc) from None
        nodes = [self.single(p, loc) for p in parts]
        for sender, receiver in itertools.pairwise(nodes):
            self.check_edge(sender, receiver, loc)
        return Chain(nodes, loc, text, path_name)

    def check_edge(self, sender: NodeRef, receiver: NodeRef, loc: Loc) -> None:
        """An edge of any circuit: the receiver has an input and runs after the sender."""
        edge = f"'{sender.text} -> {receiver.text}'"
        channel = receiver_channel(receiver)
        if channel is None:
            hint = ""
            if receiver.kind is NodeKind.HEAD:
                base = receiver.component
                hint = f" (valid: {base}.q, {base}.k, {base}.v)"
            raise self.fail(
                f"edge {edge}: '{receiver.text}' cannot receive an edge; name its input{hint}", loc
            )
        if sender.kind is NodeKind.LOGITS:
            raise self.fail(f"edge {edge}: logits are the output and send nothing", loc)
        if not node_order(receiver) > node_order(sender):
            raise self.fail(
                f"edge {edge} goes backwards: '{receiver.text}' does not run after '{sender.text}' "
                "in the forward pass (edges must go to a later layer or sublayer)",
                loc,
            )
        self.add_node(sender)
        self.add_node(receiver)
        if not self.graph.has_edge(sender.text, receiver.text):
            self.graph.add_edge(sender.text, receiver.text, channel=channel, paths=[])

    def compile_paths(self) -> dict[str, list[Chain]]:
        chains: dict[str, list[Chain]] = {}
        for name, value in self.spec.paths.items():
            texts = [value] if isinstance(value, str) else value
            if not texts:
                raise self.fail(f"path '{name}' is empty; write 'A -> B [-> C ...]'", ("paths", name))
            chains[name] = []
            for j, text in enumerate(texts):
                loc: Loc = ("paths", name) if isinstance(value, str) else ("paths", name, j)
                chain = self.chain(text, loc, name)
                for a, b in itertools.pairwise(chain.nodes):
                    paths = self.graph.edges[a.text, b.text]["paths"]
                    if name not in paths:
                        paths.append(name)
                chains[name].append(chain)
        return chains

    # ------------------------------------------------------------------ templates and roles
    def index_templates(self) -> None:
        for template in self.spec.data.templates:
            self.template_roles[template.id] = roles_of(template.text)
            self.template_slots[template.id] = slots_of(template.text)
            for tag in template.tags:
                self.tags.setdefault(tag, []).append(template.id)

    def templates_for(self, claim: Any) -> list[str]:
        """The template ids a claim's ``data`` selects (all when it has none)."""
        all_ids = list(self.template_roles)
        if claim.data is None:
            return all_ids
        chosen: set[str] = set()
        for j, name in enumerate(claim.data):
            if name in self.template_roles:
                chosen.add(name)
            elif name in self.tags:
                chosen.update(self.tags[name])
            else:
                valid = ", ".join([*all_ids, *(f"tag {t}" for t in self.tags)])
                raise self.fail(
                    f"unknown template or tag '{name}' (valid: {valid})", self.claim_loc(claim.id, "data", j)
                )
        selected = [t for t in all_ids if t in chosen]
        if not selected:
            raise self.fail(
                "'data' selects no templates; leave it out to use every template",
                self.claim_loc(claim.id, "data"),
            )
        return selected

    def check_positions(self, chain: Chain, template_ids: list[str], loc: Loc) -> None:
        """Causal models: no edge may read from a later token than it writes to."""
        if not self.shape.causal:
            return
        for sender, receiver in itertools.pairwise(chain.nodes):
            s_role = sender.role
            r_role = receiver.role if receiver.kind is not NodeKind.LOGITS else "end"
            if s_role is None or r_role is None or s_role == r_role:
                continue
            for template_id in template_ids:
                roles = self.template_roles[template_id]
                if s_role in roles and r_role in roles and roles.index(s_role) > roles.index(r_role):
                    raise self.fail(
                        f"edge '{sender.text} -> {receiver.text}' goes backwards in token position: role "
                        f"'{s_role}' comes after '{r_role}' in template '{template_id}' (a causal model "
                        "only reads earlier tokens)",
                        loc,
                    )

    def check_role(self, role: str | None, template_ids: list[str], loc: Loc, what: str) -> None:
        if role is None:
            return
        for template_id in template_ids:
            roles = self.template_roles[template_id]
            if role not in roles:
                raise self.fail(
                    f"role '{role}' {what} is not defined by template '{template_id}' "
                    f"(valid: {', '.join(roles)})",
                    loc,
                )
