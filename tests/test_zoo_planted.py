"""Planted-circuit zoo models, checked with plain TransformerLens hooks (no circuitspec engine).

For each model: the task is solved on every data row, every component outside the planted
circuit provably does nothing, every circuit component is necessary, and the planted receiving
channels (q / k / v) are the ones that carry the signal.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

torch = pytest.importorskip("torch")

from circuitspec.zoo.planted import induction, label_mover, suppression  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "hypotheses" / "zoo" / "data"

Component = tuple  # ("head", layer, head) | ("mlp", layer)


@dataclass(frozen=True)
class Task:
    """How a planted model's prompts are written and what its true circuit is."""

    module: ModuleType
    template: str  # slots in braces, whitespace-separated words
    desired: str  # row field of the right answer
    undesired: str  # row field of the wrong answer
    corrupt: dict[str, str]  # slot -> row field it is replaced by
    circuit: tuple[Component, ...]
    rows_file: str


TASKS = {
    "induction": Task(
        induction, "{f0} {a} {b} {f1} {f2} {a2}", "b", "f1", {"a": "c"},
        (("head", 0, 0), ("head", 1, 1)), "induction.jsonl",
    ),
    "label_mover": Task(
        label_mover, "{f1} {label} {f2} {f3} so", "ans", "anti", {"label": "label_flip"},
        (("mlp", 0), ("head", 1, 0)), "label_mover.jsonl",
    ),
    "suppression": Task(
        suppression, "{f1} {name} {f2} {f3} to", "name", "f2", {"name": "name2"},
        (("head", 0, 0), ("head", 1, 0)), "suppression.jsonl",
    ),
}  # fmt: skip


@dataclass
class Batch:
    model: object
    tokens: torch.Tensor
    corrupt_tokens: torch.Tensor
    desired: torch.Tensor
    undesired: torch.Tensor
    rows: list[dict[str, str]]


def _encode(tokenizer, text: str) -> list[int]:
    ids, _ = tokenizer.encode(text)
    return [tokenizer.bos_id, *ids]


@pytest.fixture(scope="module", params=sorted(TASKS))
def batch(request) -> tuple[Task, Batch]:
    torch.set_num_threads(1)
    task = TASKS[request.param]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, tokenizer = task.module.load(None)
    rows = [json.loads(line) for line in (DATA / task.rows_file).read_text().splitlines()]
    clean = [_encode(tokenizer, task.template.format(**row)) for row in rows]
    corrupt = [
        _encode(tokenizer, task.template.format(**{**row, **{k: row[v] for k, v in task.corrupt.items()}}))
        for row in rows
    ]
    unk = tokenizer.token_to_id("<unk>")
    assert all(unk not in ids for ids in clean + corrupt)
    lengths = {len(ids) for ids in clean + corrupt}
    assert len(lengths) == 1, "every prompt (clean and corrupt) has the same length"
    desired = torch.tensor([tokenizer.token_to_id(row[task.desired]) for row in rows])
    undesired = torch.tensor([tokenizer.token_to_id(row[task.undesired]) for row in rows])
    return task, Batch(model, torch.tensor(clean), torch.tensor(corrupt), desired, undesired, rows)


def logit_diff(batch: Batch, logits: torch.Tensor) -> torch.Tensor:
    end = logits[:, -1]
    idx = torch.arange(end.shape[0])
    return end[idx, batch.desired] - end[idx, batch.undesired]


def run(batch: Batch, hooks=(), tokens=None) -> torch.Tensor:
    with torch.no_grad():
        return batch.model.run_with_hooks(batch.tokens if tokens is None else tokens, fwd_hooks=list(hooks))


def zero_hook(component: Component):
    """A (hook name, fn) pair that zero-ablates one head (hook_z) or one MLP (hook_mlp_out)."""
    if component[0] == "head":
        _, layer, head = component

        def fn(act, hook):
            act[:, :, head] = 0.0
            return act

        return f"blocks.{layer}.attn.hook_z", fn
    _, layer = component

    def fn_mlp(act, hook):
        return torch.zeros_like(act)

    return f"blocks.{layer}.hook_mlp_out", fn_mlp


