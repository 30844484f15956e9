"""Train the bundled toy sentiment model, deterministically, and write its files.

``python -m circuitspec.zoo.toy_sentiment.train`` regenerates ``tokenizer.json``,
``checkpoints/step_XXXXX.safetensors`` and ``config.json`` (with every checkpoint's sha256 and
held-out accuracy) from the seed: CPU, one thread, deterministic algorithms, a seeded generator
for batches - bit-for-bit on one kind of CPU, to float noise on CPUs whose vector kernels round
differently (docs/toy_sentiment.md). Loss: cross entropy on the answer (last) position only.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from circuitspec.zoo.toy_sentiment import task

__all__ = [
    "MODEL_CONFIG",
    "PACKAGE_DIR",
    "TRAINING",
    "deterministic_cpu",
    "encode_prompts",
    "evaluate",
    "main",
    "metrics_table",
    "new_model",
    "train",
]

PACKAGE_DIR = Path(__file__).resolve().parent
N_CTX = 32
# HookedTransformerConfig kwargs (d_vocab is filled from the vocabulary).
MODEL_CONFIG: dict[str, Any] = {
    "n_layers": 2,
    "d_model": 64,
    "n_heads": 4,
    "d_head": 16,
    "d_mlp": 256,
    "n_ctx": N_CTX,
    "act_fn": "gelu",
    "normalization_type": "LN",
    "positional_embedding_type": "standard",
    "d_vocab": len(task.vocabulary()),
}
TRAINING: dict[str, Any] = {
    "seed": 0,
    "steps": 600,
    "batch_size": 128,
    "lr": 1e-3,
    "weight_decay": 0.1,
    "checkpoint_steps": [0, 20, 50, 100, 200, 400, 600],
}


@contextlib.contextmanager
def deterministic_cpu(threads: int = 1) -> Iterator[None]:
    """Single-threaded deterministic torch for the duration; restores the previous settings."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic)
        torch.set_num_threads(previous_threads)


def new_model(seed: int | None = None):  # -> HookedTransformer
    """A HookedTransformer of the toy's shape on CPU; seeded initialisation when ``seed`` given."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformer_lens import HookedTransformer, HookedTransformerConfig

        if seed is not None:
            torch.manual_seed(seed)
        cfg = HookedTransformerConfig(**MODEL_CONFIG, device="cpu", seed=seed)
        return HookedTransformer(cfg)


def encode_prompts(prompts: Sequence[task.TaskPrompt], tokenizer) -> dict[str, torch.Tensor]:
    """Right-padded token ids (BOS first), answer positions, desired/undesired ids.

    ``tokenizer`` is a :class:`circuitspec.tokenizer.TextTokenizer`. Right padding with a
    causal model leaves every real position's activations exactly as unpadded.
    """
    rows = [[tokenizer.bos_id, *tokenizer.encode(p.text)[0]] for p in prompts]
    length = max(len(r) for r in rows)
    tokens = torch.full((len(rows), length), tokenizer.pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = torch.tensor(row)

    def ids(words: list[str]) -> torch.Tensor:
        return torch.tensor([tokenizer.token_to_id(w) for w in words], dtype=torch.long)

    return {
        "tokens": tokens,
        "answer_pos": torch.tensor([len(r) - 1 for r in rows], dtype=torch.long),
        "desired": ids([p.desired for p in prompts]),
        "undesired": ids([p.undesired for p in prompts]),
    }


@torch.no_grad()
def evaluate(model, tokenizer, prompts: Sequence[task.TaskPrompt]) -> dict[str, dict[str, float]]:
    """Accuracy per ``prompt_type/condition`` group and ``all``.

    For each group: ``n``, ``logit_diff_accuracy`` (share with desired − undesired logit > 0),
    ``top1_accuracy`` (share whose argmax over the vocabulary is the desired token) and
    ``mean_logit_diff``.
    """
    batch = encode_prompts(prompts, tokenizer)
    logits = model(batch["tokens"], return_type="logits")
    final = logits[torch.arange(len(prompts)), batch["answer_pos"]]
    diff = (
        final.gather(1, batch["desired"][:, None])[:, 0] - final.gather(1, batch["undesired"][:, None])[:, 0]
    )
    top1 = final.argmax(-1) == batch["desired"]
    groups: dict[str, list[int]] = {"all": list(range(len(prompts)))}
    for i, p in enumerate(prompts):
        groups.setdefault(f"{p.prompt_type}/{p.condition}", []).append(i)
    result: dict[str, dict[str, float]] = {}
    for name in sorted(groups):
        index = torch.tensor(groups[name])
        result[name] = {
            "n": len(index),
            "logit_diff_accuracy": round(float((diff[index] > 0).double().mean()), 6),
            "top1_accuracy": round(float(top1[index].double().mean()), 6),
            "mean_logit_diff": round(float(diff[index].double().mean()), 4),
        }
    return result


def metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    """Markdown table of :func:`evaluate`'s result (the one recorded in docs/toy_sentiment.md)."""
    lines = [
        "| prompt type / condition | n | logit-diff accuracy | top-1 accuracy | mean logit diff |",
        "|---|---|---|---|---|",
    ]
    for name, row in metrics.items():
        lines.append(
            f"| {name} | {row['n']} | {row['logit_diff_accuracy']:.4f} | {row['top1_accuracy']:.4f} "
            f"| {row['mean_logit_diff']:.2f} |"
        )
    return "\n".join(lines)


