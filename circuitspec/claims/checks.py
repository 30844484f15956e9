"""Kind-specific compile checks beyond targets, senders and receivers (torch-free).

Each check is ``check(checker, claim, targets, chains, template_ids)`` and raises ``checker.fail(...)`` at
the YAML location of the bad value. :class:`Checker` is what the graph compiler offers them.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from typing import Any, Protocol

from circuitspec.errors import CircuitSpecError
from circuitspec.spec.nodes import NodeRef, NodeSyntaxError, parse_node
from circuitspec.spec.schema import ModelShape

from .rules import RESIDUAL_SITE

__all__ = [
    "Checker",
    "check_ablation",
    "check_attention",
    "check_behaviour",
    "check_equivalence",
    "check_logit_lens",
    "check_scaling",
]

Loc = tuple[int | str, ...]
Chains = list[list[NodeRef]]


class Checker(Protocol):
    """The compiler's services a kind check may use."""

    shape: ModelShape
    template_roles: dict[str, list[str]]
    template_slots: dict[str, list[str]]

    @property
    def spec(self) -> Any: ...

    def fail(self, message: str, loc: Sequence[int | str]) -> CircuitSpecError: ...

    def claim_loc(self, claim_id: str, *rest: int | str) -> Loc: ...

    def parse(self, text: str, loc: Loc) -> NodeRef: ...

    def check_role(self, role: str | None, template_ids: list[str], loc: Loc, what: str) -> None: ...


def check_behaviour(
    c: Checker, claim: Any, targets: list[NodeRef], chains: Chains, template_ids: list[str]
) -> None:
    """A behaviour claim measures the clean prompts: no targets, no random baseline, no trend."""
    if claim.targets:
        raise c.fail(
            "a behaviour claim has no targets: it measures the model on the clean prompts "
            "(choose prompts with 'data: [template or tag]')",
            c.claim_loc(claim.id, "targets"),
        )
    if claim.metric not in _BEHAVIOUR_METRICS:
        raise c.fail(
            f"metric '{claim.metric}' compares two runs; a behaviour claim reads one "
            f"(valid: {', '.join(_BEHAVIOUR_METRICS)})",
            c.claim_loc(claim.id, "metric"),
        )


_BEHAVIOUR_METRICS = ("logit_diff", "prob_diff", "desired_prob", "cosine")


def check_attention(
    c: Checker, claim: Any, targets: list[NodeRef], chains: Chains, template_ids: list[str]
) -> None:
    """Source and destination roles exist; a causal model cannot attend forward."""
    c.check_role(claim.source, template_ids, c.claim_loc(claim.id, "source"), "(attention source)")
    dest_loc = c.claim_loc(claim.id, "destination")
    c.check_role(claim.destination, template_ids, dest_loc, "(attention destination)")
    if not c.shape.causal or claim.source == claim.destination:
        return
    for template_id in template_ids:
        roles = c.template_roles[template_id]
        if roles.index(claim.destination) > roles.index(claim.source):
            raise c.fail(
                f"role '{claim.destination}' comes after '{claim.source}' in template "
                f"'{template_id}'; a causal model cannot attend forward",
                dest_loc,
            )


def check_logit_lens(
    c: Checker, claim: Any, targets: list[NodeRef], chains: Chains, template_ids: list[str]
) -> None:
    """``at`` names a residual site whose role the templates define."""
    if claim.at is None:
        return
    at_loc = c.claim_loc(claim.id, "at")
    node = c.parse(claim.at, at_loc)
    if not RESIDUAL_SITE(node):
        raise c.fail(
            f"logit_lens 'at' must be a residual site (valid: {RESIDUAL_SITE.valid}), got '{claim.at}'",
            at_loc,
        )
    c.check_role(node.role, template_ids, at_loc, f"of node '{node.text}'")


