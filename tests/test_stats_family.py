"""Family-wise error control governs verdicts: interval levels under holm / bonferroni / bh / none.

The claims here are success rates (Wilson intervals, closed form), so the level at which each
claim is decided can be worked out independently with ``scipy.stats.binomtest``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from circuitspec.measurement import Measurement
from circuitspec.stats import ClaimRequest, evaluate_family


def _rate(claim_id: str, successes: int, n: int = 40) -> ClaimRequest:
    """A claim 'success_rate > 0.54' on ``successes`` of ``n`` prompts."""
    intervened = np.r_[np.ones(successes), -np.ones(n - successes)]
    m = Measurement(claim_id, "patching", n, arrays={"intervened": intervened})
    return ClaimRequest(m, f"success_rate > {THRESHOLD}")


def _decided_at(successes: int, level: float, n: int = 40) -> bool:
    """Independent: does the Wilson interval at ``level`` lie wholly on one side of the threshold?"""
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return ci.low > THRESHOLD or ci.high <= THRESHOLD


# Against 0.54: 36/40 is decided at any level used here; 29/40 at 1 − 0.05/2 but not at 1 − 0.05/3;
# 20/40 never. Checked independently below, so the test does not rest on hand arithmetic.
STRONG, MEDIUM, NULL = 36, 29, 20
THRESHOLD = 0.54


def test_the_chosen_counts_behave_as_stated() -> None:
    assert _decided_at(STRONG, 1 - 0.05 / 3) and _decided_at(MEDIUM, 1 - 0.05 / 2)
    assert not _decided_at(MEDIUM, 1 - 0.05 / 3) and not _decided_at(NULL, 0.95)


def test_none_keeps_each_claims_own_level() -> None:
    outcomes = evaluate_family([_rate("a", STRONG), _rate("b", MEDIUM), _rate("c", NULL)], "none")
    assert [o.ci.level for o in outcomes] == [0.95, 0.95, 0.95]
    assert [o.verdict for o in outcomes] == ["pass", "pass", "inconclusive"]


def test_bonferroni_puts_every_claim_at_alpha_over_m() -> None:
    outcomes = evaluate_family([_rate("a", STRONG), _rate("b", MEDIUM), _rate("c", NULL)], "bonferroni")
    assert [o.ci.level for o in outcomes] == pytest.approx([1 - 0.05 / 3] * 3)
    assert [o.verdict for o in outcomes] == ["pass", "inconclusive", "inconclusive"]
    assert outcomes[0].details["family"] == "bonferroni" and outcomes[0].details["family_size"] == 3


def test_holm_steps_down_after_each_decided_round() -> None:
    # round 1 at 1 − α/3 decides only the strong claim; round 2 at 1 − α/2 decides the medium one;
    # round 3 at 1 − α/1 decides nothing more, so the null claim is reported at 95%.
    outcomes = evaluate_family([_rate("a", STRONG), _rate("b", MEDIUM), _rate("c", NULL)], "holm")
    assert [o.ci.level for o in outcomes] == pytest.approx([1 - 0.05 / 3, 1 - 0.05 / 2, 0.95])
    assert [o.verdict for o in outcomes] == ["pass", "pass", "inconclusive"]


def test_bh_steps_up_to_the_largest_rank_with_that_many_decisions() -> None:
    # R = 3 (level 95%): 2 decided < 3; R = 2 (1 − α·2/3): strong and medium decided → stop.
    outcomes = evaluate_family([_rate("a", STRONG), _rate("b", MEDIUM), _rate("c", NULL)], "bh")
    assert _decided_at(MEDIUM, 1 - 0.05 * 2 / 3)
    assert [o.ci.level for o in outcomes] == pytest.approx([1 - 0.05 * 2 / 3] * 3)
    assert [o.verdict for o in outcomes] == ["pass", "pass", "inconclusive"]


def test_errors_and_small_samples_are_not_members_of_the_family() -> None:
    broken = ClaimRequest(Measurement("x", "patching", 0, error="boom"), "success_rate > 0.5")
    tiny = _rate("t", 3, n=3)
    outcomes = evaluate_family([_rate("a", STRONG), broken, tiny], "bonferroni")
    assert outcomes[0].ci.level == pytest.approx(0.95)  # a family of one
    assert (outcomes[1].verdict, outcomes[2].verdict) == ("error", "inconclusive")
    assert "family" not in outcomes[1].details


def test_a_family_of_wrong_claims_rarely_passes_any() -> None:
    # 10 claims whose truth sits exactly at the threshold (mean = 0): under Holm the chance that
    # any one passes 'mean > 0' is ≤ α/2 (one-sided); without correction it is ~1 − 0.975¹⁰ ≈ 22%.
    runs, any_pass_holm, any_pass_none = 60, 0, 0
    for run in range(runs):
        rng = np.random.default_rng(run)
        requests = [
            ClaimRequest(Measurement(f"c{i}", "x", 30, arrays={"value": rng.normal(0, 1, 30)}), "mean > 0")
            for i in range(10)
        ]
        any_pass_holm += any(o.verdict == "pass" for o in evaluate_family(requests, "holm", seed=run))
        any_pass_none += any(o.verdict == "pass" for o in evaluate_family(requests, "none", seed=run))
    assert any_pass_holm <= stats.binom.ppf(0.999, runs, 0.05)
    assert any_pass_none > any_pass_holm


def test_baseline_and_tost_p_values_are_separate_stated_families() -> None:
    rng = np.random.default_rng(7)
    requests = [
        ClaimRequest(
            Measurement(
                f"b{i}",
                "faithfulness",
                40,
                arrays={"value": rng.normal(1, 0.2, 40)},
                random_baseline=np.zeros(30),
            ),
            "mean > 0.5",
        )
        for i in range(2)
    ] + [
        ClaimRequest(
            Measurement("eq", "ablation", 40, arrays={"value": rng.normal(0, 0.01, 40)}),
            "no effect within 0.1",
        )
    ]
    baseline_a, _, equivalence = evaluate_family(requests, "holm")
    assert baseline_a.details["p_family"] == "random baselines: holm over 2 claim(s)"
    assert equivalence.details["p_family"] == "equivalence (TOST): holm over 1 claim(s)"
    # 30 random circuits: smallest p 1/31 = 0.032; Holm over 2 needs 0.025: cannot pass, says so
    assert baseline_a.verdict == "inconclusive" and "use at least 39" in baseline_a.reason
    assert equivalence.verdict == "pass" and equivalence.p_adjusted == equivalence.p_value
