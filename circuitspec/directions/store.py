"""Save and load a direction or subspace with its provenance: one ``.safetensors`` file each.

Why one safetensors file rather than ``.npz`` + a JSON sidecar: the vectors and their provenance cannot
be separated or mismatched (the provenance is the file header's metadata); loading never unpickles
(``np.load`` of an ``.npz`` is safe only with ``allow_pickle=False``, and the project refuses pickles
elsewhere); and safetensors is already a dependency. The file holds ``vectors`` ``[k, d]`` (a direction:
``k = 1``) plus ``norm`` (a direction's raw mean-difference norm) or ``variance`` / ``ratio`` / ``mean``
(a PCA subspace), all float64, and two metadata strings: the provenance as canonical JSON and a sha256
of the content (provenance and arrays, never a date), so equal content always hashes equally and an
edited file is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from circuitspec.errors import CircuitSpecError

from .geometry import MeanDifference, Subspace

__all__ = [
    "FORMAT",
    "Provenance",
    "Stored",
    "content_hash",
    "load",
    "read_file",
    "save_direction",
    "save_subspace",
    "write_file",
]

FORMAT = "circuitspec.directions/1"


@dataclass(frozen=True)
class Provenance:
    """Where a direction or subspace came from.

    ``model``: the model's identity (e.g. ``bundled:toy_sentiment@final``); ``node``: the node it was read
    at (``resid_post5``, ``L3H1``, ``MLP2``); ``role``: the token role read (``end`` for sentence-final);
    ``pooling``: ``token`` (the role's token) or ``final`` (each prompt's last token); ``groups`` and
    ``n``: the prompt groups (e.g. template ids or tags, first minus second for a mean difference) and
    how many prompts each held; ``layer``: the node's layer; ``seed``: a random direction's seed.
    """

    model: str
    node: str
    kind: Literal["direction", "subspace"]
    method: str  # mean_difference | pca | random
    pooling: Literal["token", "final"]
    groups: tuple[str, ...]
    n: tuple[int, ...]
    role: str | None = None
    layer: int | None = None
    seed: int | None = None
    notes: str = ""

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): the text that is hashed and stored."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> Provenance:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CircuitSpecError(f"its provenance is not JSON ({exc.msg})", file=where) from None
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - names or not {"model", "node", "kind"} <= set(data):
            raise CircuitSpecError(f"its provenance does not have the fields {sorted(names)}", file=where)
        data["groups"] = tuple(data.get("groups") or ())
        data["n"] = tuple(data.get("n") or ())
        return cls(**data)


@dataclass(frozen=True)
class Stored:
    """A loaded (or just saved) file: ``vectors`` ``[k, d]``, the other ``arrays``, provenance, hash."""

    vectors: np.ndarray
    arrays: dict[str, np.ndarray]
    provenance: Provenance
    sha256: str

    @property
    def width(self) -> int:
        return int(self.vectors.shape[1])

    def direction(self) -> MeanDifference:
        """The stored direction (``kind: direction``)."""
        n = self.provenance.n
        counts = (n[0], n[1]) if len(n) == 2 else (0, 0)
        return MeanDifference(self.vectors[0], float(self.arrays["norm"][0]), counts)

    def subspace(self) -> Subspace:
        """The stored subspace (``kind: subspace``), basis ``[d, k]``."""
        a = self.arrays
        return Subspace(self.vectors.T.copy(), a["variance"], a["ratio"], a["mean"])


def content_hash(provenance: Any, arrays: dict[str, np.ndarray], file_format: str = FORMAT) -> str:
    """sha256 over the format, the canonical provenance (its ``to_json()``) and each array's name,
    dtype, shape and bytes (also the rule of ``circuitspec.learned.store``'s files)."""
    digest = hashlib.sha256(file_format.encode())
    digest.update(provenance.to_json().encode())
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name], dtype="<f8")
        digest.update(f"|{name}|{arr.dtype.str}|{arr.shape}|".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def write_file(
    path: str | Path, provenance: Any, arrays: dict[str, np.ndarray], file_format: str = FORMAT
) -> tuple[dict[str, np.ndarray], str]:
    """Write ``arrays`` (as float64) with the provenance, format and content hash in the header; returns
    the arrays as written and the hash."""
    from safetensors.numpy import save_file

    arrays = {k: np.ascontiguousarray(v, dtype="<f8") for k, v in arrays.items()}
    digest = content_hash(provenance, arrays, file_format)
    meta = {"format": file_format, "provenance": provenance.to_json(), "sha256": digest}
    save_file(arrays, str(path), metadata=meta)
    return arrays, digest


def _save(path: str | Path, provenance: Provenance, arrays: dict[str, np.ndarray]) -> Stored:
    arrays, digest = write_file(path, provenance, arrays)
    vectors = arrays.pop("vectors")
    return Stored(vectors, arrays, provenance, digest)


def save_direction(path: str | Path, direction: MeanDifference, provenance: Provenance) -> Stored:
    """Write one direction (its unit vector and raw norm) with ``provenance`` (``kind: direction``)."""
    if provenance.kind != "direction":
        raise CircuitSpecError(f"saving a direction with provenance kind '{provenance.kind}'", file=str(path))
    arrays = {"vectors": np.asarray(direction.unit)[None, :], "norm": np.array([direction.norm])}
    return _save(path, provenance, arrays)


def save_subspace(path: str | Path, subspace: Subspace, provenance: Provenance) -> Stored:
    """Write a subspace (basis rows, variances, mean) with ``provenance`` (``kind: subspace``)."""
    if provenance.kind != "subspace":
        raise CircuitSpecError(f"saving a subspace with provenance kind '{provenance.kind}'", file=str(path))
    arrays = {
        "vectors": subspace.basis.T,
        "variance": subspace.variance,
        "ratio": subspace.ratio,
        "mean": subspace.mean,
    }
    return _save(path, provenance, arrays)


def read_file(path: Path, what: str = "direction") -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """The header metadata and arrays of a safetensors file, or a one-line error (``what``: the kind of
    file, for "no such … file")."""
    from safetensors import safe_open

    where = str(path)
    if not path.is_file():
        raise CircuitSpecError(f"no such {what} file", file=where)
    try:
        with safe_open(where, framework="np") as handle:
            meta: dict[str, Any] = handle.metadata() or {}
            arrays = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error type for a malformed header
        raise CircuitSpecError(f"not a safetensors file ({type(exc).__name__})", file=where) from None
    return meta, arrays


def load(
    path: str | Path, width: int | None = None, model: str | None = None, what: str = "this node"
) -> Stored:
    """Read a file written by :func:`save_direction` / :func:`save_subspace`.

    ``width``: the width the node has in the model it will be used on; a file of another width is a
    one-line error naming both (``what`` says which node of which model). ``model``: refuse a file
    recorded for another model (leave None to use a direction across models, e.g. through a map).
    """
    path = Path(path)
    where = str(path)
    meta, arrays = read_file(path)
    if meta.get("format") != FORMAT or "provenance" not in meta or "vectors" not in arrays:
        raise CircuitSpecError(f"not a circuitspec direction file (expected format {FORMAT})", file=where)
    provenance = Provenance.from_json(meta["provenance"], where)
    if content_hash(provenance, arrays) != meta.get("sha256"):
        raise CircuitSpecError(
            "its content does not match its recorded sha256 (edited or corrupted)", file=where
        )
    vectors = arrays.pop("vectors")
    if vectors.ndim != 2:
        raise CircuitSpecError(f"its vectors have shape {vectors.shape}, expected [k, width]", file=where)
    if width is not None and vectors.shape[1] != width:
        raise CircuitSpecError(
            f"this {provenance.kind} of {provenance.node} is {vectors.shape[1]} wide "
            f"but {what} is {width} wide",
            file=where,
        )
    if model is not None and provenance.model != model:
        raise CircuitSpecError(
            f"this {provenance.kind} was read from model '{provenance.model}', not '{model}'", file=where
        )
    return Stored(vectors, arrays, provenance, str(meta["sha256"]))