def all_components(model) -> list[Component]:
    cfg = model.cfg
    comps: list[Component] = [("head", l, h) for l in range(cfg.n_layers) for h in range(cfg.n_heads)]
    if not cfg.attn_only:
        comps += [("mlp", l) for l in range(cfg.n_layers)]
    return comps


def sender_output(batch: Batch, sender: Component, tokens=None) -> torch.Tensor:
    """What ``sender`` writes into the residual stream, ``[batch, pos, d_model]``."""
    model = batch.model
    with torch.no_grad():
        _, cache = model.run_with_cache(batch.tokens if tokens is None else tokens)
    if sender[0] == "head":
        _, layer, head = sender
        return cache[f"blocks.{layer}.attn.hook_z"][:, :, head] @ model.blocks[layer].attn.W_O[head]
    return cache[f"blocks.{sender[1]}.hook_mlp_out"]


def path_patch(batch: Batch, sender: Component, receiver: tuple[int, int], channel: str, replacement=None):
    """Logits when ``sender``'s contribution to one head's ``channel`` input is replaced.

    ``replacement`` None removes the contribution (path zero-ablation); else it is the sender's
    output on another run (path patching). Only the receiver head's q/k/v input sees the change.
    """
    model = batch.model
    model.set_use_split_qkv_input(True)
    try:
        clean_out = sender_output(batch, sender)
        new_out = torch.zeros_like(clean_out) if replacement is None else replacement
        layer, head = receiver

        def fn(act, hook):
            act[:, :, head] = act[:, :, head] - clean_out + new_out
            return act

        return run(batch, [(f"blocks.{layer}.hook_{channel}_input", fn)])
    finally:
        model.set_use_split_qkv_input(False)


# ------------------------------------------------------------------------------ tests


