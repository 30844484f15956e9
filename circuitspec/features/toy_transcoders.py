"""Train the small transcoders shipped with the bundled toy sentiment model (a short seeded loop).

Entry point: :func:`train_toy_transcoders` (``python -m circuitspec.features.toy_transcoders``).
For each MLP layer, a ReLU transcoder maps ``blocks.L.ln2.hook_normalized`` to
``blocks.L.hook_mlp_out``, trained with MSE + L1 (on activations × decoder norms) on every token
of every prompt of ``hypotheses/toy_sentiment.yaml`` at the final checkpoint. Saved in sae-lens disk
format under ``circuitspec/zoo/toy_sentiment/transcoders/MLP<L>.tc/`` (format ``bundled``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .loading import bundled_dictionary_dir, transcoder_from_weights

__all__ = ["D_SAE", "train_toy_transcoders"]

D_SAE = 128
HYPOTHESIS = Path(__file__).resolve().parents[2] / "hypotheses" / "toy_sentiment.yaml"


def _activations(layer_count: int) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """MLP inputs and outputs at every real token of every toy prompt (final checkpoint)."""
    from circuitspec.engine.models import load_model
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.spec.loader import load_hypothesis, load_rows
    from circuitspec.spec.schema import ModelSpec

    hypothesis = load_hypothesis(HYPOTHESIS)
    loaded = load_model(ModelSpec(bundled="toy_sentiment"), hypothesis.base_dir)
    rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)
    prompts = build_prompt_set(hypothesis.spec.data, rows, loaded.tokenizer)
    names = [
        f"blocks.{layer}.{hook}"
        for layer in range(layer_count)
        for hook in ("ln2.hook_normalized", "hook_mlp_out")
    ]
    with torch.no_grad():
        _, cache = loaded.model.run_with_cache(prompts.tokens, names_filter=lambda n: n in names)
    real = torch.arange(prompts.tokens.shape[1])[None, :] < prompts.lengths[:, None]
    inputs = {layer: cache[f"blocks.{layer}.ln2.hook_normalized"][real] for layer in range(layer_count)}
    outputs = {layer: cache[f"blocks.{layer}.hook_mlp_out"][real] for layer in range(layer_count)}
    return inputs, outputs


def _train(x: torch.Tensor, y: torch.Tensor, seed: int, steps: int, l1: float) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    d_model = x.shape[1]
    W_enc = (torch.randn(d_model, D_SAE, generator=gen) / d_model**0.5).requires_grad_()
    b_enc = torch.zeros(D_SAE, requires_grad=True)
    W_dec = (torch.randn(D_SAE, d_model, generator=gen) / D_SAE**0.5).requires_grad_()
    b_dec = y.mean(0).clone().requires_grad_()
    params = [W_enc, b_enc, W_dec, b_dec]
    optimiser = torch.optim.Adam(params, lr=3e-3)
    scale = y.pow(2).sum(-1).mean()
    for step in range(steps):
        batch = torch.randint(0, x.shape[0], (2048,), generator=gen)
        acts = torch.relu(x[batch] @ W_enc + b_enc)
        recon = acts @ W_dec + b_dec
        mse = (recon - y[batch]).pow(2).sum(-1).mean() / scale
        sparsity = (acts * W_dec.norm(dim=-1)).sum(-1).mean()
        loss = mse + l1 * sparsity
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 500 == 0 or step == steps - 1:
            l0 = float((acts > 0).float().sum(-1).mean())
            print(f"step {step}: normalised mse {float(mse):.4f}, L0 {l0:.1f}")
    return {
        "W_enc": W_enc.detach(),
        "b_enc": b_enc.detach(),
        "W_dec": W_dec.detach(),
        "b_dec": b_dec.detach(),
    }


def train_toy_transcoders(seed: int = 0, steps: int = 3000, l1: float = 3e-3) -> dict[str, dict]:
    """Train and save one transcoder per toy MLP layer; returns per-layer fit statistics."""
    torch.manual_seed(seed)
    inputs, outputs = _activations(2)
    report = {}
    for layer in (0, 1):
        weights = _train(inputs[layer], outputs[layer], seed + layer, steps, l1)
        key = f"MLP{layer}.tc"
        transcoder = transcoder_from_weights(
            weights["W_enc"], weights["b_enc"], weights["W_dec"], weights["b_dec"],
            f"blocks.{layer}.ln2.hook_normalized", f"blocks.{layer}.hook_mlp_out",
        )  # fmt: skip
        transcoder.cfg.metadata.model_name = "toy_sentiment"
        transcoder.cfg.metadata.trained_on = "step_00600"
        directory = bundled_dictionary_dir("toy_sentiment", key)
        transcoder.save_model(directory)
        with torch.no_grad():
            recon = transcoder(inputs[layer])
            acts = transcoder.encode(inputs[layer])
        residual = (recon - outputs[layer]).pow(2).sum() / (outputs[layer] - outputs[layer].mean(0)).pow(
            2
        ).sum()
        report[key] = {
            "fraction_of_variance_unexplained": round(float(residual), 4),
            "mean_l0": round(float((acts > 0).float().sum(-1).mean()), 2),
            "seed": seed + layer,
            "steps": steps,
            "l1": l1,
            "trained_on": "toy_sentiment step_00600, every token of hypotheses/toy_sentiment.yaml",
        }
    (bundled_dictionary_dir("toy_sentiment", "x").parent / "training.json").write_text(
        json.dumps(report, indent=1) + "\n"
    )
    return report


if __name__ == "__main__":
    print(json.dumps(train_toy_transcoders(), indent=1))
