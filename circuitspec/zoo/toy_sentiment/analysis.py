"""Which components of the toy sentiment model read the label and carry the word.

Plain TransformerLens hook loops (no circuitspec engine), so the numbers in
``docs/toy_sentiment.md`` can be regenerated with ``python -m circuitspec.zoo.toy_sentiment.analysis``
and serve as an independent reference for the engine's patching and attention functions.

Activation patching: run a *corrupted* prompt, copy one head's ``hook_z`` at the answer position
from the *clean* run, and report the restored fraction of the clean logit difference,
``(LD_patched − LD_corrupt) / (LD_clean − LD_corrupt)``, with desired/undesired tokens of the clean
prompt. Clean and corrupted prompts have the same length, so positions line up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import torch

from circuitspec.zoo.toy_sentiment import task, train

__all__ = ["attention_to_roles", "label_patching", "main", "patch_heads", "word_patching"]

Head = tuple[int, int]


def _logit_diff(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> float:
    rows = torch.arange(len(batch["tokens"]))
    final = logits[rows, batch["answer_pos"]]
    desired = final.gather(1, batch["desired"][:, None])[:, 0]
    undesired = final.gather(1, batch["undesired"][:, None])[:, 0]
    return float((desired - undesired).mean())


@torch.no_grad()
def patch_heads(
    model,
    tokenizer,
    clean: Sequence[task.TaskPrompt],
    corrupt: Sequence[task.TaskPrompt],
    heads: Sequence[Head],
    mlps: Sequence[int] = (),
) -> float:
    """Restored fraction of the clean logit difference when ``heads``' z (and ``mlps``' outputs)
    at the answer position are patched from the clean run into the corrupted one."""
    clean_batch = train.encode_prompts(clean, tokenizer)
    corrupt_batch = train.encode_prompts(corrupt, tokenizer)
    if not torch.equal(clean_batch["answer_pos"], corrupt_batch["answer_pos"]):
        raise ValueError("clean and corrupted prompts must have equal lengths")
    rows, answer = torch.arange(len(clean)), clean_batch["answer_pos"]
    clean_logits, cache = model.run_with_cache(
        clean_batch["tokens"], names_filter=lambda n: n.endswith(("hook_z", "hook_mlp_out"))
    )
    clean_ld = _logit_diff(clean_logits, clean_batch)
    corrupt_ld = _logit_diff(model(corrupt_batch["tokens"]), clean_batch)

    def patch_layer(layer: int):
        layer_heads = [h for (lay, h) in heads if lay == layer]

        def hook(z: torch.Tensor, hook) -> torch.Tensor:
            for head in layer_heads:
                z[rows, answer, head] = cache[hook.name][rows, answer, head]
            return z

        return (f"blocks.{layer}.attn.hook_z", hook)

    def patch_mlp(out: torch.Tensor, hook) -> torch.Tensor:
        out[rows, answer] = cache[hook.name][rows, answer]
        return out

    hooks = [patch_layer(layer) for layer in sorted({lay for lay, _ in heads})]
    hooks += [(f"blocks.{layer}.hook_mlp_out", patch_mlp) for layer in mlps]
    patched_ld = _logit_diff(model.run_with_hooks(corrupt_batch["tokens"], fwd_hooks=hooks), clean_batch)
    return (patched_ld - corrupt_ld) / (clean_ld - corrupt_ld)


def _counterparts(prompts: Sequence[task.TaskPrompt], **change) -> list[task.TaskPrompt]:
    """The prompt that differs from each of ``prompts`` only in the given fields."""
    fields = ("prompt_type", "pair_index", "noun", "direction", "condition")
    index = {tuple(getattr(p, f) for f in fields): p for p in task.all_prompts()}
    out = []
    for p in prompts:
        values = {f: getattr(p, f) for f in fields}
        for field, fn in change.items():
            values[field] = fn(values[field])
        out.append(index[tuple(values[f] for f in fields)])
    return out


def _held_out_sentences() -> list[task.TaskPrompt]:
    return [p for p in task.split_prompts()[1] if p.prompt_type != "minimal"]


def label_patching(model, tokenizer, negated: bool, heads: Sequence[Head], mlps: Sequence[int] = ()) -> float:
    """Clean: transformation prompts; corrupted: the second label flipped (a preservation prompt)."""
    swap = {"substitution": "preserve", "negation": "preserve_negation"}
    clean = [p for p in _held_out_sentences() if p.condition == ("negation" if negated else "substitution")]
    corrupt = _counterparts(clean, condition=swap.__getitem__)
    return patch_heads(model, tokenizer, clean, corrupt, heads, mlps)


def word_patching(model, tokenizer, heads: Sequence[Head]) -> float:
    """Clean: held-out sentences; corrupted: the same prompt with the next pair's word."""
    clean = _held_out_sentences()
    corrupt = _counterparts(clean, pair_index=lambda i: (i + 1) % len(task.ADJECTIVE_PAIRS))
    return patch_heads(model, tokenizer, clean, corrupt, heads)


@torch.no_grad()
def attention_to_roles(model, tokenizer, condition: str) -> dict[str, dict[str, float]]:
    """Mean attention from the answer position to ``s_con`` and ``w_ori``, per head."""
    prompts = [p for p in _held_out_sentences() if p.condition == condition]
    batch = train.encode_prompts(prompts, tokenizer)
    _, cache = model.run_with_cache(batch["tokens"], names_filter=lambda n: n.endswith("hook_pattern"))
    result: dict[str, dict[str, float]] = {}
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]
        for head in range(model.cfg.n_heads):
            to_label, to_word = [], []
            for i, p in enumerate(prompts):
                words = [tokenizer.id_to_token(t) for t in batch["tokens"][i].tolist()]
                second_label = [j for j, w in enumerate(words) if w == ":"][1] - 1
                answer = int(batch["answer_pos"][i])
                to_label.append(float(pattern[i, head, answer, second_label]))
                to_word.append(float(pattern[i, head, answer, words.index(p.w_ori)]))
            result[f"L{layer}H{head}"] = {
                "s_con": round(sum(to_label) / len(prompts), 2),
                "w_ori": round(sum(to_word) / len(prompts), 2),
            }
    return result


def main() -> None:
    """Print the analysis of the final checkpoint as JSON."""
    from circuitspec.zoo import toy_sentiment

    with train.deterministic_cpu():
        model, tokenizer = toy_sentiment.load("final")
        heads = [(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
        report = {
            "label_patching": {
                ("negation" if negated else "substitution"): {
                    f"L{lay}H{h}": round(label_patching(model, tokenizer, negated, [(lay, h)]), 2)
                    for lay, h in heads
                }
                for negated in (False, True)
            },
            "label_patching_mlp": {
                ("negation" if negated else "substitution"): {
                    f"MLP{layer}": round(label_patching(model, tokenizer, negated, [], [layer]), 2)
                    for layer in (0, 1)
                }
                for negated in (False, True)
            },
            "word_patching": {
                "+".join(f"L{lay}H{h}" for lay, h in group): round(word_patching(model, tokenizer, group), 2)
                for group in [[(0, h)] for h in range(4)] + [[(0, 1), (0, 2)], heads[:4], heads[4:]]
            },
            "attention": {c: attention_to_roles(model, tokenizer, c) for c in task.CONDITIONS},
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