def test_registration_does_not_import_torch():
    code = (
        "import sys, circuitspec.zoo.catalog as c;"
        "assert {'zoo.induction','zoo.label_mover','zoo.suppression'} <= set(c.BUNDLED);"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_shape_matches_built_model(batch):
    task, b = batch
    cfg, shape = b.model.cfg, task.module.SHAPE
    assert (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_vocab, cfg.n_ctx) == (
        shape.n_layers, shape.n_heads, shape.d_model, shape.d_vocab, shape.n_ctx,
    )  # fmt: skip
    assert (None if cfg.attn_only else cfg.d_mlp) == shape.d_mlp


def test_unknown_checkpoint_is_one_line_error(batch):
    from circuitspec.errors import CircuitSpecError

    task, _ = batch
    with pytest.raises(CircuitSpecError, match="valid: default"):
        task.module.load("step-5")


def test_tokenizer_offsets_and_specials(batch):
    task, _ = batch
    tokenizer = task.module.word_tokenizer(task.module.VOCAB)
    word = task.module.VOCAB[5]
    ids, offsets = tokenizer.encode(f"{word} {word}")
    assert ids == [5, 5] and offsets == [(0, len(word)), (len(word) + 1, 2 * len(word) + 1)]
    assert tokenizer.single_token(f" {word}") == 5
    assert (tokenizer.bos_id, tokenizer.pad_id) == (0, 1)


def test_task_is_solved_on_every_prompt(batch):
    _, b = batch
    logits = run(b)
    assert (logit_diff(b, logits) > 1.0).all()
    assert (logits[:, -1].argmax(-1) == b.desired).all()


def test_corruption_removes_the_answer(batch):
    _, b = batch
    diff = logit_diff(b, run(b, tokens=b.corrupt_tokens))
    assert (diff < 0.05).all()


def test_components_outside_circuit_do_nothing(batch):
    task, b = batch
    clean = run(b)
    outside = [c for c in all_components(b.model) if c not in task.circuit]
    assert outside
    for component in outside:
        assert (run(b, [zero_hook(component)]) - clean).abs().max() < 1e-5, component
    all_hooks = [zero_hook(c) for c in outside]
    assert (run(b, all_hooks) - clean).abs().max() < 1e-5  # and all of them together


def test_each_circuit_component_is_necessary(batch):
    task, b = batch
    clean = logit_diff(b, run(b))
    for component in task.circuit:
        ablated = logit_diff(b, run(b, [zero_hook(component)]))
        if task.module is suppression and component == ("head", *suppression.SUPPRESSOR_HEAD):
            # the suppressor's effect is negative: removing it raises the logit diff by 0.4 × 4
            expected = suppression.SUPPRESSION * suppression.UNEMBED_SCALE
            torch.testing.assert_close(ablated - clean, torch.full_like(clean, expected), atol=1e-4, rtol=0)
        else:
            assert (ablated.abs() < 0.05 * clean).all(), component


def test_decoy_heads_attend_like_the_real_ones(batch):
    task, b = batch
    with torch.no_grad():
        _, cache = b.model.run_with_cache(b.tokens)
    if task.module is induction:
        # L0H0 and the decoy L0H1 attend from b (position 3) to a (position 2)
        for head in (0, 1):
            assert (cache["blocks.0.attn.hook_pattern"][:, head, 3, 2] > 0.999).all()
        assert (cache["blocks.1.attn.hook_pattern"][:, 1, -1, 3] > 0.999).all()  # induction → b
    elif task.module is label_mover:
        for head in (0, 1):  # mover and decoy attend end → label (position 2)
            assert (cache["blocks.1.attn.hook_pattern"][:, head, -1, 2] > 0.999).all()
    else:
        assert (cache["blocks.0.attn.hook_pattern"][:, 0, -1, 2] > 0.999).all()  # mover → name
        assert (cache["blocks.1.attn.hook_pattern"][:, 0, -1, 2] > 0.999).all()  # suppressor → name


CHANNELS = {
    # model: (sender, receiver head, channel that carries the signal, channels that carry nothing)
    "induction": (("head", 0, 0), (1, 1), "k", ("q", "v")),
    "label_mover": (("mlp", 0), (1, 0), "v", ("q", "k")),
    "suppression": (("head", 0, 0), (1, 0), "q", ("k", "v")),
}


def test_receiving_channels(batch):
    task, b = batch
    name = next(k for k, t in TASKS.items() if t is task)
    sender, receiver, live, dead = CHANNELS[name]
    clean_logits = run(b)
    clean = logit_diff(b, clean_logits)
    for channel in dead:  # removing the edge into a dead channel changes nothing at all
        assert (path_patch(b, sender, receiver, channel) - clean_logits).abs().max() < 1e-5, channel
    removed = logit_diff(b, path_patch(b, sender, receiver, live))
    patched = logit_diff(b, path_patch(b, sender, receiver, live, sender_output(b, sender, b.corrupt_tokens)))
    if task.module is suppression:
        # without the mover's prediction in its query the suppressor suppresses nothing
        gap = torch.full_like(clean, suppression.SUPPRESSION * suppression.UNEMBED_SCALE)
        torch.testing.assert_close(removed - clean, gap, atol=1e-3, rtol=0)
        torch.testing.assert_close(patched - clean, gap, atol=1e-3, rtol=0)
    else:
        assert (removed.abs() < 0.05 * clean).all()
        assert (patched < 0.05 * clean).all()


def test_closed_form_logit_diffs(batch):
    """The clean logit difference equals the planted constants (exact construction)."""
    task, b = batch
    clean = logit_diff(b, run(b))
    expected = {
        induction: induction.UNEMBED_SCALE,
        label_mover: 2 * label_mover.UNEMBED_SCALE,
        suppression: suppression.UNEMBED_SCALE * (1 - suppression.SUPPRESSION),
    }[task.module]
    torch.testing.assert_close(clean, torch.full_like(clean, expected), atol=1e-4, rtol=0)
