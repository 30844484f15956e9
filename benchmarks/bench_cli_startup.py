"""Time `circuitspec validate` start-up (it must not import torch) and one claim's statistics at n=1000.

Run: .venv/bin/python benchmarks/bench_cli_startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from circuitspec.measurement import Measurement
from circuitspec.stats import evaluate_claim

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "circuitspec.cli.main",
                "validate",
                str(ROOT / "hypotheses/gpt2_sentiment.yaml"),
            ],
            check=True,
            capture_output=True,
        )
        runs.append(time.perf_counter() - started)
    print(f"circuitspec validate gpt2_sentiment.yaml: median {statistics.median(runs):.2f} s over 5 runs")

    rng = np.random.default_rng(5)
    n = 1000
    arrays = {
        "clean": rng.normal(2, 1, n),
        "corrupt": rng.normal(0, 1, n),
        "intervened": rng.normal(1.6, 1, n),
    }
    arrays["value"] = arrays["intervened"] - arrays["clean"]
    m = Measurement(claim_id="bench", kind="activation_patching", n_prompts=n, arrays=arrays)
    evaluate_claim(m, "recovered >= 0.5")  # warm-up
    for stat in ("mean < 0", "recovered >= 0.5"):
        started = time.perf_counter()
        evaluate_claim(m, stat)
        print(f"evaluate_claim('{stat}') at n={n}: {time.perf_counter() - started:.3f} s")


if __name__ == "__main__":
    main()
