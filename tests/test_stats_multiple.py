"""Holm and Benjamini–Hochberg against hand-worked examples; verdicts re-derived after adjusting."""

from __future__ import annotations

import numpy as np
import pytest

from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement
from circuitspec.stats import adjust, benjamini_hochberg, evaluate_claim, holm


def test_holm_by_hand() -> None:
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == pytest.approx([0.02])
    assert holm([]).size == 0


def test_holm_is_monotone_in_the_raw_p_values() -> None:
    p = np.random.default_rng(0).uniform(size=30)
    adjusted = holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0) and np.all(adjusted >= p) and np.all(adjusted <= 1)


def test_benjamini_hochberg_by_hand() -> None:
    # sorted p·m/rank: 0.005·4/1 = 0.02, 0.01·4/2 = 0.02, 0.03·4/3 = 0.04, 0.04·4/4 = 0.04
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # cumulative minimum from the top: 0.04·3/2 = 0.06 is lowered to 0.045·3/3 = 0.045
    assert benjamini_hochberg([0.001, 0.04, 0.045]) == pytest.approx([0.003, 0.045, 0.045])


def _baseline_claim(claim_id: str, beaten_by: int) -> object:
    """A claim whose CI clearly passes and whose empirical p is (1 + beaten_by) / 100."""
    values = np.random.default_rng(0).normal(1.0, 0.2, 60)
    random = np.concatenate([np.full(beaten_by, 5.0), np.zeros(99 - beaten_by)])
    m = Measurement(claim_id, "attribution", 60, arrays={"value": values}, random_baseline=random)
    return evaluate_claim(m, "mean > 0.5")


def test_adjust_rederives_baseline_verdicts() -> None:
    first, second = _baseline_claim("a", 2), _baseline_claim("b", 3)  # raw p 0.03 and 0.04
    plain_measurement = Measurement("c", "attribution", 5, arrays={"value": np.ones(5)})
    plain = evaluate_claim(plain_measurement, "mean > 0", min_n=5)
    assert (first.verdict, second.verdict) == ("pass", "pass")
    assert adjust([first, second, plain], "holm") == "holm"
    assert (first.p_adjusted, second.p_adjusted) == pytest.approx((0.06, 0.06))
    assert (first.verdict, second.verdict) == ("fail", "fail")
    assert "Holm-adjusted p = 0.06 > 0.05" in first.reason
    assert plain.p_adjusted is None and plain.verdict == "pass"  # no p-value: not in the family

    first, second = _baseline_claim("a", 2), _baseline_claim("b", 3)
    assert adjust([first, second], "bh") == "bh"
    assert (first.p_adjusted, second.p_adjusted) == pytest.approx((0.04, 0.04))
    assert (first.verdict, second.verdict) == ("pass", "pass")

    first, second = _baseline_claim("a", 2), _baseline_claim("b", 3)
    assert adjust([first, second], "none") == "none"
    assert (first.p_adjusted, second.p_adjusted) == pytest.approx((0.03, 0.04))
    assert first.verdict == "pass"


def test_unknown_method_is_a_one_line_error() -> None:
    with pytest.raises(CircuitSpecError, match="valid: holm, bonferroni, bh, none"):
        adjust([], "sidak")
