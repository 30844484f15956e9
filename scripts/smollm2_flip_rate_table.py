"""Print the flip-rate table of docs/smollm2_flip_rate.md: per α, the share of rewrites with the target
sentiment, the flip rate (framework ``flip`` score) and the token Levenshtein distance to the original.

Runs ``circuitspec.pipeline.run_verification`` on one row split (the numbers are the ones ``verify``
computes; this only lays them out per α) and prints a Markdown table, then every prompt's rewrites.

    .venv/bin/python scripts/smollm2_flip_rate_table.py [HYPOTHESIS] [test|explore] [MIN_N]

(HYPOTHESIS: hypotheses/smollm2_flip_rate.yaml by default.)

The 19 explore rows are fewer than the default ``min_n`` (20), so ``verify --split explore`` calls every
claim inconclusive and draws no intervals; MIN_N (e.g. 10) re-judges the same measurements with that
``min_n`` (``circuitspec.stats.evaluate_family``, as ``verify`` judges) so the exploration table has them.

The on-target share's 95 % interval is Wilson's (``scipy.stats.binomtest``), because it is a binomial
proportion; the flip rate and distance intervals are the ones the verdicts use (``outcome.points``, at
the family-wise level, e.g. 98.75 % for four claims under Holm).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binomtest

from circuitspec.pipeline import run_verification
from circuitspec.stats import ClaimRequest, evaluate_family

DEFAULT = Path(__file__).resolve().parents[1] / "hypotheses" / "smollm2_flip_rate.yaml"


def _ci(point: Any) -> str:
    """``[low, high]`` of a sweep point's interval (— when undefined)."""
    if point.ci is None:
        return "—"
    return f"[{point.ci.low:.2f}, {point.ci.high:.2f}]"


def _wilson(hits: np.ndarray) -> str:
    """The Wilson 95 % interval of a 0/1 array's mean."""
    ci = binomtest(int(hits.sum()), len(hits)).proportion_ci(confidence_level=0.95, method="wilson")
    return f"[{ci.low:.2f}, {ci.high:.2f}]"


def table(verification: Any) -> list[str]:
    """Markdown rows: α, on-target share, flip rate, mean distance, Δ distance and its % change."""
    by_kind: dict[str, tuple[Any, Any]] = {}
    for m, o in _generation_claims(verification):  # the first claim of each score: the full α sweep
        by_kind.setdefault(m.claim.score, (m, o))
    flip_m, flip_o = by_kind["flip"]
    dist_m, dist_o = by_kind["levenshtein"]
    changes = dist_m.extra.get("distance_change_pct", {})
    level = flip_o.points[0].ci.level if flip_o.points and flip_o.points[0].ci else 0.95
    lines = [
        f"| α | with target sentiment (95 % CI) | flip rate ({100 * level:.4g} % CI) | mean token distance | "
        f"Δ distance vs α = 1 ({100 * level:.4g} % CI) | % change |",
        "|---|---|---|---|---|---|",
    ]
    for i, (fp, dp) in enumerate(zip(flip_m.sweep, dist_m.sweep, strict=True)):
        on_target = np.asarray(fp.arrays["intervened"])
        distance = np.asarray(dp.arrays["intervened"])
        change = changes.get(f"{fp.x:g}", float("nan"))
        lines.append(
            f"| {fp.x:g} | {on_target.mean():.2f} {_wilson(on_target)} | "
            f"{flip_o.points[i].estimate:.2f} {_ci(flip_o.points[i])} | {distance.mean():.2f} | "
            f"{dist_o.points[i].estimate:+.2f} {_ci(dist_o.points[i])} | {change:+.0f} % |"
        )
    return lines


def _generation_claims(verification: Any) -> list[tuple[Any, Any]]:
    """(measurement with its claim attached, outcome) of each generation claim."""
    claims = {c.id: c for c in verification.hypothesis.spec.claims}
    out = []
    for outcome in verification.outcomes:
        m = verification.measurements[outcome.claim_id]
        claim = claims[outcome.claim_id]
        if claim.kind == "generation":
            m.claim = claim
            out.append((m, outcome))
    return out


def examples(verification: Any, k: int | None = None) -> list[str]:
    """The first ``k`` (default: every) prompts' original, control and amplified rewrites (α = 8 and the
    largest α)."""
    m = next(m for m, _ in _generation_claims(verification) if m.claim.score == "flip")
    generated = m.extra["generated"]
    shown = [key for key in ("alpha=8", list(generated)[-1]) if key in generated]
    # the prompt text ends "<s_ori>: <sentence>\n<s_con>:"; the original is the line before the last
    originals = [label.split("\n")[-2].split(": ", 1)[-1] for label in m.prompt_labels]
    header = " | ".join(key.replace("alpha=", "α = ") for key in dict.fromkeys(shown))
    lines = [f"| original | control (α = 1) | {header} |", "|---" * (2 + len(dict.fromkeys(shown))) + "|"]
    n = len(generated["control"])
    for i in range(n if k is None else min(k, n)):
        cells = [originals[i], generated["control"][i]] + [generated[key][i] for key in dict.fromkeys(shown)]
        lines.append("| " + " | ".join(c.strip().replace("|", "\\|") for c in cells) + " |")
    return lines


def rejudge(verification: Any, min_n: int) -> None:
    """Replace the outcomes by the same measurements judged with ``min_n`` (family-wise, as verify)."""
    spec = verification.hypothesis.spec
    requests = [
        ClaimRequest(verification.measurements[c.id], c.expectation, c.confidence, min_n) for c in spec.claims
    ]
    verification.outcomes = evaluate_family(requests, family=spec.family, seed=verification.seed)


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else DEFAULT
    split = argv[1] if len(argv) > 1 else "test"
    verification = run_verification(path, progress=False, split=split)
    if len(argv) > 2:
        rejudge(verification, int(argv[2]))
    print(f"{path.name}, split {split}, {verification.seconds:.0f} s")
    print("\n".join(table(verification)))
    print()
    print("\n".join(examples(verification)))
    for outcome in verification.outcomes:
        print(f"{outcome.claim_id}: {outcome.verdict} ({outcome.reason})")


if __name__ == "__main__":
    main(sys.argv[1:])
