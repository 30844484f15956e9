"""Directions, subspaces and maps between activation spaces, in numpy / scipy (no torch).

Inputs are activations ``[n, d]`` (one row per prompt) collected at one node; outputs are plain arrays:

- :func:`mean_difference`: ``mean(a) − mean(b)`` unit-normalised, its raw norm kept (the emotion paper's
  ``e = h_emotion − h_neutral``, token-level or sentence-final depending on where ``a``/``b`` were read).
- :func:`pca_subspace`: the top-``k`` principal axes of centred data. scikit-learn is not a dependency,
  so this is ``numpy.linalg.svd`` of the centred matrix (what ``sklearn.decomposition.PCA`` does with
  its full solver), with each axis' sign fixed so results are deterministic.
- :func:`principal_angles` (``scipy.linalg.subspace_angles``) and :func:`subspace_overlap`.
- :func:`fit_least_squares` (``numpy.linalg.lstsq``) and :func:`fit_procrustes`
  (``scipy.linalg.orthogonal_procrustes``): maps ``x ↦ x W + b`` from one stream to another, fitted on
  neutral prompts; :func:`evaluate_map` scores one on held-out prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg

from circuitspec.errors import CircuitSpecError

__all__ = [
    "LinearMap",
    "MapEvaluation",
    "MeanDifference",
    "Subspace",
    "cosine",
    "evaluate_map",
    "fit_least_squares",
    "fit_procrustes",
    "mean_difference",
    "orthonormal_basis",
    "pca_subspace",
    "principal_angles",
    "subspace_overlap",
]


def _rows(x: np.ndarray, what: str, min_rows: int = 1) -> np.ndarray:
    """``x`` as a finite float64 ``[n, d]`` matrix, or a one-line error naming ``what`` is wrong."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise CircuitSpecError(f"{what} must be a matrix [rows, width], got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise CircuitSpecError(f"{what} needs at least {min_rows} rows, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise CircuitSpecError(f"{what} holds NaN or infinite values")
    return arr


@dataclass(frozen=True)
class MeanDifference:
    """A unit direction ``unit`` ``[d]`` and the norm of the raw difference of means it came from."""

    unit: np.ndarray
    norm: float
    n: tuple[int, int]  # rows in each group

    @property
    def raw(self) -> np.ndarray:
        """The difference of means itself (``unit × norm``)."""
        return self.unit * self.norm


def mean_difference(a: np.ndarray, b: np.ndarray) -> MeanDifference:
    """``mean(a) − mean(b)`` over rows, unit-normalised (a zero difference has no direction: an error)."""
    a, b = _rows(a, "group a"), _rows(b, "group b")
    if a.shape[1] != b.shape[1]:
        raise CircuitSpecError(f"the two groups have different widths ({a.shape[1]} and {b.shape[1]})")
    raw = a.mean(axis=0) - b.mean(axis=0)
    norm = float(np.linalg.norm(raw))
    if norm == 0.0:
        raise CircuitSpecError("the two groups have equal means: their difference has no direction")
    return MeanDifference(raw / norm, norm, (a.shape[0], b.shape[0]))


@dataclass(frozen=True)
class Subspace:
    """``basis`` ``[d, k]`` orthonormal columns, most variance first; ``variance`` ``[k]`` along each
    (sample variance, ``n − 1`` denominator); ``ratio`` ``[k]`` its share of the total; ``mean`` ``[d]``."""

    basis: np.ndarray
    variance: np.ndarray
    ratio: np.ndarray
    mean: np.ndarray

    @property
    def k(self) -> int:
        return int(self.basis.shape[1])


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    """Each column flipped so its largest-magnitude entry is positive (SVD signs are arbitrary)."""
    idx = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[idx, np.arange(vectors.shape[1])])
    return vectors * np.where(signs == 0, 1.0, signs)


