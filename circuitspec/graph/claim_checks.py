"""Compile one claim: resolve its targets, then apply its kind's rules from the claim registry.

Every kind-specific rule comes from :data:`circuitspec.claims.REGISTRY` (which nodes may be targets,
path senders and receivers; the trend variable; encoders; the kind's own check), and the node
facts from :mod:`circuitspec.spec.geometry`, so ``validate`` rejects what ``verify`` would.
"""

from __future__ import annotations

import itertools
from typing import Any

from circuitspec.claims import REGISTRY, ClaimKind, claim_kind
from circuitspec.spec.answers import check_answers
from circuitspec.spec.backends import backend_refusal
from circuitspec.spec.geometry import receive_order, send_order
from circuitspec.spec.nodes import NEURON_RANGE, NODE_GRAMMAR, NodeKind, NodeRef, NodeSyntaxError, parse_node

from .circuit import CircuitGraph
from .resolver import Chain, Loc, Resolver

__all__ = ["compile_claim"]


def _target(
    r: Resolver, claim: Any, j: int, text: str, paths: dict[str, list[Chain]]
) -> tuple[list[NodeRef], list[Chain]]:
    """One entry of ``targets``: an edge / chain, a path name, a group or a node."""
    loc = r.claim_loc(claim.id, "targets", j)
    if not isinstance(text, str) or not text.strip():
        raise r.fail("a target must be a non-empty string", loc)
    if "->" in text or "→" in text:
        chain = r.chain(text, loc)
        return list(chain.nodes), [chain]
    if text in paths:
        chains = paths[text]
        return [n for c in chains for n in c.nodes], chains
    if text not in r.spec.nodes and not NEURON_RANGE.match(text.strip()):  # a range: resolve_name
        try:
            parse_node(text)
        except NodeSyntaxError:
            names = [*r.spec.nodes, *r.spec.paths]
            raise r.fail(
                f"unknown target '{text}': not a node, group, path or edge 'A -> B' "
                f"(valid: {', '.join(names) + '; ' if names else ''}{NODE_GRAMMAR})",
                loc,
            ) from None
    return r.resolve_name(text, loc), []


def _check_target(
    r: Resolver, kind: ClaimKind, nodes: list[NodeRef], chains: list[Chain], text: str, loc: Loc
) -> None:
    """The kind's target rule, and for path kinds: paths only, each edge's sender / receiver rules."""
    if kind.paths and not chains:
        raise r.fail(
            f"{kind.name} targets must be paths or edges 'A -> B' (got '{text}'; "
            f"paths: {', '.join(r.spec.paths) or 'none'})",
            loc,
        )
    for chain in chains:
        for sender, receiver in itertools.pairwise(chain.nodes):
            _check_path_edge(r, kind, sender, receiver, loc)
    bad = next((n for n in nodes if kind.target is not None and not kind.target(n)), None)
    if bad is not None and kind.target is not None:
        raise r.fail(kind.target.explain(kind.name, bad), loc)


def _check_path_edge(r: Resolver, kind: ClaimKind, sender: NodeRef, receiver: NodeRef, loc: Loc) -> None:
    edge = f"edge '{sender.text} -> {receiver.text}'"
    if kind.sender is not None and not kind.sender(sender):
        raise r.fail(
            f"{kind.name} {edge}: '{sender.text}' cannot be a sender (valid: {kind.sender.valid})", loc
        )
    if kind.receiver is not None and not kind.receiver(receiver):
        raise r.fail(
            f"{kind.name} {edge}: '{receiver.text}' cannot be a receiver (valid: {kind.receiver.valid})", loc
        )
    writes_too_late = receiver.kind is not NodeKind.LOGITS and send_order(sender) >= receive_order(receiver)
    if kind.sender is not None and writes_too_late:
        raise r.fail(
            f"{kind.name} {edge}: '{receiver.text}' reads the residual stream "
            f"before '{sender.text}' writes it",
            loc,
        )


def _check_expectation(r: Resolver, kind: ClaimKind, claim: Any) -> None:
    expectation = claim.expectation
    if expectation.form != "trend":
        return
    variable = kind.trend_variable
    if kind.name == "logit_lens" and claim.at is not None:
        variable = None  # one site is not a sweep
    if variable is None or expectation.variable != variable:
        valid = (
            f"'{variable}'"
            if variable
            else "none: trends need a sweep (scaling over alpha, logit_lens over layer)"
        )
        raise r.fail(
            f"a {kind.name} claim cannot expect a trend with '{expectation.variable}' (valid: {valid})",
            r.claim_loc(claim.id, "expect"),
        )


def compile_claim(r: Resolver, claim: Any, paths: dict[str, list[Chain]], out: CircuitGraph) -> None:
    """Check one claim and record its targets, chains and templates in ``out``."""
    kind = claim_kind(claim.kind)
    template_ids = r.templates_for(claim)
    if not r.shape.causal and not kind.encoder:
        valid = ", ".join(k for k, entry in REGISTRY.items() if entry.encoder)
        raise r.fail(
            f"{kind.name} on an encoder: {kind.encoder_reason} (valid kinds: {valid})",
            r.claim_loc(claim.id, "kind"),
        )
    targets: list[NodeRef] = []
    chains: list[list[NodeRef]] = []
    for j, text in enumerate(claim.targets):
        nodes, target_chains = _target(r, claim, j, text, paths)
        loc = r.claim_loc(claim.id, "targets", j)
        for node in nodes:
            r.check_role(node.role, template_ids, loc, f"of node '{node.text}'")
        for chain in target_chains:
            r.check_positions(chain, template_ids, loc)
            chains.append(chain.nodes)
        _check_target(r, kind, nodes, target_chains, text, loc)
        targets += [n for n in nodes if n not in targets]
    if not targets and kind.needs_targets:
        raise r.fail(f"a {kind.name} claim needs at least one target", r.claim_loc(claim.id, "targets"))
    refused = backend_refusal(r.spec.model, kind.name, targets, r.shape)  # e.g. nnsight: no path patching
    if refused is not None:
        raise r.fail(refused, r.claim_loc(claim.id, "kind"))
    _check_expectation(r, kind, claim)
    if kind.check is not None:
        kind.check(r, claim, targets, chains, template_ids)
    check_answers(r, claim, template_ids)  # templates without answers serve generation / attention only
    out.claim_targets[claim.id] = targets
    out.claim_chains[claim.id] = chains
    out.claim_templates[claim.id] = template_ids
