"""``require: [claim id, ...]``: a claim is judged only where the claims it requires pass.

The loader resolves every ``require`` entry to expanded claim ids (a claim written with ``each: true``
stands for all of its expansions ``<id>[<target>]``) and refuses unknown ids and cycles, pointing at
the YAML line. After the verdicts, :func:`circuitspec.stats.gates.apply_requirements` turns a claim
whose requirement did not pass into *inconclusive*.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import Any

from circuitspec.errors import CircuitSpecError

__all__ = ["requirement_order", "resolve_requirements"]

Locate = Callable[[str, Sequence[int | str]], CircuitSpecError]


def resolve_requirements(
    file_claims: Sequence[Any], claims: list[Any], sources: dict[str, tuple[int, int | None]], error: Locate
) -> list[Any]:
    """``claims`` (expanded) with each ``require`` rewritten to expanded ids; unknown ids and cycles
    raise ``error(message, loc)`` at the offending ``require`` entry."""
    expansions: dict[str, list[str]] = {}
    for claim in claims:
        index, _ = sources[claim.id]
        expansions.setdefault(file_claims[index].id, []).append(claim.id)
    known = {claim.id for claim in claims}
    resolved: list[Any] = []
    for claim in claims:
        index, _ = sources[claim.id]
        required: list[str] = []
        for k, name in enumerate(claim.require):
            loc = ("claims", index, "require", k)
            ids = [name] if name in known else expansions.get(name)
            if ids is None:
                valid = ", ".join(c.id for c in file_claims)
                raise error(f"require names unknown claim '{name}' (valid: {valid})", loc)
            if claim.id in ids or file_claims[index].id == name:
                raise error(f"claim '{file_claims[index].id}' requires itself", loc)
            required += [i for i in ids if i not in required]
        resolved.append(claim.model_copy(update={"require": required}) if claim.require else claim)
    _refuse_cycles(resolved, sources, error)
    return resolved


def _refuse_cycles(claims: list[Any], sources: dict[str, tuple[int, int | None]], error: Locate) -> None:
    try:
        requirement_order(claims)
    except CycleError as exc:
        cycle = list(exc.args[1])
        index, _ = sources[cycle[0]]
        raise error(f"require forms a cycle: {' -> '.join(cycle)}", ("claims", index, "require")) from None


def requirement_order(claims: Sequence[Any]) -> list[str]:
    """Claim ids with every claim after the claims it requires (raises ``graphlib.CycleError``)."""
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for claim in claims:
        sorter.add(claim.id, *getattr(claim, "require", []))
    return list(sorter.static_order())
