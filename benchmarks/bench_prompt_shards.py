"""What prompt sharding (``verify --ray --shard-prompts K``) costs and gains, measured in-process.

Runs ``hypotheses/toy_sentiment.yaml`` unsharded and as K prompt shards one after another on one
model load (no Ray: the shards' wall times are what K workers would each spend measuring), merges
the shards and checks the verdicts match. Prints the unsharded time (measuring and judging), each
shard's time, the largest (the measuring time of a K-worker run, before Ray's start-up), the driver's
merge and judging time, and the forward
passes of all shards against the unsharded run's (the extra work sharding costs: whole-set runs a
shard repeats, such as a mean ablation's clean run).

    OMP_NUM_THREADS=1 CIRCUITSPEC_THREADS=1 python benchmarks/bench_prompt_shards.py [K]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from circuitspec import pipeline
from circuitspec.distributed.shards import merge_verifications
from circuitspec.spec.loader import load_hypothesis

TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"


def _passes(result: pipeline.Verification) -> int:
    return sum(m.cost.forward_passes for m in result.measurements.values())


def main(shards: int) -> None:
    loaded = load_hypothesis(TOY)
    model = pipeline.load_hypothesis_model(loaded.spec.model, loaded.base_dir, loaded.spec.model.checkpoint)
    pipeline.run_verification(TOY, progress=False, loaded_model=model)  # warm-up: imports, first passes
    started = time.perf_counter()
    whole = pipeline.run_verification(TOY, progress=False, loaded_model=model)
    whole_s = time.perf_counter() - started
    parts, seconds = [], []
    for i in range(shards):
        started = time.perf_counter()
        parts.append(pipeline.run_verification(TOY, progress=False, loaded_model=model, shard=(i, shards)))
        seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    merged = merge_verifications(parts)  # the driver's share: merge, then judge every claim
    merge_s = time.perf_counter() - started
    print(f"{TOY.name}, {len(whole.graph.claims)} claims, {shards} prompt shards, one model load")
    print(f"unsharded (measure + judge): {whole_s:.1f} s, {_passes(whole)} forward passes")
    print("shards: " + ", ".join(f"{s:.1f} s" for s in seconds) + f" (largest {max(seconds):.1f} s)")
    print(f"merge + judge on the driver: {merge_s:.1f} s")
    print(f"forward passes over all shards: {sum(_passes(p) for p in parts)}")
    print(f"verdicts equal to the unsharded run's: {merged.verdicts == whole.verdicts}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