def _save_checkpoint(model, path: Path) -> str:
    """Parameters only (no attention-mask buffers) as safetensors; returns the file's sha256."""
    from safetensors.torch import save_file

    params = {name: p.detach().clone().contiguous() for name, p in model.named_parameters()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(params, str(path))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checkpoint_name(step: int) -> str:
    return f"step_{step:05d}"


def train(
    out_dir: str | Path,
    *,
    seed: int = TRAINING["seed"],
    steps: int = TRAINING["steps"],
    checkpoint_steps: Sequence[int] = TRAINING["checkpoint_steps"],
    stop_after: int | None = None,
    log_every: int = 0,
) -> tuple[Any, dict[str, str]]:
    """Train from ``seed``; save checkpoints under ``out_dir/checkpoints``.

    ``stop_after`` ends training early (for reproducibility checks of a prefix). Returns the
    model and ``{checkpoint name: sha256}``.
    """
    from circuitspec.tokenizer import TextTokenizer

    out_dir = Path(out_dir)
    tokenizer = TextTokenizer(task.build_tokenizer(), bos_id=0, pad_id=1)
    train_prompts, _ = task.split_prompts()
    data = encode_prompts(train_prompts, tokenizer)
    # Each prompt type gets equal total weight (minimal prompts are far fewer).
    type_counts = {t: sum(p.prompt_type == t for p in train_prompts) for t in task.PROMPT_TYPES}
    weights = torch.tensor([1.0 / type_counts[p.prompt_type] for p in train_prompts], dtype=torch.float64)
    last = steps if stop_after is None else min(steps, stop_after)
    hashes: dict[str, str] = {}
    with deterministic_cpu():
        model = new_model(seed)
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=TRAINING["lr"], weight_decay=TRAINING["weight_decay"]
        )
        for step in range(last + 1):
            if step in checkpoint_steps:
                name = checkpoint_name(step)
                hashes[name] = _save_checkpoint(model, out_dir / "checkpoints" / f"{name}.safetensors")
            if step == last:
                break
            index = torch.multinomial(weights, TRAINING["batch_size"], replacement=True, generator=generator)
            logits = model(data["tokens"][index], return_type="logits")
            answer_logits = logits[torch.arange(len(index)), data["answer_pos"][index]]
            loss = torch.nn.functional.cross_entropy(answer_logits, data["desired"][index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if log_every and step % log_every == 0:
                print(f"step {step:5d} loss {loss.item():.4f}")
    return model, hashes


def main(argv: Sequence[str] | None = None) -> None:
    """Retrain and rewrite the bundled files (tokenizer, checkpoints, config with hashes and metrics)."""
    from circuitspec.tokenizer import TextTokenizer
    from circuitspec.zoo.toy_sentiment import load_checkpoint_into

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR)
    args = parser.parse_args(argv)
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    backend = task.build_tokenizer()
    backend.save(str(out_dir / "tokenizer.json"))
    tokenizer = TextTokenizer.from_file(out_dir / "tokenizer.json", bos="<bos>", pad="<pad>")
    _, hashes = train(out_dir, log_every=100)
    train_prompts, test_prompts = task.split_prompts()
    metrics: dict[str, Any] = {}
    with deterministic_cpu():
        for name in hashes:
            model = load_checkpoint_into(new_model(), out_dir / "checkpoints" / f"{name}.safetensors")
            metrics[name] = {
                "test": evaluate(model, tokenizer, test_prompts),
                "train_all": evaluate(model, tokenizer, train_prompts)["all"],
            }
            print(name, hashes[name][:12], json.dumps(metrics[name]["test"]["all"]))
    config = {
        "name": "toy_sentiment",
        "description": "2-layer, 4-head toy transformer trained on the contrastive-sentiment task "
        "(substitution, negation, preservation; minimal/contextual/instructional prompts)",
        "model": MODEL_CONFIG,
        "special_tokens": {"bos": "<bos>", "pad": "<pad>", "unk": "<unk>"},
        "training": {**TRAINING, "torch_version": torch.__version__},
        "default_checkpoint": checkpoint_name(TRAINING["steps"]),
        "checkpoints": [{"name": n, "step": int(n.split("_")[1]), "sha256": h} for n, h in hashes.items()],
        "metrics": metrics,
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=1) + "\n")


if __name__ == "__main__":
    main()