def pca_subspace(x: np.ndarray, k: int) -> Subspace:
    """The top-``k`` principal axes of ``x`` ``[n, d]`` (``1 ≤ k ≤ min(n − 1, d)``)."""
    x = _rows(x, "the data", min_rows=2)
    n, d = x.shape
    if not 1 <= k <= min(n - 1, d):
        raise CircuitSpecError(
            f"k = {k} principal axes of {n} rows of width {d} (valid: 1 … {min(n - 1, d)})"
        )
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    variance = s**2 / (n - 1)
    total = float(variance.sum())
    ratio = variance[:k] / total if total > 0 else np.zeros(k)
    return Subspace(_fix_signs(vt[:k].T), variance[:k], ratio, mean)


def orthonormal_basis(vectors: np.ndarray | Subspace) -> np.ndarray:
    """An orthonormal basis ``[d, k]`` of the span of ``vectors`` (a ``[d]`` direction, ``[d, k]`` columns,
    or a :class:`Subspace`); spanning sets that are not orthonormal are orthonormalised (QR)."""
    arr = vectors.basis if isinstance(vectors, Subspace) else np.asarray(vectors, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise CircuitSpecError(f"a subspace is [width, k] finite columns, got shape {arr.shape}")
    q, r = np.linalg.qr(arr)
    if np.abs(np.diag(r)).min(initial=np.inf) <= 1e-12 * max(1.0, float(np.abs(arr).max())):
        raise CircuitSpecError(f"the {arr.shape[1]} vectors spanning a subspace are linearly dependent")
    return q


def principal_angles(a: np.ndarray | Subspace, b: np.ndarray | Subspace) -> np.ndarray:
    """The ``min(k_a, k_b)`` principal angles (radians, smallest first) between two subspaces of one space."""
    qa, qb = orthonormal_basis(a), orthonormal_basis(b)
    if qa.shape[0] != qb.shape[0]:
        raise CircuitSpecError(
            f"subspaces of different spaces (widths {qa.shape[0]} and {qb.shape[0]}): map one into the "
            "other first (fit_least_squares / fit_procrustes)"
        )
    return np.sort(scipy.linalg.subspace_angles(qa, qb))


def subspace_overlap(a: np.ndarray | Subspace, b: np.ndarray | Subspace) -> float:
    """Overlap in [0, 1]: the mean of ``cos² θ_i`` over the principal angles ``θ_i`` (1: one subspace
    contains the other; 0: orthogonal). Equals ``‖Q_aᵀ Q_b‖²_F / min(k_a, k_b)`` for orthonormal bases."""
    return float(np.mean(np.cos(principal_angles(a, b)) ** 2))


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    u, v = np.asarray(u, dtype=np.float64).ravel(), np.asarray(v, dtype=np.float64).ravel()
    denom = float(np.linalg.norm(u) * np.linalg.norm(v))
    return float(u @ v) / denom if denom > 0 else 0.0


@dataclass(frozen=True)
class LinearMap:
    """``x ↦ x @ weight + bias`` from a ``d_in``-wide space to a ``d_out``-wide one."""

    weight: np.ndarray  # [d_in, d_out]
    bias: np.ndarray  # [d_out]
    kind: Literal["least_squares", "procrustes"]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.weight + self.bias

    def direction(self, e: np.ndarray) -> np.ndarray:
        """A direction (a difference of two points) mapped: the bias cancels, ``e @ weight``."""
        return np.asarray(e, dtype=np.float64) @ self.weight

    def subspace(self, basis: np.ndarray | Subspace) -> np.ndarray:
        """An orthonormal basis ``[d_out, k]`` of the image of a subspace ``[d_in, k]``."""
        return orthonormal_basis(self.weight.T @ orthonormal_basis(basis))


def _pair(x: np.ndarray, y: np.ndarray, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = _rows(x, "the source activations", min_rows), _rows(y, "the target activations", min_rows)
    if x.shape[0] != y.shape[0]:
        raise CircuitSpecError(
            f"source and target have different numbers of prompts ({x.shape[0]}, {y.shape[0]})"
        )
    return x, y


def fit_least_squares(x: np.ndarray, y: np.ndarray, bias: bool = True) -> LinearMap:
    """The least-squares map ``y ≈ x W + b`` (``numpy.linalg.lstsq``; minimum-norm ``W`` when ``x`` has
    fewer independent rows than columns)."""
    x, y = _pair(x, y, min_rows=1)
    design = np.hstack([x, np.ones((x.shape[0], 1))]) if bias else x
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    weight = solution[: x.shape[1]]
    offset = solution[x.shape[1]] if bias else np.zeros(y.shape[1])
    return LinearMap(weight, offset, "least_squares")


def fit_procrustes(x: np.ndarray, y: np.ndarray, center: bool = True) -> LinearMap:
    """The rotation-only map ``y ≈ (x − x̄) R + ȳ`` minimising ``‖(x − x̄) R − (y − ȳ)‖_F`` over ``R`` with
    orthonormal columns (``d_in ≥ d_out``) or rows (``d_in < d_out``); without ``center``, ``y ≈ x R``.

    Equal widths: ``scipy.linalg.orthogonal_procrustes``. Different widths (two models): that function
    requires equal shapes, so ``R = U Vᵀ`` from the thin SVD of ``(x − x̄)ᵀ (y − ȳ)``: the square solution
    after zero-padding the narrower side (the usual convention). For ``d_in < d_out`` this is the exact
    optimum; for ``d_in > d_out`` it maximises ``⟨(x − x̄) R, y − ȳ⟩`` (the least-squares optimum over
    tall ``R`` has no closed form), exact when ``(x − x̄)ᵀ(x − x̄) ∝ I``: prefer :func:`fit_least_squares`
    there, or reduce the wider side by PCA first."""
    x, y = _pair(x, y, min_rows=2 if center else 1)
    mx = x.mean(axis=0) if center else np.zeros(x.shape[1])
    my = y.mean(axis=0) if center else np.zeros(y.shape[1])
    xc, yc = x - mx, y - my
    if x.shape[1] == y.shape[1]:
        rotation, _ = scipy.linalg.orthogonal_procrustes(xc, yc)
    else:
        u, _, vt = np.linalg.svd(xc.T @ yc, full_matrices=False)
        rotation = u @ vt
    return LinearMap(rotation, my - mx @ rotation, "procrustes")


@dataclass(frozen=True)
class MapEvaluation:
    """A map scored on held-out prompts.

    ``r2``: ``1 − Σ‖y_i − ŷ_i‖² / Σ‖y_i − ȳ‖²`` pooled over every coordinate (ȳ: the held-out mean);
    ``cosine``: per held-out prompt, the cosine of the mapped and the true activation; ``direction_cosine``:
    per direction given, the cosine of the mapped source direction and the target's own (empty if none).
    """

    r2: float
    cosine: np.ndarray
    direction_cosine: np.ndarray

    @property
    def mean_cosine(self) -> float:
        return float(self.cosine.mean())


def evaluate_map(
    fitted: LinearMap,
    x: np.ndarray,
    y: np.ndarray,
    directions: tuple[np.ndarray, np.ndarray] | None = None,
) -> MapEvaluation:
    """Score ``fitted`` on held-out activations (``x`` source, ``y`` target, one row per prompt), and on
    pairs of directions ``(source [k, d_in], target [k, d_out])`` when given."""
    x, y = _pair(x, y, min_rows=1)
    if x.shape[1] != fitted.weight.shape[0] or y.shape[1] != fitted.weight.shape[1]:
        raise CircuitSpecError(
            f"the map is {fitted.weight.shape[0]} → {fitted.weight.shape[1]} wide, the held-out data "
            f"{x.shape[1]} → {y.shape[1]}"
        )
    predicted = fitted(x)
    total = float(((y - y.mean(axis=0)) ** 2).sum())
    r2 = 1.0 - float(((y - predicted) ** 2).sum()) / total if total > 0 else float("nan")
    cosines = np.array([cosine(p, t) for p, t in zip(predicted, y, strict=True)])
    pairs = np.zeros(0)
    if directions is not None:
        src, tgt = np.atleast_2d(directions[0]), np.atleast_2d(directions[1])
        pairs = np.array([cosine(fitted.direction(s), t) for s, t in zip(src, tgt, strict=True)])
    return MapEvaluation(r2, cosines, pairs)
