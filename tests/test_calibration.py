"""The calibration harness's quick mode runs, and its numbers sit where the statistics promise.

Quick mode draws 120 data sets per coverage cell, so a cell's coverage is checked against a
99.9% binomial band around the target band [0.93, 0.97], not against the band itself.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from scipy import stats

from circuitspec.stats import DEFAULT_MIN_N

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def quick():
    import calibration  # benchmarks/calibration.py

    return calibration.run(quick=True, zoo_seeds=0)


def test_quick_mode_prints_every_section(quick) -> None:
    lines, _ = quick
    text = "\n".join(lines)
    for heading in ("Coverage of the 95% interval", "Wrong claims", "True claims", "Family-wise false-pass"):
        assert heading in text


def test_quick_coverage_is_in_a_binomial_band_around_the_target(quick) -> None:
    _, results = quick
    seeds = results.seeds["coverage"]
    low = stats.binom.ppf(0.0005, seeds, 0.93) / seeds
    high = stats.binom.ppf(0.9995, seeds, 0.97) / seeds
    assert results.coverage, "no coverage cells"
    outside = {cell: c for cell, c in results.coverage.items() if not low <= c <= high}
    assert not outside, (outside, low, high)
    for n, mean in results.rate_coverage.items():  # exact, so the target band itself
        assert 0.93 <= mean <= 0.97, (n, mean)


def test_quick_false_passes_stay_at_the_stated_level(quick) -> None:
    _, results = quick
    claims, family = results.seeds["claims"], results.seeds["family"]
    one_claim = stats.binom.ppf(0.999, claims, 0.05) / claims
    assert all(rate <= one_claim for rate in results.false_pass.values()), results.false_pass
    whole = stats.binom.ppf(0.999, family, 0.05) / family
    for (name, m), rate in results.family_false_pass.items():
        if name in ("holm", "bonferroni"):
            assert rate <= whole, (name, m, rate)


def test_default_min_n_is_at_least_what_the_calibration_found() -> None:
    text = (ROOT / "docs" / "STATISTICS.md").read_text(encoding="utf-8")
    found = re.search(r"every cell is inside the band: \*\*(\d+|None)\*\*", text)
    if found is None:
        pytest.skip("docs/STATISTICS.md has no calibration tables yet")
    assert found.group(1) != "None", "no n of the grid is calibrated"
    assert int(found.group(1)) <= DEFAULT_MIN_N
