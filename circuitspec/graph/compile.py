"""Compile a loaded hypothesis into a :class:`CircuitGraph`, validated against a model shape.

Everything here is checked without weights: ranges of layers / heads / neurons / features,
that edges run forward (in layer order and, for causal models, in token position), that every
name a claim uses exists, that every role is defined by the templates the claim runs on, and
the kind-specific rules of each claim. Every error points at the YAML line of the bad value.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from circuitspec.errors import CircuitSpecError, ModelNotAvailable
from circuitspec.spec.geometry import node_order, receive_channels
from circuitspec.spec.loader import LoadedHypothesis
from circuitspec.spec.nodes import NODE_GRAMMAR, NodeKind, NodeRef, NodeSyntaxError, parse_node
from circuitspec.spec.schema import ModelShape, split_path
from circuitspec.spec.templates import roles_of, slots_of

from .circuit import CircuitGraph
from .shapes import shape_for

__all__ = ["SCALABLE_KINDS", "compile_hypothesis", "receiver_channel"]

Loc = tuple[int | str, ...]

SCALABLE_KINDS = frozenset(NodeKind) - {NodeKind.LOGITS, NodeKind.HEAD_PATTERN}
_ATTENTION_KINDS = (NodeKind.HEAD, NodeKind.HEAD_PATTERN)
_RESID_KINDS = (NodeKind.RESID_PRE, NodeKind.RESID_MID, NodeKind.RESID_POST)
_TREND_VARIABLE = {"scaling": "alpha", "logit_lens": "layer"}


def _a(number: int) -> str:
    """The article before a number read aloud: 'an 8-layer', 'an 11-layer', 'a 12-layer'."""
    digits = str(number)
    eleven_or_eighteen = digits.startswith(("11", "18")) and len(digits) % 3 == 2
    return "an" if digits.startswith("8") or eleven_or_eighteen else "a"


def receiver_channel(receiver: NodeRef) -> str | None:
    """How an edge enters ``receiver``: ``q``/``k``/``v``, ``mlp_in``, ``resid``, ``logits``."""
    channels = receive_channels(receiver)
    return channels[0] if channels else None


@dataclass
class _Chain:
    """A path chain with where it was written (for errors) and which path it belongs to."""

    nodes: list[NodeRef]
    loc: Loc
    text: str
    path_name: str | None = None


@dataclass
class _Compiler:
    loaded: LoadedHypothesis
    shape: ModelShape
    template_roles: dict[str, list[str]] = field(default_factory=dict)
    template_slots: dict[str, list[str]] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)

    # ------------------------------------------------------------------ helpers
    def fail(self, message: str, loc: Sequence[int | str]) -> CircuitSpecError:
        return self.loaded.error(message, tuple(loc))

    @property
    def spec(self) -> Any:
        return self.loaded.spec

    def parse(self, text: str, loc: Loc) -> NodeRef:
        """Parse a node name and check it against the shape (once per distinct name)."""
        try:
            node = parse_node(text)
        except NodeSyntaxError as exc:
            raise self.fail(str(exc), loc) from None
        self.check_node(node, loc)
        known = {role for roles in self.template_roles.values() for role in roles}
        if node.role is not None and node.role not in known:
            raise self.fail(
                f"role '{node.role}' of node '{node.text}' is not defined by any template "
                f"(valid: {', '.join(sorted(known))})",
                loc,
            )
        return node

    def check_node(self, node: NodeRef, loc: Loc) -> None:
        shape = self.shape
        if node.layer is not None and not 0 <= node.layer < shape.n_layers:
            raise self.fail(
                f"layer {node.layer} of '{node.text}' out of range for {_a(shape.n_layers)} "
                f"{shape.n_layers}-layer model (valid: 0–{shape.n_layers - 1})",
                loc,
            )
        if node.head is not None and not 0 <= node.head < shape.n_heads:
            raise self.fail(
                f"head {node.head} of '{node.text}' out of range for a model with {shape.n_heads} heads per "
                f"layer (valid: 0–{shape.n_heads - 1})",
                loc,
            )
        if node.kind in (NodeKind.MLP, NodeKind.MLP_IN, NodeKind.MLP_NEURON) and shape.d_mlp is None:
            raise self.fail(f"'{node.text}' names an MLP but this model has no MLPs (attention-only)", loc)
        if node.kind is NodeKind.MLP_NEURON:
            assert shape.d_mlp is not None and node.index is not None
            if node.index >= shape.d_mlp:
                raise self.fail(
                    f"neuron {node.index} of '{node.text}' out of range for d_mlp = {shape.d_mlp} "
                    f"(valid: 0–{shape.d_mlp - 1})",
                    loc,
                )
        if node.is_feature:
            dictionaries = self.spec.model.dictionaries
            name = node.dictionary
            if name not in dictionaries:
                declared = ", ".join(dictionaries) or "none"
                raise self.fail(
                    f"feature node '{node.text}' needs dictionary '{name}' declared under "
                    f"model.dictionaries (declared: {declared})",
                    loc,
                )
            d_sae = dictionaries[name].d_sae
            assert node.index is not None
            if node.index >= d_sae:
                raise self.fail(
                    f"feature {node.index} of '{node.text}' out of range for dictionary '{name}' with "
                    f"d_sae = {d_sae} (valid: 0–{d_sae - 1})",
                    loc,
                )

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

    # ------------------------------------------------------------------ templates
    def index_templates(self) -> None:
        for template in self.spec.data.templates:
            self.template_roles[template.id] = roles_of(template.text)
            self.template_slots[template.id] = slots_of(template.text)
            for tag in template.tags:
                self.tags.setdefault(tag, []).append(template.id)

    def templates_for(self, claim: Any) -> list[str]:
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
                    f"unknown template or tag '{name}' (valid: {valid})",
                    self.loaded.claim_loc(claim.id, "data", j),
                )
        selected = [t for t in all_ids if t in chosen]
        if not selected:
            raise self.fail(
                "'data' selects no templates; leave it out to use every template",
                self.loaded.claim_loc(claim.id, "data"),
            )
        return selected

    # ------------------------------------------------------------------ names
    def validate_dictionaries(self) -> None:
        for key in self.spec.model.dictionaries:
            node = parse_node(f"{key}[0]")
            if node.layer is not None and not 0 <= node.layer < self.shape.n_layers:
                raise self.fail(
                    f"dictionary '{key}' sits at layer {node.layer}, out of range for "
                    f"{_a(self.shape.n_layers)} {self.shape.n_layers}-layer model "
                    f"(valid: 0–{self.shape.n_layers - 1})",
                    ("model", "dictionaries", key),
                )

    def resolve_name(self, name: str, loc: Loc, stack: tuple[str, ...] = ()) -> list[NodeRef]:
        """A node name or a name in ``nodes`` (groups expanded) → NodeRefs."""
        nodes = self.spec.nodes
        if name in nodes:
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
        node = self.parse(name, loc)
        self.add_node(node)
        return [node]

    def single(self, name: str, loc: Loc) -> NodeRef:
        """A path element: one node (a name in ``nodes`` must stand for exactly one)."""
        nodes = self.resolve_name(name, loc)
        if len(nodes) != 1:
            raise self.fail(
                f"path element '{name}' is a group of {len(nodes)} nodes; a path step must be one node", loc
            )
        return nodes[0]

    def chain(self, text: str, loc: Loc, path_name: str | None = None) -> _Chain:
        try:
            parts = split_path(text)
        except ValueError as exc:
            raise self.fail(str(exc), loc) from None
        nodes = [self.single(p, loc) for p in parts]
        for sender, receiver in itertools.pairwise(nodes):
            self.check_edge(sender, receiver, loc)
        return _Chain(nodes, loc, text, path_name)

    def check_edge(self, sender: NodeRef, receiver: NodeRef, loc: Loc) -> None:
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
        if self.graph.has_edge(sender.text, receiver.text):
            return
        self.graph.add_edge(sender.text, receiver.text, channel=channel, paths=[])

    def check_positions(self, chain: _Chain, template_ids: list[str], loc: Loc) -> None:
        """Causal models: no edge may read from a later token than it writes to."""
        if not self.shape.causal:
            return
        for sender, receiver in zip(chain.nodes, chain.nodes[1:], strict=False):
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

    def check_roles(self, nodes: list[NodeRef], template_ids: list[str], loc: Loc) -> None:
        for node in nodes:
            self.check_role(node.role, template_ids, loc, f"of node '{node.text}'")

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

    # ------------------------------------------------------------------ sections
    def compile_paths(self) -> dict[str, list[_Chain]]:
        chains: dict[str, list[_Chain]] = {}
        for name, value in self.spec.paths.items():
            texts = [value] if isinstance(value, str) else value
            if not texts:
                raise self.fail(f"path '{name}' is empty; write 'A -> B [-> C ...]'", ("paths", name))
            chains[name] = []
            for j, text in enumerate(texts):
                loc: Loc = ("paths", name) if isinstance(value, str) else ("paths", name, j)
                chain = self.chain(text, loc, name)
                for a, b in zip(chain.nodes, chain.nodes[1:], strict=False):
                    paths = self.graph.edges[a.text, b.text]["paths"]
                    if name not in paths:
                        paths.append(name)
                chains[name].append(chain)
        return chains

    def target(
        self, claim: Any, j: int, text: str, paths: dict[str, list[_Chain]]
    ) -> tuple[list[NodeRef], list[_Chain]]:
        loc = self.loaded.claim_loc(claim.id, "targets", j)
        if not isinstance(text, str) or not text.strip():
            raise self.fail("a target must be a non-empty string", loc)
        if "->" in text or "→" in text:
            chain = self.chain(text, loc)
            return list(chain.nodes), [chain]
        if text in paths:
            chains = paths[text]
            return [n for c in chains for n in c.nodes], chains
        if text in self.spec.nodes:
            return self.resolve_name(text, loc), []
        try:
            parse_node(text)
        except NodeSyntaxError:
            names = [*self.spec.nodes, *self.spec.paths]
            raise self.fail(
                f"unknown target '{text}': not a node, group, path or edge 'A -> B' "
                f"(valid: {', '.join(names) + '; ' if names else ''}{NODE_GRAMMAR})",
                loc,
            ) from None
        return self.resolve_name(text, loc), []

    def compile_claim(self, claim: Any, paths: dict[str, list[_Chain]], out: CircuitGraph) -> None:
        claim_loc = self.loaded.claim_loc
        template_ids = self.templates_for(claim)
        targets: list[NodeRef] = []
        chains: list[list[NodeRef]] = []
        for j, text in enumerate(claim.targets):
            nodes, target_chains = self.target(claim, j, text, paths)
            loc = claim_loc(claim.id, "targets", j)
            self.check_roles(nodes, template_ids, loc)
            for chain in target_chains:
                self.check_positions(chain, template_ids, loc)
                chains.append(chain.nodes)
            self.check_kind_target(claim, nodes, target_chains, text, loc)
            targets += [n for n in nodes if n not in targets]
        if not targets and claim.kind != "logit_lens":
            raise self.fail(f"a {claim.kind} claim needs at least one target", claim_loc(claim.id, "targets"))
        self.check_kind(claim, targets, template_ids)
        out.claim_targets[claim.id] = targets
        out.claim_chains[claim.id] = chains
        out.claim_templates[claim.id] = template_ids

    def check_kind_target(
        self, claim: Any, nodes: list[NodeRef], chains: list[_Chain], text: str, loc: Loc
    ) -> None:
        kind = claim.kind
        if kind == "attention":
            bad = next((n for n in nodes if n.kind not in _ATTENTION_KINDS), None)
            if bad is not None:
                raise self.fail(f"attention targets must be heads like L7H5 (got '{bad.text}')", loc)
        if kind == "path_patching" and not chains:
            raise self.fail(
                f"path_patching targets must be paths or edges 'A -> B' (got '{text}'; "
                f"paths: {', '.join(self.spec.paths) or 'none'})",
                loc,
            )
        if kind in ("scaling", "ablation", "activation_patching"):
            bad = next((n for n in nodes if n.kind not in SCALABLE_KINDS), None)
            if bad is not None:
                raise self.fail(f"a {kind} claim cannot act on '{bad.text}' ({bad.kind.value})", loc)

    def check_kind(self, claim: Any, targets: list[NodeRef], template_ids: list[str]) -> None:
        loc = self.loaded.claim_loc
        expectation = claim.expectation
        if expectation.form == "trend":
            variable = _TREND_VARIABLE.get(claim.kind)
            if claim.kind == "logit_lens" and claim.at is not None:
                variable = None
            if variable is None or expectation.variable != variable:
                valid = (
                    f"'{variable}'"
                    if variable
                    else "none: trends need a sweep (scaling over alpha, logit_lens over layer)"
                )
                raise self.fail(
                    f"a {claim.kind} claim cannot expect a trend with '{expectation.variable}' "
                    f"(valid: {valid})",
                    loc(claim.id, "expect"),
                )
        if claim.kind == "attention":
            self.check_role(claim.source, template_ids, loc(claim.id, "source"), "(attention source)")
            self.check_role(
                claim.destination, template_ids, loc(claim.id, "destination"), "(attention destination)"
            )
            if self.shape.causal and claim.source != claim.destination:
                for template_id in template_ids:
                    roles = self.template_roles[template_id]
                    if roles.index(claim.destination) > roles.index(claim.source):
                        raise self.fail(
                            f"role '{claim.destination}' comes after '{claim.source}' in template "
                            f"'{template_id}'; a causal model cannot attend forward",
                            loc(claim.id, "destination"),
                        )
        elif claim.kind == "logit_lens" and claim.at is not None:
            at_loc = loc(claim.id, "at")
            node = self.parse(claim.at, at_loc)
            if node.kind not in _RESID_KINDS:
                raise self.fail(
                    f"logit_lens 'at' must be a residual site (valid: resid_pre<l>, resid_mid<l>, "
                    f"resid_post<l>), got '{claim.at}'",
                    at_loc,
                )
            self.check_roles([node], template_ids, at_loc)
        elif claim.kind == "scaling":
            texts = {n.text for n in targets} | set(claim.targets)
            for name in claim.signs:
                if name not in texts:
                    raise self.fail(
                        f"'signs' names '{name}', which is not a target of this claim "
                        f"(valid: {', '.join(claim.targets)})",
                        loc(claim.id, "signs", name),
                    )
            if claim.interaction and len(targets) < 2:
                raise self.fail("an interaction needs at least two targets", loc(claim.id, "interaction"))
        elif claim.kind == "ablation":
            if claim.method == "soft" and claim.alpha is None:
                raise self.fail("a soft ablation needs 'alpha' (activation × alpha)", loc(claim.id, "method"))
        elif claim.kind == "causal_scrubbing":
            self.check_equivalence(claim, targets, template_ids)

    def check_equivalence(self, claim: Any, targets: list[NodeRef], template_ids: list[str]) -> None:
        texts = {n.text for n in targets} | {n.component for n in targets} | set(claim.targets)
        for key, fields in claim.equivalence.items():
            key_loc = self.loaded.claim_loc(claim.id, "equivalence", key)
            if key != "default":
                if key not in texts and key not in self.spec.nodes:
                    raise self.fail(
                        f"equivalence names '{key}', which is not a node of this claim "
                        f"(valid: default, {', '.join(sorted(texts))})",
                        key_loc,
                    )
                if key not in self.spec.nodes:
                    with contextlib.suppress(NodeSyntaxError):  # a path name: checked as targets
                        self.check_roles([parse_node(key)], template_ids, key_loc)
            for j, name in enumerate(fields):
                for template_id in template_ids:
                    slots = self.template_slots[template_id]
                    if name not in slots:
                        raise self.fail(
                            f"equivalence field '{name}' is not a slot of template '{template_id}' "
                            f"(valid: {', '.join(slots) or 'none'})",
                            (*key_loc, j),
                        )


def compile_hypothesis(loaded: LoadedHypothesis, shape: ModelShape | None = None) -> CircuitGraph:
    """Validate ``loaded`` against ``shape`` (default: :func:`shape_for` its model) and build the graph."""
    if shape is None:
        try:
            shape = shape_for(loaded.spec.model, loaded.base_dir)
        except CircuitSpecError as exc:
            if exc.file or isinstance(exc, ModelNotAvailable):  # not installed here: callers may skip
                raise
            raise loaded.error(exc.message, ("model",)) from None
    compiler = _Compiler(loaded, shape)
    compiler.index_templates()
    compiler.validate_dictionaries()
    for name, value in loaded.spec.nodes.items():
        members = [value] if isinstance(value, str) else value
        if not members:
            raise compiler.fail(f"group '{name}' is empty", ("nodes", name))
        compiler.resolve_name(name, ("nodes", name))
    paths = compiler.compile_paths()
    all_templates = list(compiler.template_roles)
    for chains in paths.values():
        for chain in chains:
            compiler.check_positions(chain, all_templates, chain.loc)
    graph = CircuitGraph(
        hypothesis=loaded.spec, shape=shape, digraph=compiler.graph, claims=list(loaded.claims)
    )
    for claim in loaded.claims:
        compiler.compile_claim(claim, paths, graph)
    if not nx.is_directed_acyclic_graph(compiler.graph):
        cycle = nx.find_cycle(compiler.graph)
        raise loaded.error(f"the circuit has a cycle: {' -> '.join(a for a, _ in cycle)}", ("paths",))
    return graph
