"""The planted-zoo half of the calibration (``benchmarks/calibration.py`` calls :func:`zoo_section`).

Each draw perturbs every weight of the planted model (Gaussian noise, σ = ``NOISE`` × the RMS of
that tensor's nonzero entries, or of the whole model's for an all-zero tensor, so decoys and
unused heads start writing a little too) and resamples the data rows with replacement; then the
real engine measures every claim and :func:`circuitspec.stats.evaluate_family` decides them
under the file's ``family``. Which claims are true and which wrong comes from the zoo's own
verdict table (``tests/test_zoo_verdicts.py``: the noise-free expectations).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the zoo's expected verdicts are test data (tests/)
ZOO = ROOT / "hypotheses" / "zoo"
NOISE = 0.01


def _perturb(model: object, rng: np.random.Generator) -> None:
    import torch

    params = [p for p in model.parameters() if p.dtype.is_floating_point]  # type: ignore[attr-defined]
    nonzero = torch.cat([p.detach().flatten()[p.detach().flatten() != 0] for p in params])
    overall = float(nonzero.pow(2).mean().sqrt()) if nonzero.numel() else 1.0
    with torch.no_grad():
        for p in params:
            own = p[p != 0]
            scale = NOISE * (float(own.pow(2).mean().sqrt()) if own.numel() else overall)
            noise = rng.normal(0.0, scale, tuple(p.shape))
            p.add_(torch.as_tensor(noise, dtype=p.dtype, device=p.device))


def _draw(name: str, seed: int) -> dict[str, str]:
    """One noisy draw of one zoo file: claim id → verdict."""
    from circuitspec.engine.planner import run_claims
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.pipeline import load_hypothesis_model
    from circuitspec.spec.loader import load_hypothesis, load_rows
    from circuitspec.stats import ClaimRequest, evaluate_family

    rng = np.random.default_rng([23, seed, len(name)])
    hypothesis = load_hypothesis(ZOO / name)
    spec = hypothesis.spec
    loaded = load_hypothesis_model(spec.model, hypothesis.base_dir)
    _perturb(loaded.model, rng)
    graph = compile_hypothesis(hypothesis, shape=loaded.shape)
    rows = load_rows(spec.data, hypothesis.base_dir, hypothesis=hypothesis)
    rows = [rows[i] for i in rng.integers(0, len(rows), len(rows))]
    measurements = run_claims(graph, loaded, rows, hypothesis.base_dir, progress=False, seed=seed)
    requests = [
        ClaimRequest(measurements[c.id], c.expectation, c.confidence, c.min_n or spec.min_n)
        for c in graph.claims
    ]
    outcomes = evaluate_family(requests, family=spec.family, seed=seed)
    return {o.claim_id: o.verdict for o in outcomes}


def zoo_section(seeds: int) -> list[str]:
    """Per-claim false-pass and false-fail rates and the family-wise false-pass rate, as Markdown."""
    import torch

    from tests.test_zoo_verdicts import EXPECTED

    torch.set_num_threads(1)
    true_tally = {"pass": 0, "fail": 0, "inconclusive": 0, "error": 0}
    wrong_tally = dict(true_tally)
    files_with_false_pass, wrong_files, rows = 0, 0, []
    for name in sorted(EXPECTED):
        expected = EXPECTED[name]
        false_pass = false_fail = any_false_pass = n_true = n_wrong = 0
        for seed in range(seeds):
            verdicts = _draw(name, seed)
            wrong = {cid for cid, v in (expected or {}).items() if v == "fail"}
            any_false_pass += any(verdicts[cid] == "pass" for cid in wrong)
            for cid, verdict in verdicts.items():
                tally = wrong_tally if cid in wrong else true_tally
                tally[verdict] += 1
                n_wrong += cid in wrong
                n_true += cid not in wrong
                false_pass += cid in wrong and verdict == "pass"
                false_fail += cid not in wrong and verdict == "fail"
        if expected is not None:
            wrong_files += seeds
            files_with_false_pass += any_false_pass
        rows.append(
            f"| `{name}` | {n_true // seeds} | {n_wrong // seeds} | {false_fail / max(n_true, 1):.3f} "
            f"| {false_pass / max(n_wrong, 1):.3f} | {any_false_pass / seeds:.3f} |"
        )
    n_true, n_wrong = sum(true_tally.values()), sum(wrong_tally.values())
    return [
        f"Planted zoo with noise (weights × N(0, {NOISE}·RMS), rows resampled with replacement; "
        f"{seeds} draws per file; n = the file's prompts, ~30):",
        "",
        "| file | true claims | wrong claims | false-fail rate (true) | false-pass rate (wrong) "
        "| family-wise false pass |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"All files: true claims {n_true} verdicts: "
        + ", ".join(f"{k} {v / n_true:.3f}" for k, v in true_tally.items())
        + f"; wrong claims {n_wrong} verdicts: "
        + ", ".join(f"{k} {v / max(n_wrong, 1):.3f}" for k, v in wrong_tally.items())
        + f"; wrong hypotheses with any false pass: {files_with_false_pass / max(wrong_files, 1):.3f}.",
    ]
