"""Forward passes of the toy hypothesis: the old commit against this tree, in one run.

``hypotheses/toy_sentiment.yaml`` is verified twice, each in a subprocess with its own tree first on
``PYTHONPATH``: the commit before the engine rebuild (``--old``, default ``de016e8``; its files are
unpacked with ``git archive`` into ``--old-dir``, leaving this checkout's git state alone) and this
working tree. Printed per tree: the pipeline's counted forward passes (``RunCost.forward_passes``
summed over claims: one per prompt sequence, a partial pass counted whole), real tokens, and
full-pass equivalents measured the same way in both trees, independent of either counter: every
call of a transformer block (or of one block's MLP alone, counted as a whole block) adds its batch
rows, divided by the number of blocks. Then the ratios.

Run: ``python benchmarks/bench_passes.py`` (about a minute; see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HYPOTHESIS = "hypotheses/toy_sentiment.yaml"

# run inside each tree: verify the hypothesis, count block rows, print one JSON line
_PROBE = r"""
import json, sys, time, warnings
import torch
torch.set_num_threads(int(sys.argv[2]))
from transformer_lens.components import TransformerBlock
rows = [0]
forward = TransformerBlock.forward
def counted(self, resid, *args, **kwargs):
    rows[0] += int(resid.shape[0])
    return forward(self, resid, *args, **kwargs)
TransformerBlock.forward = counted
try:  # this tree: a head edit may rerun only its block's MLP (adapter.mlp_call); count it as a whole block
    from circuitspec.engine.adapter import HookedTransformerAdapter
    mlp_call = HookedTransformerAdapter.mlp_call
    def counted_mlp(self, layer, resid_mid):
        rows[0] += int(resid_mid.shape[0])
        return mlp_call(self, layer, resid_mid)
    HookedTransformerAdapter.mlp_call = counted_mlp
except ImportError:  # the old tree has no adapter
    pass
import circuitspec
from circuitspec.pipeline import run_verification
warnings.simplefilter("ignore")
start = time.perf_counter()
result = run_verification(sys.argv[1], progress=False)
seconds = time.perf_counter() - start
costs = [m.cost for m in result.measurements.values()]
by_kind = {}
for m in result.measurements.values():
    by_kind[m.kind] = by_kind.get(m.kind, 0) + m.cost.forward_passes
n_layers = result.graph.shape.n_layers
print("RESULT " + json.dumps({
    "package": circuitspec.__file__,
    "forward_passes": sum(c.forward_passes for c in costs),
    "tokens": sum(c.tokens for c in costs),
    "block_rows": rows[0],
    "equivalents": rows[0] / n_layers,
    "seconds": seconds,
    "claims": len(costs),
    "by_kind": by_kind,
    "errors": sorted(cid for cid, m in result.measurements.items() if m.error),
    "verdicts": result.verdicts,
}))
"""


def unpack(commit: str, where: Path) -> Path:
    """The files of ``commit`` under ``where`` (``git archive``; reused when already there)."""
    if (where / "circuitspec" / "pipeline.py").exists():
        return where
    where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as archive:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit], stdout=archive, check=True)
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            tar.extractall(where, filter="data")
    return where


def run_probe(tree: Path, probe: str, args: list[str], threads: int, label: str = "") -> dict:
    """Run ``probe`` with ``tree``'s code first on the path, in a fresh interpreter; its RESULT line."""
    env = {**os.environ, "PYTHONPATH": str(tree), "CIRCUITSPEC_THREADS": str(threads)}
    env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{tree} {label}: the probe failed\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    if not Path(result["package"]).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"{tree}: imported circuitspec from {result['package']}, not from the tree")
    return result


def measure(tree: Path, threads: int) -> dict:
    """Verify the toy hypothesis with ``tree``'s code; the probe's numbers."""
    return run_probe(tree, _PROBE, [HYPOTHESIS, str(threads)], threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", default="de016e8", help="the commit to compare against")
    parser.add_argument("--old-dir", type=Path, default=Path(tempfile.gettempdir()) / "circuitspec-old")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in both runs")
    args = parser.parse_args()

    old = measure(unpack(args.old, args.old_dir / args.old), args.threads)
    new = measure(ROOT, args.threads)
    print(f"{HYPOTHESIS}: {old['claims']} claims; torch threads {args.threads}")
    print(f"{'':22}{'forward passes':>16}{'full-pass equiv.':>18}{'tokens':>10}{'seconds':>9}")
    for label, r in ((f"old ({args.old})", old), ("new (this tree)", new)):
        print(
            f"{label:22}{r['forward_passes']:>16}{r['equivalents']:>18.1f}{r['tokens']:>10}{r['seconds']:>9.1f}"
        )
    passes = 1 - new["forward_passes"] / old["forward_passes"]
    work = 1 - new["equivalents"] / old["equivalents"]
    print(f"counted forward passes: {passes:.0%} fewer; full-pass equivalents: {work:.0%} fewer")
    print("per claim kind, counted passes old -> new:")
    for kind in sorted(set(old["by_kind"]) | set(new["by_kind"])):
        print(f"  {kind:22}{old['by_kind'].get(kind, 0):>8} ->{new['by_kind'].get(kind, 0):>8}")
    for label, r in (("old", old), ("new", new)):
        if r["errors"]:
            print(f"{label}: claims that errored: {', '.join(r['errors'])}")
    verdicts = old["verdicts"]
    changed = {c: (verdicts.get(c), v) for c, v in new["verdicts"].items() if verdicts.get(c) != v}
    print(f"verdicts: {'the same in both trees' if not changed else f'changed {changed}'}")


if __name__ == "__main__":
    main()
