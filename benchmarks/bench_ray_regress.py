"""Wall time of `circuitspec regress` serial vs `--ray` (a local cluster on this machine's cores) in one
run, the outputs compared, and the scaling model the two imply.

Each command runs as a user runs it (a fresh process). The model: a Ray regress of J jobs on W workers
takes ``startup + ceil(J / W) × per_job``, where ``per_job`` is the serial run's wall time per
checkpoint (it loads, measures, judges and renders one checkpoint; the interpreter start is paid once)
and ``startup`` is what the Ray run took beyond that (the cluster, the workers' imports, the
scheduling). Printed for 154 checkpoints × 10 hypotheses on a few worker counts.

Run: .venv/bin/python benchmarks/bench_ray_regress.py [--hypothesis FILE] [--checkpoints A,B,...]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "circuitspec.cli.main", "regress"]


def _timed(args: list[str]) -> tuple[float, list[tuple[float, str]]]:
    """Wall seconds of one command and each output line with the second it appeared at."""
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = [(time.perf_counter() - started, line.rstrip()) for line in process.stdout or []]
    process.wait()
    if process.returncode not in (0, 1):
        sys.exit(f"{' '.join(args)} exited {process.returncode}:\n" + "\n".join(t for _, t in lines[-20:]))
    return time.perf_counter() - started, lines


def _without_timings(folder: Path) -> list[str]:
    """Every report.json under ``folder`` minus its timings, and regression.json, as text."""
    texts = []
    for path in sorted(folder.glob("checkpoint-*/report.json")):
        data = json.loads(path.read_text())
        data.pop("timings", None)
        texts.append(json.dumps(data, sort_keys=True))
    return [*texts, (folder / "regression.json").read_text()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hypothesis", default="hypotheses/toy_sentiment.yaml")
    parser.add_argument("--checkpoints", default=None, help="default: every checkpoint of the model")
    args = parser.parse_args()
    picked = ["--checkpoints", args.checkpoints] if args.checkpoints else []
    with tempfile.TemporaryDirectory() as tmp:
        serial_s, serial_lines = _timed([*CLI, args.hypothesis, *picked, "-o", f"{tmp}/serial"])
        ray_s, ray_lines = _timed([*CLI, args.hypothesis, *picked, "-o", f"{tmp}/ray", "--ray"])
        same = _without_timings(Path(tmp) / "serial") == _without_timings(Path(tmp) / "ray")
    jobs = sum(1 for _, line in serial_lines if re.match(r"checkpoint \S+ \(\d+/\d+\)$", line))
    workers = int(next(float(m[1]) for _, line in ray_lines if (m := re.search(r"on (\S+) CPUs", line))))
    first = next(t for t, line in ray_lines if "as Ray tasks on" in line)
    per_job = serial_s / jobs
    startup = max(0.0, ray_s - math.ceil(jobs / workers) * per_job)
    print(f"{args.hypothesis}, {jobs} checkpoints, {workers} Ray workers (this machine's cores)")
    print(f"serial: {serial_s:.1f} s   ray: {ray_s:.1f} s   (speed-up {serial_s / ray_s:.2f}x)")
    print(f"ray: cluster up and jobs planned after {first:.1f} s")
    print(f"reports identical outside timings, regression.json byte-identical: {same}")
    print(
        f"model: per_job = {per_job:.1f} s (serial / J), startup = {startup:.1f} s (ray - ceil(J/W) per_job)"
    )
    total = 154 * 10
    print(f"154 checkpoints x 10 hypotheses = {total} jobs at this per-job cost:")
    print(f"  serial: {total * per_job / 3600:.1f} h")
    for w in (workers, 16, 64, 256):
        print(f"  ray, {w:>3} workers: {(startup + math.ceil(total / w) * per_job) / 3600:.2f} h")


if __name__ == "__main__":
    main()
