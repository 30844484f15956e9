"""Compile a ``screen`` claim: its cells from the resolver, the measured kind's rules on every cell.

A screen is checked as its single-target claims would be (the registry's target rule and check of
the kind in ``of``, the answers its metric needs), with every error at the YAML line; its cells
are recorded as the claim's targets but never drawn as circuit nodes.
"""

from __future__ import annotations

from typing import Any

from circuitspec.claims import claim_kind
from circuitspec.claims.screens import single_claim
from circuitspec.spec.answers import check_answers
from circuitspec.spec.nodes import NodeRef, NodeSyntaxError, parse_node
from circuitspec.spec.screens import ScreenClaim

from .circuit import CircuitGraph
from .resolver import Resolver

__all__ = ["compile_screen", "screen_roles"]


def screen_roles(r: Resolver, claim: ScreenClaim, template_ids: list[str]) -> list[str | None]:
    """The roles every cell is pinned to: ``all_roles`` = the roles all its templates share (in the
    first template's order, ``end`` included); a list is checked against each template."""
    if claim.positions is None:
        return [None]
    if claim.positions == "all_roles":
        first = r.template_roles[template_ids[0]]
        return [role for role in first if all(role in r.template_roles[t] for t in template_ids)]
    loc = r.claim_loc(claim.id, "positions")
    for role in claim.positions:
        r.check_role(role, template_ids, loc, "(screen position)")
    return list(dict.fromkeys(claim.positions))


def _named_cells(r: Resolver, claim: ScreenClaim, cells: list[NodeRef]) -> tuple[str, ...]:
    """The expectation's names (nodes or ``nodes`` groups) as cell labels; a name on no cell is an error.

    A name without a role stands for its component at every position of the screen."""
    loc = r.claim_loc(claim.id, "expect")
    out: list[str] = []
    for name in claim.expectation.names:
        if name in r.spec.nodes:
            nodes = r.resolve_name(name, loc)
        else:
            try:
                nodes = [parse_node(name)]
            except NodeSyntaxError as exc:
                raise r.fail(f"{exc}; in a screen expectation, name cells or `nodes` groups", loc) from None
        for node in nodes:
            hits = [
                c.text
                for c in cells
                if c.text == node.text or (node.role is None and c.component == node.component)
            ]
            if not hits:
                shown = ", ".join(c.text for c in cells[:6]) + (" …" if len(cells) > 6 else "")
                raise r.fail(f"'{node.text}' is not a cell of this screen (cells: {shown})", loc)
            out += [h for h in hits if h not in out]
    return tuple(out)


def _versus(r: Resolver, claim: ScreenClaim, template_ids: list[str]) -> list[str]:
    """``versus`` (template ids or tags) as template ids, none shared with the claim's ``data``."""
    chosen: list[str] = []
    for j, name in enumerate(claim.versus or []):
        loc = r.claim_loc(claim.id, "versus", j)
        ids = [name] if name in r.template_roles else r.tags.get(name, [])
        if not ids:
            valid = ", ".join([*r.template_roles, *(f"tag {t}" for t in r.tags)])
            raise r.fail(f"unknown template or tag '{name}' (valid: {valid})", loc)
        shared = [t for t in ids if t in template_ids]
        if shared:
            raise r.fail(
                f"template '{shared[0]}' is in both groups; set `data` to the first group's templates", loc
            )
        chosen += [t for t in ids if t not in chosen]
    return chosen


def compile_screen(r: Resolver, claim: ScreenClaim, out: CircuitGraph) -> None:
    """Check one screen claim and record its cells and templates in ``out``."""
    kind = claim_kind(claim.of)
    template_ids = r.templates_for(claim)
    versus = _versus(r, claim, template_ids)
    claim._versus_templates = tuple(versus)
    template_ids = [t for t in r.template_roles if t in template_ids or t in versus]
    roles = screen_roles(r, claim, template_ids)
    if not roles:
        raise r.fail("the claim's templates share no role to screen", r.claim_loc(claim.id, "positions"))
    cells: list[NodeRef] = []
    for j, keyword in enumerate(claim.targets):
        loc = r.claim_loc(claim.id, "targets", j)
        for cell in r.screen_cells(keyword, claim.layers, roles, loc, r.claim_loc(claim.id, "layers")):
            if kind.target is not None and not kind.target(cell):
                raise r.fail(f"a screen of {kind.target.explain(kind.name, cell)}", loc)
            if cell not in cells:
                cells.append(cell)
    if not cells:
        raise r.fail("a screen needs at least one target", r.claim_loc(claim.id, "targets"))
    single = single_claim(claim, cells[0].text)
    if kind.check is not None:
        kind.check(r, single, cells, [], template_ids)
    check_answers(r, single, template_ids)
    claim._named_cells = _named_cells(r, claim, cells)
    out.claim_targets[claim.id] = cells
    out.claim_chains[claim.id] = []
    out.claim_templates[claim.id] = template_ids


def is_screen(claim: Any) -> bool:
    """Whether ``claim`` is a screen (compiled here rather than by ``claim_checks.compile_claim``)."""
    return getattr(claim, "kind", None) == "screen"
