"""Directions, subspaces and maps (circuitspec.directions) against closed forms on constructed data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from circuitspec.directions.geometry import (
    cosine,
    evaluate_map,
    fit_least_squares,
    fit_procrustes,
    mean_difference,
    orthonormal_basis,
    pca_subspace,
    principal_angles,
    subspace_overlap,
)
from circuitspec.directions.store import Provenance, load, save_direction, save_subspace
from circuitspec.errors import CircuitSpecError


def _rotation(d: int, seed: int) -> np.ndarray:
    return scipy.stats.ortho_group.rvs(d, random_state=seed)


# ------------------------------------------------------------------ mean difference and PCA


def test_mean_difference_of_symmetric_groups_is_the_difference_of_centres():
    rng = np.random.default_rng(0)
    ca, cb = rng.normal(size=6), rng.normal(size=6)
    spread = rng.normal(size=(5, 6))
    a = np.vstack([ca + spread, ca - spread])  # mean exactly ca
    b = np.vstack([cb + 2 * spread[:3], cb - 2 * spread[:3]])  # mean exactly cb
    md = mean_difference(a, b)
    np.testing.assert_allclose(md.norm, np.linalg.norm(ca - cb), rtol=1e-12)
    np.testing.assert_allclose(md.unit, (ca - cb) / np.linalg.norm(ca - cb), atol=1e-12)
    np.testing.assert_allclose(md.raw, ca - cb, atol=1e-12)
    assert md.n == (10, 6)


def test_mean_difference_refuses_equal_means_and_bad_shapes():
    x = np.ones((3, 4))
    with pytest.raises(CircuitSpecError, match="equal means"):
        mean_difference(x, x)
    with pytest.raises(CircuitSpecError, match="different widths"):
        mean_difference(x, np.ones((3, 5)))
    with pytest.raises(CircuitSpecError, match="NaN"):
        mean_difference(x * np.nan, x)


def test_pca_recovers_known_principal_axes_and_variances():
    d, n, sigmas = 7, 40, np.array([5.0, 3.0, 2.0, 0.5])
    rng = np.random.default_rng(1)
    # scores with orthogonal, centred columns of equal norm: the covariance is exactly Q diag(σ²) Qᵀ
    raw = np.hstack([np.ones((n, 1)), rng.normal(size=(n, 4))])
    u = np.linalg.qr(raw)[0][:, 1:]  # orthonormal and orthogonal to the ones vector
    axes = _rotation(d, 2)[:, :4]
    x = (u * np.sqrt(n - 1)) @ np.diag(sigmas) @ axes.T + rng.normal(size=d)
    sub = pca_subspace(x, k=3)
    np.testing.assert_allclose(sub.variance, sigmas[:3] ** 2, rtol=1e-10)
    np.testing.assert_allclose(sub.ratio, sigmas[:3] ** 2 / (sigmas**2).sum(), rtol=1e-10)
    np.testing.assert_allclose(np.abs(sub.basis.T @ axes[:, :3]), np.eye(3), atol=1e-10)
    np.testing.assert_allclose(sub.basis.T @ sub.basis, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(sub.mean, x.mean(axis=0), atol=1e-12)
    # signs are fixed: each axis' largest entry is positive, so a rerun gives the same basis
    assert (sub.basis[np.abs(sub.basis).argmax(axis=0), range(3)] > 0).all()
    with pytest.raises(CircuitSpecError, match="valid: 1"):
        pca_subspace(x, k=0)


# ------------------------------------------------------------------ principal angles and overlap


def test_principal_angles_of_constructed_subspaces():
    d, angles = 9, np.array([0.2, 0.7, 1.3])
    q = _rotation(d, 3)
    e = q.T  # rows: an orthonormal frame of R^d
    a = e[:3].T
    b = (np.cos(angles)[:, None] * e[:3] + np.sin(angles)[:, None] * e[3:6]).T
    b_mixed = b @ np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [1.0, 0.0, 1.0]])  # same span, not orthonormal
    np.testing.assert_allclose(principal_angles(a, b_mixed), angles, atol=1e-10)
    np.testing.assert_allclose(subspace_overlap(a, b_mixed), np.mean(np.cos(angles) ** 2), atol=1e-12)
    # the overlap equals ‖Q_aᵀ Q_b‖²_F / k for orthonormal bases
    qa, qb = orthonormal_basis(a), orthonormal_basis(b_mixed)
    np.testing.assert_allclose(subspace_overlap(a, b_mixed), np.sum((qa.T @ qb) ** 2) / 3, atol=1e-12)
    assert subspace_overlap(a, a) == pytest.approx(1.0)
    assert subspace_overlap(e[:2].T, e[2:5].T) == pytest.approx(0.0, abs=1e-12)
    # a line inside a plane: one angle, zero; a line at θ to a plane: one angle, θ
    assert principal_angles(e[0], a) == pytest.approx([0.0], abs=1e-7)
    np.testing.assert_allclose(principal_angles(b[:, 2], a[:, [0, 2]]), [angles[2]], atol=1e-10)


def test_principal_angles_refuse_different_spaces_and_dependent_spans():
    with pytest.raises(CircuitSpecError, match="different spaces"):
        principal_angles(np.eye(4)[:, :2], np.eye(5)[:, :2])
    with pytest.raises(CircuitSpecError, match="linearly dependent"):
        principal_angles(np.ones((4, 2)), np.eye(4)[:, :2])


# ------------------------------------------------------------------ maps between two spaces


def test_procrustes_recovers_a_known_rotation_exactly_and_within_the_noise_bound():
    n, d = 200, 8
    rng = np.random.default_rng(4)
    x, rotation, shift = rng.normal(size=(n, d)) + 3.0, _rotation(d, 5), rng.normal(size=d)
    exact = fit_procrustes(x, x @ rotation + shift)
    np.testing.assert_allclose(exact.weight, rotation, atol=1e-10)
    np.testing.assert_allclose(exact(x[:5]), x[:5] @ rotation + shift, atol=1e-10)
    # with noise E: the polar factor of M = XcᵀYc moves by at most 2‖ΔM‖_F / (σ_min(M) + σ_min(M + ΔM))
    # (R.-C. Li, 1995), where ΔM = Xcᵀ(E − Ē) and M = XcᵀXc R, so σ_min(M) = σ_min(XcᵀXc)
    noise = 0.05 * rng.normal(size=(n, d))
    noisy = fit_procrustes(x, x @ rotation + shift + noise)
    xc, ec = x - x.mean(0), noise - noise.mean(0)
    m = xc.T @ xc @ rotation
    delta = xc.T @ ec
    bound = 2 * np.linalg.norm(delta) / (np.linalg.svd(m)[1][-1] + np.linalg.svd(m + delta)[1][-1])
    error = np.linalg.norm(noisy.weight - rotation)
    assert 0 < error <= bound
    np.testing.assert_allclose(noisy.weight.T @ noisy.weight, np.eye(d), atol=1e-10)


def test_procrustes_into_a_wider_space_recovers_a_map_with_orthonormal_rows():
    rng = np.random.default_rng(6)
    weight = _rotation(10, 7)[:6]  # 6 → 10, orthonormal rows: the exact optimum is recovered
    x = rng.normal(size=(50, 6))
    fitted = fit_procrustes(x, x @ weight, center=False)
    np.testing.assert_allclose(fitted.weight, weight, atol=1e-10)
    np.testing.assert_allclose(fitted.bias, 0.0)


def test_procrustes_into_a_narrower_space_maximises_the_inner_product():
    rng = np.random.default_rng(12)
    weight = _rotation(10, 13)[:, :6]  # 10 → 6, orthonormal columns
    white = np.linalg.qr(rng.normal(size=(50, 10)))[0] * 3.0  # xᵀx = 9 I: the closed form is exact
    np.testing.assert_allclose(fit_procrustes(white, white @ weight, center=False).weight, weight, atol=1e-10)
    x = rng.normal(size=(50, 10))
    y = x @ weight + 0.1 * rng.normal(size=(50, 6))
    fitted = fit_procrustes(x, y, center=False).weight
    np.testing.assert_allclose(fitted.T @ fitted, np.eye(6), atol=1e-10)
    score = np.trace(fitted.T @ x.T @ y)  # ⟨x R, y⟩, the zero-padded problem's objective
    others = [np.trace(_rotation(10, s)[:, :6].T @ x.T @ y) for s in range(20)] + [
        np.trace(weight.T @ x.T @ y)
    ]
    assert score >= max(others) - 1e-9


def test_least_squares_recovers_a_known_linear_map_and_matches_the_normal_equations():
    rng = np.random.default_rng(8)
    x, weight, bias = rng.normal(size=(60, 5)), rng.normal(size=(5, 7)), rng.normal(size=7)
    exact = fit_least_squares(x, x @ weight + bias)
    np.testing.assert_allclose(exact.weight, weight, atol=1e-10)
    np.testing.assert_allclose(exact.bias, bias, atol=1e-10)
    y = x @ weight + bias + 0.1 * rng.normal(size=(60, 7))
    noisy = fit_least_squares(x, y)
    design = np.hstack([x, np.ones((60, 1))])
    reference = np.linalg.solve(design.T @ design, design.T @ y)  # the normal equations
    np.testing.assert_allclose(np.vstack([noisy.weight, noisy.bias]), reference, atol=1e-9)
    no_bias = fit_least_squares(x, x @ weight, bias=False)
    np.testing.assert_allclose(no_bias.weight, weight, atol=1e-10)
    assert not no_bias.bias.any()


def test_held_out_evaluation_r2_cosines_and_mapped_directions():
    rng = np.random.default_rng(9)
    d = 6
    rotation = _rotation(d, 10)
    train, test = rng.normal(size=(80, d)), rng.normal(size=(30, d))
    fitted = fit_procrustes(train, train @ rotation)
    direction = rng.normal(size=d)
    perfect = evaluate_map(fitted, test, test @ rotation, directions=(direction, direction @ rotation))
    assert perfect.r2 == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(perfect.cosine, 1.0, atol=1e-10)
    np.testing.assert_allclose(perfect.direction_cosine, [1.0], atol=1e-10)
    # held-out targets with noise: R² = 1 − SS_res / SS_tot, computed here by hand
    y = test @ rotation + 0.5 * rng.normal(size=test.shape)
    scored = evaluate_map(fitted, test, y)
    predicted = fitted(test)
    expected = 1 - ((y - predicted) ** 2).sum() / ((y - y.mean(0)) ** 2).sum()
    assert scored.r2 == pytest.approx(expected, rel=1e-12)
    assert scored.cosine[0] == pytest.approx(cosine(predicted[0], y[0]))
    assert scored.mean_cosine == pytest.approx(scored.cosine.mean())
    # a subspace's image through the map: rotated by the same rotation
    basis = orthonormal_basis(rng.normal(size=(d, 2)))
    assert subspace_overlap(fitted.subspace(basis), rotation.T @ basis) == pytest.approx(1.0)
    with pytest.raises(CircuitSpecError, match="6 → 6 wide"):
        evaluate_map(fitted, test[:, :4], y)


# ------------------------------------------------------------------ files with provenance


def _provenance(**changes) -> Provenance:
    fields = dict(
        model="bundled:toy_sentiment@final",
        node="resid_pre1",
        kind="direction",
        method="mean_difference",
        pooling="token",
        groups=("sub_minimal", "neg_minimal"),
        n=(12, 12),
        role="w_ori",
        layer=1,
    )
    fields.update(changes)
    return Provenance(**fields)  # type: ignore[arg-type]


def test_a_direction_round_trips_with_its_provenance_and_a_stable_hash(tmp_path):
    md = mean_difference(np.arange(12.0).reshape(3, 4), np.ones((2, 4)))
    saved = save_direction(tmp_path / "a.safetensors", md, _provenance())
    again = save_direction(tmp_path / "b.safetensors", md, _provenance())
    assert saved.sha256 == again.sha256 and len(saved.sha256) == 64
    loaded = load(tmp_path / "a.safetensors", width=4, model="bundled:toy_sentiment@final")
    assert loaded.provenance == _provenance() and loaded.sha256 == saved.sha256
    np.testing.assert_array_equal(loaded.direction().unit, md.unit)
    assert loaded.direction().norm == md.norm
    # any change of content or provenance changes the hash
    other = save_direction(tmp_path / "c.safetensors", md, _provenance(layer=2))
    flipped = save_direction(
        tmp_path / "d.safetensors", mean_difference(np.ones((2, 4)), md.raw[None]), _provenance()
    )
    assert len({saved.sha256, other.sha256, flipped.sha256}) == 3


def test_a_subspace_round_trips(tmp_path):
    x = np.random.default_rng(11).normal(size=(20, 5))
    sub = pca_subspace(x, 2)
    prov = _provenance(kind="subspace", method="pca", groups=("all",), n=(20,))
    save_subspace(tmp_path / "s.safetensors", sub, prov)
    back = load(tmp_path / "s.safetensors").subspace()
    for name in ("basis", "variance", "ratio", "mean"):
        np.testing.assert_array_equal(getattr(back, name), getattr(sub, name))


def _one_line_error(call, *words):
    with pytest.raises(CircuitSpecError) as info:
        call()
    text = str(info.value)
    assert "\n" not in text and all(w in text for w in words), text


def test_bad_files_are_one_line_errors(tmp_path):
    path = tmp_path / "d.safetensors"
    save_direction(path, mean_difference(np.eye(4)[:2], np.zeros((1, 4))), _provenance())
    _one_line_error(lambda: load(path, width=8, what="resid_pre1 of gpt2"), str(path), "4 wide", "8 wide")
    _one_line_error(lambda: load(path, model="gpt2"), "gpt2", "toy_sentiment")
    _one_line_error(lambda: load(tmp_path / "missing.safetensors"), "no such direction file")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    _one_line_error(lambda: load(junk), "not a safetensors file")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the last byte of the vectors: the recorded hash no longer matches
    path.write_bytes(bytes(data))
    _one_line_error(lambda: load(path), "sha256")