def check_scaling(
    c: Checker, claim: Any, targets: list[NodeRef], chains: Chains, template_ids: list[str]
) -> None:
    """``signs`` name targets; an interaction needs two targets."""
    texts = {n.text for n in targets} | set(claim.targets)
    for name in claim.signs:
        if name not in texts:
            raise c.fail(
                f"'signs' names '{name}', which is not a target of this claim "
                f"(valid: {', '.join(claim.targets)})",
                c.claim_loc(claim.id, "signs", name),
            )
    if getattr(claim, "interaction", False) and len(targets) < 2:  # generation claims have none
        raise c.fail("an interaction needs at least two targets", c.claim_loc(claim.id, "interaction"))


def check_ablation(
    c: Checker, claim: Any, targets: list[NodeRef], chains: Chains, template_ids: list[str]
) -> None:
    if claim.method == "soft" and claim.alpha is None:
        raise c.fail("a soft ablation needs 'alpha' (activation × alpha)", c.claim_loc(claim.id, "method"))


def check_equivalence(
    c: Checker, claim: Any, targets: list[NodeRef], chains: Chains, template_ids: list[str]
) -> None:
    """Equivalence keys are nodes of the claim; their fields are slots of every template."""
    texts = {n.text for n in targets} | {n.component for n in targets} | set(claim.targets)
    for key, fields in claim.equivalence.items():
        key_loc = c.claim_loc(claim.id, "equivalence", key)
        if key != "default":
            if key not in texts and key not in c.spec.nodes:
                raise c.fail(
                    f"equivalence names '{key}', which is not a node of this claim "
                    f"(valid: default, {', '.join(sorted(texts))})",
                    key_loc,
                )
            if key not in c.spec.nodes:
                with contextlib.suppress(NodeSyntaxError):  # a path name: checked as targets
                    role = parse_node(key).role
                    c.check_role(role, template_ids, key_loc, f"of node '{key}'")
        for j, name in enumerate(fields):
            for template_id in template_ids:
                slots = c.template_slots[template_id]
                if name not in slots:
                    raise c.fail(
                        f"equivalence field '{name}' is not a slot of template '{template_id}' "
                        f"(valid: {', '.join(slots) or 'none'})",
                        (*key_loc, j),
                    )


def check_path_patching(
    c: Checker, claim: Any, targets: list[NodeRef], chains: Chains, template_ids: list[str]
) -> None:
    """One chain of any length, or several single edges patched jointly."""
    if len(chains) > 1 and any(len(chain) > 2 for chain in chains):
        raise c.fail(
            "several multi-hop paths cannot be patched jointly (use each: true, one path per claim)",
            c.claim_loc(claim.id, "targets"),
        )


def check_scrubbing(
    c: Checker, claim: Any, targets: list[NodeRef], chains: Chains, template_ids: list[str]
) -> None:
    """The equivalence names nodes and slots; every node lies on a path that reaches the logits."""
    check_equivalence(c, claim, targets, chains, template_ids)
    components = {_component(a) for chain in chains for a in chain}
    for node in targets:
        if _component(node) not in components:
            raise c.fail(
                f"causal scrubbing: node '{node.text}' is on no path of the hypothesis "
                "(name paths 'A -> B -> logits')",
                c.claim_loc(claim.id, "targets"),
            )
    reaches = {"logits"}
    changed = True
    while changed:
        changed = False
        for chain in chains:
            for a, b in itertools.pairwise(chain):
                if _component(b) in reaches and _component(a) not in reaches:
                    reaches.add(_component(a))
                    changed = True
    stranded = sorted(components - reaches)
    if stranded:
        raise c.fail(
            f"causal scrubbing: {', '.join(stranded)} do(es) not reach logits along the hypothesis' paths "
            "(every path must end at logits)",
            c.claim_loc(claim.id, "targets"),
        )


def _component(node: NodeRef) -> str:
    """The component scrubbing evaluates: a head, an MLP (input and output alike), an embedding."""
    if node.head is not None:
        return f"L{node.layer}H{node.head}"
    if node.layer is not None and node.component.startswith("MLP"):
        return f"MLP{node.layer}"
    return node.kind.value
