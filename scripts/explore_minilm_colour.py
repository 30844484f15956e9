"""Exploration behind hypotheses/minilm_colour.yaml: per-head grids on all-MiniLM-L6-v2, before any claim.

    .venv/bin/python scripts/explore_minilm_colour.py

Prints, over the hypothesis' exploration rows only (20 rows x 3 frames = 60 colour sentences; the 20
held-out rows are never read here), means ± one standard error over prompts:
attention to the colour word per head, zero-ablation Eq. 1 per head, direct effect on
cos(answer, question) per head, and denoising path patching of the colour position's stream entering
layer 5 through each last-layer head's value into the sentence embedding. Everything goes through
``circuitspec.engine``, as a claim would; docs/minilm_colour.md quotes these figures.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.ablation import ablate
from circuitspec.engine.interventions.attention import attention_prob
from circuitspec.engine.interventions.embedding_attribution import direct_embedding_effect
from circuitspec.engine.interventions.path_patching import PathJob, path_patch_jobs
from circuitspec.engine.metrics import make_metric
from circuitspec.engine.models import load_model
from circuitspec.engine.prompts import build_prompt_set
from circuitspec.engine.sites import resolve_site
from circuitspec.spec.loader import load_hypothesis, load_rows
from circuitspec.spec.nodes import parse_node
from circuitspec.spec.splits import select_rows

HYPOTHESIS = Path(__file__).resolve().parents[1] / "hypotheses" / "minilm_colour.yaml"


def _context(loaded, prompts, metric: str) -> RunContext:
    ctx = RunContext(loaded.model, prompts, metric=lambda *a, **k: None)
    ctx.metric = make_metric(metric, lambda: ctx.clean()[0], prompts, reference=ctx.reference)
    return ctx


def _top(title: str, values: dict[str, torch.Tensor], k: int = 6, key=lambda v: -float(v.mean())) -> None:
    print(f"\n{title}")
    for name, value in sorted(values.items(), key=lambda item: key(item[1]))[:k]:
        sem = float(value.std() / len(value) ** 0.5)
        print(f"  {name:8s} {float(value.mean()):+.4f} ± {sem:.4f}")


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    hypothesis = load_hypothesis(HYPOTHESIS)
    data = hypothesis.spec.data
    loaded = load_model(hypothesis.spec.model, hypothesis.base_dir)
    rows = select_rows(load_rows(data, hypothesis.base_dir), data, "explore")  # never the held-out rows
    prompts = build_prompt_set(data, rows, loaded.tokenizer, [t.id for t in data.templates], seed=0)
    cfg = loaded.model.cfg
    heads = [f"L{layer}H{head}" for layer in range(cfg.n_layers) for head in range(cfg.n_heads)]
    site = {name: resolve_site(parse_node(name), prompts) for name in heads}
    print(f"{len(prompts)} prompts")

    cosine = _context(loaded, prompts, "cosine")
    clean = cosine.metric(cosine.clean()[0], prompts)
    corrupt = cosine.metric(cosine.corrupted()[0], prompts)
    print(f"cos(answer, question): clean {float(clean.mean()):.4f}, twin {float(corrupt.mean()):.4f}")

    for source in ("noun", "end"):
        probs = {name: attention_prob(cosine, site[name], source, "colour") for name in heads}
        _top(f"attention {source} -> colour", probs)
        named = ("L5H1", "L5H6", "L5H9")
        print("  " + ", ".join(f"{name} {float(probs[name].mean()):.4f}" for name in named))

    change = _context(loaded, prompts, "distance_change")
    zero = {name: ablate(change, [site[name]], "zero") for name in heads}
    _top("zero ablation, Eq. 1 (most negative first)", zero, key=lambda v: float(v.mean()))
    print(f"  L5H1     {float(zero['L5H1'].mean()):+.4f}")

    direction = cosine.reference()
    direct = {name: direct_embedding_effect(cosine, [site[name]], direction) for name in heads}
    _top("direct effect on cos(answer, question)", direct)

    jobs = {
        f"L5H{head}": PathJob.chain(
            [parse_node("resid_pre5@colour"), parse_node(f"L5H{head}.v@colour"), parse_node("logits")]
        )
        for head in range(cfg.n_heads)
    }
    patched, base, _ = path_patch_jobs(cosine, list(jobs.values()), direction="denoising")
    carried = {name: patched[i] - base for i, name in enumerate(jobs)}
    _top("path patching (denoising) resid_pre5@colour -> L5H<h>.v@colour -> embedding", carried, k=12)
    direct_path = {
        f"L{layer}": patch - base
        for layer, patch in enumerate(
            path_patch_jobs(
                cosine,
                [
                    PathJob.chain([parse_node(f"resid_pre{layer}@colour"), parse_node("logits")])
                    for layer in range(cfg.n_layers)
                ],
                direction="denoising",
            )[0]
        )
    }
    _top("path patching (denoising) resid_pre<l>@colour -> embedding, every sublayer frozen", direct_path)
    print(f"\nforward passes {cosine.counter.forward_passes + change.counter.forward_passes}")


if __name__ == "__main__":
    main()
