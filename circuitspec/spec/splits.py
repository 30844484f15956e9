"""Held-out prompts: which rows are ``explore`` and which ``test``, and which split a claim runs on.

``data.split: {test_fraction: 0.5, seed: 0}`` puts a row in ``test`` when a seeded SHA-256 of its
slot values (canonical JSON) falls below ``test_fraction``. A row's split therefore depends on that
row and the seed only: adding, removing or reordering other rows never moves it across, so a row used
to set thresholds can never become a held-out row later.

The split a verdict uses, most specific last: every row (``all``); the split other than the
hypothesis' ``thresholds_set_on``; the claim's ``split:``; ``verify --split`` (the whole run).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from circuitspec.errors import CircuitSpecError

from .claim_base import SPLITS
from .schema import DataSpec, Hypothesis, SplitSpec

__all__ = [
    "check_run_split",
    "check_split_fields",
    "claim_split",
    "default_split",
    "row_split",
    "select_rows",
    "split_sizes",
    "split_summary",
]

ALL = "all"


def row_split(row: Mapping[str, str], split: SplitSpec) -> str:
    """``test`` or ``explore`` for one row: a seeded hash of its slot values against the fraction."""
    text = json.dumps(dict(row), sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(f"{split.seed}\0{text}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2.0**64 < split.test_fraction else "explore"


def select_rows(rows: Sequence[Any], data: DataSpec, split: str) -> list[Any]:
    """The rows of ``split`` (``all``: every row); a one-line error when the split is empty."""
    if split == ALL:
        return list(rows)
    if data.split is None:
        raise CircuitSpecError(f"split '{split}' needs 'data.split' in the hypothesis (rows are not split)")
    chosen = [row for row in rows if row_split(row, data.split) == split]
    if not chosen:
        raise CircuitSpecError(
            f"split '{split}' has no rows (data.split: test_fraction {data.split.test_fraction}, "
            f"seed {data.split.seed}, {len(rows)} rows in all)"
        )
    return chosen


def split_sizes(rows: Sequence[Any], data: DataSpec) -> dict[str, int]:
    """Rows per split (``all`` alone when the data are not split)."""
    sizes = {ALL: len(rows)}
    if data.split is not None:
        for name in SPLITS:
            sizes[name] = sum(row_split(row, data.split) == name for row in rows)
    return sizes


def split_summary(spec: Hypothesis, rows: Sequence[Any], run_split: str | None = None) -> dict[str, Any]:
    """What a report states about splits: the run's split, where thresholds were set, rows per split."""
    chosen_by = "--split" if run_split else ("thresholds_set_on" if spec.thresholds_set_on else "default")
    summary: dict[str, Any] = {
        "used": run_split or default_split(spec),
        "chosen_by": chosen_by,
        "thresholds_set_on": spec.thresholds_set_on,
        "rows": split_sizes(rows, spec.data),
    }
    if spec.data.split is not None:
        summary.update(test_fraction=spec.data.split.test_fraction, seed=spec.data.split.seed)
    claims = {claim.id: claim.split for claim in spec.claims if claim.split and not run_split}
    if claims:
        summary["claims"] = claims  # claims that chose their own split
    return summary


def default_split(spec: Hypothesis) -> str:
    """The split verdicts use unless a claim or the run says otherwise: the one thresholds were
    not set on, else every row."""
    if spec.thresholds_set_on is None:
        return ALL
    return next(name for name in SPLITS if name != spec.thresholds_set_on)


def claim_split(claim: Any, spec: Hypothesis, run_split: str | None = None) -> str:
    """The split one claim's verdict uses (see the module docstring for the order)."""
    return run_split or getattr(claim, "split", None) or default_split(spec)


def check_run_split(
    spec: Hypothesis, run_split: str | None, rows: Sequence[Any] = (), claims: Sequence[Any] = ()
) -> None:
    """Before any model loads: ``verify --split`` names a known split of split rows, and every split
    the ``claims`` use has rows (an empty split is bad input, not a claim that cannot be measured)."""
    if run_split is not None and run_split != ALL:
        if run_split not in SPLITS:
            raise CircuitSpecError(f"unknown split '{run_split}' (valid: {', '.join([*SPLITS, ALL])})")
        if spec.data.split is None:
            raise CircuitSpecError(
                f"--split {run_split} needs 'data.split' in the hypothesis (its rows are not split into "
                f"{' / '.join(SPLITS)})"
            )
    if rows:
        for name in dict.fromkeys(claim_split(claim, spec, run_split) for claim in claims):
            select_rows(rows, spec.data, name)


def check_split_fields(loaded: Any) -> None:
    """``thresholds_set_on`` and a claim's ``split: explore|test`` need ``data.split`` (located errors)."""
    spec: Hypothesis = loaded.spec
    if spec.data.split is not None:
        return
    if spec.thresholds_set_on is not None:
        raise loaded.error(
            "'thresholds_set_on' needs 'data.split' (e.g. split: {test_fraction: 0.5, seed: 0})",
            ("thresholds_set_on",),
        )
    for index, claim in enumerate(spec.claims):
        if claim.split in SPLITS:
            raise loaded.error(
                f"split '{claim.split}' needs 'data.split' (e.g. split: {{test_fraction: 0.5, seed: 0}})",
                ("claims", index, "split"),
            )
