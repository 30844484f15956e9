"""Calibration of circuitspec's verdicts: interval coverage, false passes, false fails, family-wise error.

Two sources of known truth:

- **simulated** per-prompt data (normal, skewed, binary, paired ratios, flat sweeps) whose true
  statistic is known, run through :func:`circuitspec.stats.evaluate_claim` / ``evaluate_family``;
- the **planted zoo** (``hypotheses/zoo``), whose true and wrong hypotheses are known by
  construction, with noise added: every weight perturbed (Gaussian, relative σ) and the prompts
  resampled with replacement, one draw per seed, through the real engine.

Run:
    .venv/bin/python benchmarks/calibration.py              # full: prints the tables (minutes)
    .venv/bin/python benchmarks/calibration.py --write-docs # ... and writes them into docs/STATISTICS.md
    .venv/bin/python benchmarks/calibration.py --quick      # simulated only, few seeds (< 30 s)

The tables in docs/STATISTICS.md between the calibration markers are written by this script only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from circuitspec.measurement import Measurement, SweepPoint
from circuitspec.stats import DEFAULT_MIN_N, ClaimRequest, evaluate_claim, evaluate_family

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "STATISTICS.md"
BEGIN, END = "<!-- calibration:begin -->", "<!-- calibration:end -->"
BAND = (0.93, 0.97)

Draw = Callable[[np.random.Generator, int], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Case:
    """A simulated statistic: how to draw one data set of n prompts, and the true value."""

    statistic: str
    data: str
    draw: Draw
    truth: float


def _value(draw: Callable[[np.random.Generator, int], np.ndarray]) -> Draw:
    return lambda rng, n: {"value": draw(rng, n)}


def _rate(p: float) -> Draw:
    return lambda rng, n: {"intervened": np.where(rng.random(n) < p, 1.0, -1.0)}


def _ratio(denominator: float, ratio: float, noise: Callable[[np.random.Generator, int], np.ndarray]) -> Draw:
    def draw(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        corrupt = rng.normal(0.0, 1.0, n)
        clean = corrupt + denominator + noise(rng, n)
        intervened = corrupt + ratio * (clean - corrupt) + 0.5 * noise(rng, n)
        return {"clean": clean, "corrupt": corrupt, "intervened": intervened}

    return draw


def _centred_exponential(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.exponential(1.0, n) - 1.0


CASES = (
    Case("mean", "normal", _value(lambda rng, n: rng.normal(0.3, 1.0, n)), 0.3),
    Case("mean", "exponential (skew 2)", _value(lambda rng, n: rng.exponential(1.0, n)), 1.0),
    Case(
        "mean",
        "lognormal σ=0.75",
        _value(lambda rng, n: rng.lognormal(0, 0.75, n)),
        float(np.exp(0.75**2 / 2)),
    ),
    Case("median", "normal", _value(lambda rng, n: rng.normal(0.3, 1.0, n)), 0.3),
    Case("median", "exponential", _value(lambda rng, n: rng.exponential(1.0, n)), float(np.log(2))),
    Case("recovered", "normal noise", _ratio(2.0, 0.8, lambda rng, n: rng.normal(0, 1.35, n)), 0.8),
    Case(
        "recovered", "skewed noise", _ratio(2.0, 0.8, lambda rng, n: 1.35 * _centred_exponential(rng, n)), 0.8
    ),
)


def _measurement(arrays: dict[str, np.ndarray], n: int) -> Measurement:
    return Measurement("sim", "simulated", n, arrays=arrays)


def coverage(case: Case, n: int, seeds: int, resamples: int) -> float:
    """Share of 95% intervals (min_n lowered to 2) that contain the true value."""
    covered = 0
    for seed in range(seeds):
        rng = np.random.default_rng([n, seed, CASES.index(case)])
        outcome = evaluate_claim(
            _measurement(case.draw(rng, n), n),
            f"{case.statistic} > -1e9",
            seed=seed,
            n_resamples=resamples,
            min_n=2,
        )
        covered += outcome.ci is not None and outcome.ci.low <= case.truth <= outcome.ci.high
    return covered / seeds


RATE_GRID = np.round(np.arange(0.1, 0.91, 0.05), 2)


def rate_coverage(n: int, p: float) -> float:
    """Exact coverage of the success-rate interval at true rate ``p``: every count k of n, weighted
    by its binomial probability (each interval from :func:`evaluate_claim` itself)."""
    from scipy import stats

    covered = 0.0
    for k in range(n + 1):
        intervened = np.r_[np.ones(k), -np.ones(n - k)]
        ci = evaluate_claim(_measurement({"intervened": intervened}, n), "success_rate > -1", min_n=2).ci
        covered += float(stats.binom.pmf(k, n, p)) * (ci is not None and ci.low <= p <= ci.high)
    return covered


def rate_cells(ns: list[int]) -> tuple[list[list[object]], list[bool], list[float]]:
    """Success-rate rows: mean exact coverage over p in 0.1–0.9, and its range (discrete: it oscillates)."""
    grid = np.array([[rate_coverage(n, float(p)) for n in ns] for p in RATE_GRID])
    mean, low, high = grid.mean(axis=0), grid.min(axis=0), grid.max(axis=0)
    rows: list[list[object]] = [
        ["success_rate", "exact, mean over p = 0.1…0.9", *(f"{m:.3f}" for m in mean)],
        [
            "success_rate",
            "exact, range over p",
            *(f"{a:.3f}–{b:.3f}" for a, b in zip(low, high, strict=True)),
        ],
    ]
    return rows, [bool(BAND[0] <= m <= BAND[1]) for m in mean], [float(m) for m in mean]


def _flat_sweep(rng: np.random.Generator, n: int) -> Measurement:
    """A scaling sweep whose true success rate does not change with α (a wrong 'increases')."""
    sweep = [
        SweepPoint(alpha, {"intervened": rng.normal(0.2, 1.0, n)}) for alpha in (0.0, 0.5, 1.0, 1.5, 2.0)
    ]
    return Measurement("flat", "scaling", n, sweep=sweep, sweep_variable="alpha")


# Wrong claims whose truth sits exactly on the boundary (the hardest case to reject).
WRONG = (
    (
        "mean > 0 (true mean 0)",
        "mean > 0",
        lambda rng, n: _measurement({"value": rng.exponential(1, n) - 1}, n),
    ),
    (
        "recovered >= 0.8 (true 0.8)",
        "recovered >= 0.8",
        lambda rng, n: _measurement(_ratio(2.0, 0.8, lambda r, k: r.normal(0, 1.35, k))(rng, n), n),
    ),
    (
        "no effect within 0.1 (true 0.1)",
        "no effect within 0.1",
        lambda rng, n: _measurement({"value": rng.normal(0.1, 0.5, n)}, n),
    ),
    (
        "success_rate > 0.5 (true 0.5)",
        "success_rate > 0.5",
        lambda rng, n: _measurement(_rate(0.5)(rng, n), n),
    ),
    ("success_rate increases with alpha (flat)", "success_rate increases with alpha", _flat_sweep),
)

TRUE = (
    (
        "mean > 0 (true 0.5, sd 1)",
        "mean > 0",
        lambda rng, n: _measurement({"value": rng.normal(0.5, 1, n)}, n),
    ),
    (
        "recovered >= 0.6 (true 0.8)",
        "recovered >= 0.6",
        lambda rng, n: _measurement(_ratio(2.0, 0.8, lambda r, k: r.normal(0, 1.35, k))(rng, n), n),
    ),
    (
        "no effect within 0.3 (true 0)",
        "no effect within 0.3",
        lambda rng, n: _measurement({"value": rng.normal(0, 0.5, n)}, n),
    ),
)


def verdict_rates(make: Callable, expect: str, n: int, seeds: int, resamples: int) -> dict[str, float]:
    """Shares of pass / fail / inconclusive over ``seeds`` simulated data sets (one claim, 95%)."""
    verdicts = []
    for seed in range(seeds):
        rng = np.random.default_rng([7, n, seed, len(expect)])
        verdicts.append(
            evaluate_claim(make(rng, n), expect, seed=seed, n_resamples=resamples, min_n=2).verdict
        )
    return {v: verdicts.count(v) / seeds for v in ("pass", "fail", "inconclusive")}


def family_false_pass(family: str, m: int, n: int, seeds: int, resamples: int) -> float:
    """Share of hypotheses of ``m`` boundary-true wrong claims in which at least one claim passes."""
    any_pass = 0
    for seed in range(seeds):
        rng = np.random.default_rng([11, m, n, seed])
        requests = [ClaimRequest(WRONG[i % 3][2](rng, n), WRONG[i % 3][1], min_n=2) for i in range(m)]
        outcomes = evaluate_family(requests, family, seed=seed, n_resamples=resamples)
        any_pass += any(o.verdict == "pass" for o in outcomes)
    return any_pass / seeds


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


@dataclass
class Results:
    """The numbers behind the tables (what the quick-mode test checks)."""

    seeds: dict[str, int] = field(default_factory=dict)  # section -> data sets per cell
    coverage: dict[tuple[str, str, int], float] = field(default_factory=dict)  # (statistic, data, n)
    rate_coverage: dict[int, float] = field(default_factory=dict)  # n -> mean exact coverage over p
    false_pass: dict[tuple[str, int], float] = field(default_factory=dict)  # (wrong claim, n)
    family_false_pass: dict[tuple[str, int], float] = field(default_factory=dict)  # (family, m)
    smallest_n: int | None = None


def _in_band(coverage: float, seeds: int) -> bool:
    """Could the true coverage lie in the band, given ``seeds`` draws? (within 2.58 binomial SE:
    with 1000 draws a cell's own noise is ±0.018, enough to step outside by chance.)"""
    slack = 2.58 * np.sqrt(max(coverage * (1 - coverage), 1e-4) / seeds)
    return BAND[0] - slack <= coverage <= BAND[1] + slack


def coverage_section(ns: list[int], seeds: int, resamples: int, results: Results) -> list[str]:
    """The coverage table and the smallest n from which every case stays inside the band."""
    grid = {(case.statistic, case.data): [coverage(case, n, seeds, resamples) for n in ns] for case in CASES}
    results.seeds["coverage"] = seeds
    for (statistic, data), covs in grid.items():
        results.coverage.update({(statistic, data, n): c for n, c in zip(ns, covs, strict=True)})
    rows: list[list[object]] = [[s, d, *(f"{c:.3f}" for c in covs)] for (s, d), covs in grid.items()]
    rate_rows, rate_inside, rate_mean = rate_cells(ns)
    results.rate_coverage.update(zip(ns, rate_mean, strict=True))
    inside = [
        rate_inside[j] and all(_in_band(covs[j], seeds) for covs in grid.values()) for j in range(len(ns))
    ]
    smallest = results.smallest_n = next((ns[j] for j in range(len(ns)) if all(inside[j:])), None)
    lines = [f"Coverage of the 95% interval ({seeds} data sets per cell; target {BAND[0]}–{BAND[1]}):", ""]
    lines += _table(["statistic", "data", *(f"n = {n}" for n in ns)], rows + rate_rows)
    lines += [
        "",
        f"Smallest n from which every cell is inside the band: **{smallest}** (a simulated cell within "
        "2.58 binomial standard errors of it; the success rate by its exact mean coverage over p; "
        "`DEFAULT_MIN_N` must be at least this).",
    ]
    return lines


def claims_section(ns: list[int], seeds: int, resamples: int, results: Results) -> list[str]:
    lines = [
        f"Wrong claims, truth on the boundary (one claim at 95%, {seeds} data sets): false-pass rate",
        "",
    ]
    results.seeds["claims"] = seeds
    for label, expect, make in WRONG:
        for n in ns:
            results.false_pass[label, n] = verdict_rates(make, expect, n, seeds, resamples)["pass"]
    rows = [[label, *(f"{results.false_pass[label, n]:.3f}" for n in ns)] for label, _, _ in WRONG]
    lines += _table(["wrong claim", *(f"n = {n}" for n in ns)], rows)
    lines += ["", f"True claims ({seeds} data sets): false-fail rate / pass rate", ""]
    rows = []
    for label, expect, make in TRUE:
        rates = [verdict_rates(make, expect, n, seeds, resamples) for n in ns]
        rows.append([label, *(f"{r['fail']:.3f} / {r['pass']:.3f}" for r in rates)])
    return lines + _table(["true claim", *(f"n = {n}" for n in ns)], rows)


def family_section(n: int, seeds: int, resamples: int, results: Results) -> list[str]:
    lines = [
        f"Family-wise false-pass rate: hypotheses of m wrong claims on the boundary, n = {n}, "
        f"{seeds} hypotheses; stated level 0.05",
        "",
    ]
    results.seeds["family"] = seeds
    for family in ("holm", "bonferroni", "bh", "none"):
        for m in (5, 10):
            results.family_false_pass[family, m] = family_false_pass(family, m, n, seeds, resamples)
    rows = [
        [family, *(f"{results.family_false_pass[family, m]:.3f}" for m in (5, 10))]
        for family in ("holm", "bonferroni", "bh", "none")
    ]
    return lines + _table(["family", "m = 5", "m = 10"], rows)


def write_docs(lines: list[str]) -> None:
    """Replace the text between the calibration markers in docs/STATISTICS.md."""
    text = DOCS.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        sys.exit(f"{DOCS}: the markers {BEGIN} / {END} are missing")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail, encoding="utf-8")


