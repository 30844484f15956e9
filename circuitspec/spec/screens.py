"""Screens: one claim over every head / MLP / residual site of a layer range (no torch).

A ``screen`` claim measures a kind (``of``: attribution, attention, ablation, activation_patching)
on every cell of a grid — ``targets: all_heads`` is layer × head, ``all_resid_pre`` with
``positions: all_roles`` is layer × position — and judges the grid at once with a screen
expectation::

    only [L0H0, L1H1] > 0.2                the cells whose interval clears 0.2 are exactly these
    only [circuit] recovered >= 0.9        (names, groups of ``nodes``; optional statistic, default mean)
    none outside [L0H0, L1H1] > 0.05       no other cell's interval reaches above 0.05
    none outside circuit < -0.05           a group name alone works too

Each cell is one single-target claim of kind ``of`` (``circuitspec.claims.screens.single_claim``
builds it, so a screen equals its single-target claims cell by cell); the cells' intervals are
corrected as a family (``circuitspec.stats.screens``). Cells are expanded against the model's shape by
``circuitspec.graph.resolver.Resolver.screen_cells``, the one place node names resolve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import PrivateAttr, field_validator, model_validator

from .claim_base import _ClaimBase
from .expectations import _NUMBER, STATISTICS, Expectation, ExpectationSyntaxError
from .nodes import SCREEN_TARGETS, NodeKind, NodeRef, NodeSyntaxError, parse_layer_range

__all__ = [
    "FIELDS_OF",
    "SCREEN_EXPECTATION_GRAMMAR",
    "SCREEN_OF",
    "SCREEN_OPERATORS",
    "SCREEN_STATISTICS",
    "ScreenClaim",
    "ScreenExpectation",
    "cell_position",
    "is_screen_expectation",
    "parse_screen_expectation",
]

SCREEN_OF = ("attribution", "attention", "ablation", "activation_patching")
SCREEN_OPERATORS = ("<=", ">=", "<", ">")
SCREEN_EXPECTATION_GRAMMAR = (
    "'only [<cells>] [<statistic>] <op> <number>' | 'none outside [<cells>] [<statistic>] <op> <number>'; "
    "cells: node names or `nodes` groups, ',' between them ([<cells>] may be one group name without "
    f"brackets); op one of {' '.join(SCREEN_OPERATORS)}; statistic (default mean) one of "
    "mean, median, success_rate, recovered"
)
SCREEN_STATISTICS = ("mean", "median", "success_rate", "recovered")
_SCREEN = re.compile(
    r"^(?P<which>only|none\s+outside)\s*(?:\[(?P<names>[^\]]*)\]|(?P<group>[A-Za-z_][A-Za-z0-9_\-\.]*))"
    rf"\s*(?:(?P<stat>[a-z_]+)\s*)?(?P<op><=|>=|<|>)\s*(?P<num>{_NUMBER})$"
)
# Fields that belong to one ``of`` only (a screen of another kind refuses them).
FIELDS_OF = {
    "source": ("attention",),
    "destination": ("attention",),
    "method": ("ablation",),
    "alpha": ("ablation",),
    "direction": ("activation_patching",),
    "versus": ("attribution",),
}


@dataclass(frozen=True)
class ScreenExpectation(Expectation):
    """A screen expectation: per cell ``<statistic> <op> <threshold>`` (a compare), plus which cells
    must clear it (``which`` = ``only``: exactly ``names``; ``none_outside``: none but ``names``)."""

    which: Literal["only", "none_outside"] = "only"
    names: tuple[str, ...] = ()

    def cell_expectation(self) -> Expectation:
        """The compare expectation every cell is judged by."""
        text = f"{self.statistic} {self.op} {self.threshold:g}"
        return Expectation(text, "compare", self.statistic, op=self.op, threshold=self.threshold)


def is_screen_expectation(text: Any) -> bool:
    """Whether ``text`` is meant as a screen expectation (starts with ``only`` / ``none outside``)."""
    return isinstance(text, str) and re.match(r"^\s*(only|none\s+outside)\b", text) is not None


def parse_screen_expectation(text: str) -> ScreenExpectation:
    """Parse a screen expectation; raises :class:`ExpectationSyntaxError` naming the grammar."""
    if not isinstance(text, str):
        raise ExpectationSyntaxError(f"an expectation must be a string, got {type(text).__name__}")
    m = _SCREEN.match(" ".join(text.strip().split()))
    if not m:
        raise ExpectationSyntaxError(
            f"cannot parse screen expectation '{text}' (valid: {SCREEN_EXPECTATION_GRAMMAR})"
        )
    stat = m["stat"] or "mean"
    if stat not in SCREEN_STATISTICS:
        valid = ", ".join(s for s in STATISTICS if s in SCREEN_STATISTICS)
        raise ExpectationSyntaxError(f"unknown cell statistic '{stat}' in '{text}' (valid: {valid})")
    raw = [m["group"]] if m["group"] else [n.strip() for n in (m["names"] or "").split(",")]
    names = tuple(n for n in raw if n)
    if len(names) != len(raw) and m["names"] and m["names"].strip():
        raise ExpectationSyntaxError(f"an empty name between commas in '{text}'")
    which: Literal["only", "none_outside"] = "only" if m["which"] == "only" else "none_outside"
    if which == "only" and not names:
        raise ExpectationSyntaxError(f"'{text}' names no cell; 'none outside []' says that no cell clears it")
    return ScreenExpectation(
        text, "compare", stat, op=m["op"], threshold=float(m["num"]), which=which, names=names
    )


class ScreenClaim(_ClaimBase):
    """One claim over every cell of a grid (layer × head, layer × MLP, layer × position).

    ``targets`` are screen targets (all_heads, all_mlps, all_resid_pre, all_resid_mid, all_resid_post),
    restricted to ``layers`` and, with ``positions``, pinned to every listed role; each cell is measured
    as the single-target claim of kind ``of`` would measure it, and the grid is judged by a screen
    expectation with the cells' intervals corrected as a family (``cell_family``).
    """

    kind: Literal["screen"]
    """screen: a kind measured on every head / MLP / residual site (and role) of a grid."""
    of: Literal["attribution", "attention", "ablation", "activation_patching"]
    """The kind measured in each cell: attribution, attention, ablation or activation_patching."""
    layers: str | int | None = None
    """The layers screened: a layer, a range '0-11', or several joined by ',' (default: every layer)."""
    positions: Literal["all_roles"] | list[str] | None = None
    """Pin every cell to each of these roles (all_roles: every role of the claim's templates, end
    included): a layer × position grid. Default: unpinned (every position, as the single claim does).
    """
    source: str = "end"
    """attention screens: the role attended from (default end)."""
    destination: str | None = None
    """attention screens: the role attended to (required there)."""
    method: Literal["zero", "mean", "resample", "soft"] = "mean"
    """ablation screens: zero, mean, resample or soft (× alpha)."""
    alpha: float | None = None
    """ablation screens with method soft: the factor."""
    direction: Literal["denoising", "noising"] = "denoising"
    """activation_patching screens: denoising (clean into corrupted) or noising."""
    versus: list[str] | None = None
    """attribution screens: template ids or tags of a second prompt group; each cell is then the
    difference of mean attributions, this claim's `data` prompts minus these (unpaired).
    """
    cell_family: Literal["holm", "bonferroni"] = "holm"
    """How the cells' intervals are corrected as a family (within the claim's own level)."""
    # set when the claim is compiled: the expectation's names as cell labels, `versus` as template ids
    _named_cells: tuple[str, ...] = PrivateAttr(default=())
    _versus_templates: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("expect")
    @classmethod
    def _expectation(cls, value: str) -> str:  # replaces the base class' validator of the same name
        parse_screen_expectation(value)
        return value

    @field_validator("targets")
    @classmethod
    def _screen_targets(cls, value: list[str]) -> list[str]:
        for target in value:
            if target not in SCREEN_TARGETS:
                raise ValueError(f"'{target}' is not a screen target (valid: {', '.join(SCREEN_TARGETS)})")
        return value

    @field_validator("versus", mode="before")
    @classmethod
    def _versus_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("layers")
    @classmethod
    def _layers(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            try:
                parse_layer_range(value)
            except NodeSyntaxError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _fields_fit_of(self) -> ScreenClaim:
        if self.each:
            raise ValueError("a screen is already one claim per cell: leave out 'each'")
        if self.random_baseline is not None:
            raise ValueError("a screen has no random baseline (its cells are judged against each other)")
        for name, kinds in FIELDS_OF.items():
            if name in self.model_fields_set and self.of not in kinds:
                raise ValueError(f"'{name}' is for {' / '.join(kinds)} screens, not '{self.of}'")
        statistic = self.expectation.statistic
        if statistic == "recovered" and self.of not in ("ablation", "activation_patching"):
            raise ValueError(f"'{self.expect}': recovered needs clean and corrupted runs, not {self.of}")
        if self.versus and statistic != "mean":
            raise ValueError(f"'{self.expect}': a difference of groups is judged on its mean")
        if self.of == "attention" and self.destination is None:
            raise ValueError("an attention screen needs 'destination' (the role attended to)")
        if self.of == "ablation" and self.method == "soft" and self.alpha is None:
            raise ValueError("a soft ablation needs 'alpha' (activation × alpha)")
        return self

    @property
    def expectation(self) -> ScreenExpectation:
        return parse_screen_expectation(self.expect)

    @property
    def named_cells(self) -> tuple[str, ...]:
        """The expectation's names as cell labels (set when the claim is compiled)."""
        return self._named_cells

    @property
    def versus_templates(self) -> tuple[str, ...]:
        """``versus`` resolved to template ids (set when the claim is compiled; empty without it)."""
        return self._versus_templates

    def layer_list(self, n_layers: int) -> list[int]:
        """The screened layers (every layer when ``layers`` is not given)."""
        return list(range(n_layers)) if self.layers is None else parse_layer_range(self.layers)


def cell_position(cell: NodeRef) -> tuple[str, str]:
    """Where a cell sits in its screen's grid: row ``L<layer>``, column the head / site and role."""
    if cell.kind is NodeKind.HEAD:
        column = f"H{cell.head}"
    elif cell.kind is NodeKind.MLP:
        column = "MLP"
    else:
        column = cell.kind.value
    if cell.role is not None:
        column = cell.role if cell.kind not in (NodeKind.HEAD, NodeKind.MLP) else f"{column}@{cell.role}"
    return f"L{cell.layer}", column