def run(quick: bool, zoo_seeds: int) -> tuple[list[str], Results]:
    """Every section's lines and numbers (the quick mode: fewer seeds and n, no zoo)."""
    seeds, resamples = (120, 499) if quick else (1000, 999)
    ns = [DEFAULT_MIN_N] if quick else [5, 10, 15, 20, 30, 50, 100]
    results = Results()
    lines = _shown(coverage_section(ns, seeds, resamples, results), quick)
    lines += _shown(
        ["", *claims_section(ns if quick else [10, 20, 50], seeds // 2, resamples, results)], quick
    )
    lines += _shown(
        ["", *family_section(DEFAULT_MIN_N if quick else 30, seeds // 4, resamples, results)], quick
    )
    if not quick and zoo_seeds:
        from calibration_zoo import zoo_section  # type: ignore[import-not-found]

        lines += _shown(["", *zoo_section(zoo_seeds)], quick)
    return lines, results


def _shown(lines: list[str], quiet: bool) -> list[str]:
    """Print a finished section at once in a long run (to stderr: stdout gets the whole report)."""
    if not quiet:
        print("\n".join(lines), file=sys.stderr, flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="simulated only, few seeds (< 30 s)")
    parser.add_argument("--write-docs", action="store_true", help="write the tables into docs/STATISTICS.md")
    parser.add_argument("--zoo-seeds", type=int, default=10, help="noisy zoo draws per hypothesis (0: skip)")
    args = parser.parse_args()
    lines, _ = run(args.quick, args.zoo_seeds)
    print("\n".join(lines))
    if args.write_docs:
        write_docs(
            [
                f"Written by `python benchmarks/calibration.py{' --quick' if args.quick else ''} "
                "--write-docs`; do not edit by hand.",
                "",
                *lines,
            ]
        )


if __name__ == "__main__":
    main()
