"""Text generation with an intervention active on every generated step.

:func:`generate` continues a batch of prompts (token ids) greedily or by seeded sampling, up to
``max_new_tokens``, stopping a row at the tokenizer's EOS or a stop string. Interventions are
:class:`StepEdit` s: a :class:`~circuitspec.engine.sites.Site` (a node resolved against the prompts,
e.g. ``L7H5.v@s_con``) scaled by a factor or overwritten with one vector per prompt, applied through
the engine's :class:`~circuitspec.engine.edits.Edit`. A site pinned to a prompt role is edited in the
prompt pass only; a site at every position is edited at every step, generated tokens included.

Batching: prompts are left-padded with an attention mask; TransformerLens masks the padding and
offsets positional embeddings / rotary positions by it (``HookedTransformer.forward(attention_mask=)``),
so a batched run equals one prompt at a time (``tests/test_generation.py`` checks it on the toy model
and SmolLM2). KV cache: every edit acts on the positions of the tokens being run, and the cache
stores the keys and values computed *with* the edits, so a cached step equals a full pass over the
whole sequence with the same hooks (also checked). Sampling draws each prompt's tokens from its own
generator (seeded by the seed and the prompt's index), so sampled text does not depend on batching.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .adapter import ModelAdapter
from .context import PassCounter
from .edits import Edit
from .sites import Site
from .steering import Shift

__all__ = ["Generated", "GenerationConfig", "StepEdit", "chat_prompts", "generate"]

Hook = tuple[str, Callable[..., Any]]


@dataclass(frozen=True)
class StepEdit:
    """One site's edit during generation: ``scale`` × its activation, or ``values`` written there.

    ``site.positions`` index each prompt's own (unpadded) tokens, one per prompt (a role), or are None
    (every position, generated ones included). ``values`` ``[n_prompts, ...]`` holds, per prompt, what
    :meth:`Site.select` reads at one position (a head's ``[d_head]``, a neuron's ``[1]``); ``shift``,
    of the same shape, is added there instead (steering's :class:`~circuitspec.engine.steering.Shift`)."""

    site: Site
    scale: float | None = None
    values: torch.Tensor | None = None
    shift: torch.Tensor | None = None


@dataclass(frozen=True)
class GenerationConfig:
    """How to continue: ``temperature`` 0 is greedy; ``top_k`` keeps the k likeliest tokens when sampling."""

    max_new_tokens: int = 20
    temperature: float = 0.0
    top_k: int | None = None
    seed: int = 0
    stop: tuple[str, ...] = ()
    batch_size: int = 8
    use_cache: bool = True


@dataclass
class Generated:
    """Per prompt: the new token ids (cut before EOS / a stop string) and their text."""

    tokens: list[list[int]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


def generate(
    adapter: ModelAdapter,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    edits: Sequence[StepEdit] = (),
    config: GenerationConfig = GenerationConfig(),
    counter: PassCounter | None = None,
) -> Generated:
    """Continue every prompt (token ids, BOS included where the model wants one) with ``edits`` active.

    ``tokenizer`` is a :class:`~circuitspec.tokenizer.TextTokenizer` (``decode``, ``pad_id``, ``eos_id``);
    ``counter`` counts each step's rows and real tokens."""
    out = Generated()
    for start in range(0, len(prompts), max(config.batch_size, 1)):
        rows = list(range(start, min(start + config.batch_size, len(prompts))))
        tokens = _generate_batch(adapter, tokenizer, prompts, rows, edits, config, counter)
        for ids in tokens:
            kept, text = _cut(ids, tokenizer, config.stop)
            out.tokens.append(kept)
            out.texts.append(text)
    return out


def chat_prompts(
    tokenizer: Any, prompts: Sequence[Sequence[int]]
) -> tuple[list[list[int]], list[int]] | None:
    """Each prompt as the user's message in the model's chat template with the assistant's turn opened
    (``add_generation_prompt``), and how far each prompt's tokens moved (add it to a role's position);
    None where the model has no template. The template is rendered by Jinja's sandbox, as
    transformers' ``apply_chat_template`` renders it, around a marker; the text before and after is
    tokenized on its own (``tests/test_generation.py`` checks the ids equal the whole rendered text's)."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return None
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    marker = "\ue000message\ue000"
    bos, eos = tokenizer.bos_id, tokenizer.eos_id
    text = (
        ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        .from_string(template)
        .render(
            messages=[{"role": "user", "content": marker}],
            add_generation_prompt=True,
            bos_token=tokenizer.id_to_token(bos) if bos is not None else "",
            eos_token=tokenizer.id_to_token(eos) if eos is not None else "",
        )
    )
    before, after = text.split(marker)
    prefix, suffix = tokenizer.encode(before)[0], tokenizer.encode(after)[0]
    if bos is not None and prefix[:1] != [bos]:
        prefix = [bos, *prefix]  # the model wants BOS first, and the template does not write it
    out, shifts = [], []
    for ids in prompts:
        own_bos = bos is not None and list(ids[:1]) == [bos]  # gives way to the template's
        out.append([*prefix, *ids[int(own_bos) :], *suffix])
        shifts.append(len(prefix) - int(own_bos))
    return out, shifts


def _left_padded(prompts: Sequence[Sequence[int]], rows: list[int], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Tokens ``[b, L]``, attention mask ``[b, L]`` and each row's padding ``[b]``."""
    longest = max(len(prompts[r]) for r in rows)
    pads = torch.tensor([longest - len(prompts[r]) for r in rows])
    tokens = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, int(pads[i]) :] = torch.as_tensor(list(prompts[r]), dtype=torch.long)
        mask[i, int(pads[i]) :] = 1
    return tokens, mask, pads


def _generate_batch(
    adapter: ModelAdapter,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    rows: list[int],
    edits: Sequence[StepEdit],
    config: GenerationConfig,
    counter: PassCounter | None,
) -> list[list[int]]:
    """New token ids per row of one left-padded batch (uncut)."""
    seq, mask, pads = _left_padded(prompts, rows, int(tokenizer.pad_id))
    cache = adapter.kv_cache(len(rows)) if config.use_cache else None
    generators = [torch.Generator().manual_seed(config.seed * 1_000_003 + r) for r in rows]
    index = torch.tensor(rows)
    done = torch.zeros(len(rows), dtype=torch.bool)
    new: list[torch.Tensor] = []
    inputs, inputs_mask, begin = seq, mask, 0
    for _ in range(config.max_new_tokens):
        hooks = _step_hooks(edits, index, pads, begin, int(inputs.shape[1]))
        logits = adapter.next_logits(inputs, hooks, inputs_mask, cache).float().cpu()
        if counter is not None:
            counter.add(len(rows), int(inputs_mask.sum()))
        chosen = _choose(logits, config, generators)[:, None]
        new.append(chosen)
        done |= _finished(torch.cat(new, dim=1), tokenizer, config.stop)
        seq, mask = torch.cat([seq, chosen], dim=1), torch.cat([mask, torch.ones_like(chosen)], dim=1)
        if bool(done.all()):
            break
        if cache is not None:
            inputs, inputs_mask, begin = chosen, torch.ones_like(chosen), int(seq.shape[1]) - 1
        else:
            inputs, inputs_mask = seq, mask
    return torch.cat(new, dim=1).tolist() if new else [[] for _ in rows]


def _choose(
    logits: torch.Tensor, config: GenerationConfig, generators: list[torch.Generator]
) -> torch.Tensor:
    """Greedy (argmax) or, with a temperature, one sample per row from that row's own generator."""
    if config.temperature <= 0:
        return logits.argmax(dim=-1)
    scaled = logits / config.temperature
    if config.top_k is not None and config.top_k < scaled.shape[-1]:
        kth = scaled.topk(config.top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    picks = [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(generators)]
    return torch.cat(picks)


def _finished(new: torch.Tensor, tokenizer: Any, stop: Sequence[str]) -> torch.Tensor:
    """Per row: whether its continuation so far holds EOS or a stop string."""
    eos = tokenizer.eos_id
    done = (new == eos).any(dim=1) if eos is not None else torch.zeros(new.shape[0], dtype=torch.bool)
    if stop:
        texts = [tokenizer.decode(row) for row in new.tolist()]
        done |= torch.tensor([any(s in text for s in stop) for text in texts])
    return done


def _cut(ids: list[int], tokenizer: Any, stop: Sequence[str]) -> tuple[list[int], str]:
    """The continuation up to (not including) EOS, and its text up to the first stop string; the tokens
    kept are those whose text lies wholly before the stop string."""
    eos = tokenizer.eos_id
    if eos is not None and eos in ids:
        ids = ids[: ids.index(eos)]
    text = tokenizer.decode(ids)
    hits = [text.index(s) for s in stop if s in text]
    if not hits:
        return ids, text
    end = min(hits)
    keep = max(k for k in range(len(ids) + 1) if len(tokenizer.decode(ids[:k])) <= end)
    return ids[:keep], text[:end]


def _step_hooks(
    edits: Sequence[StepEdit], rows: torch.Tensor, pads: torch.Tensor, begin: int, width: int
) -> list[Hook]:
    """TransformerLens hooks for one step whose tokens sit at padded positions ``begin … begin+width``:
    one per hooked site, only where the step touches it (a role's position in the prompt pass)."""
    by_hook: dict[str, list[StepEdit]] = {}
    for edit in edits:
        positions = edit.site.positions
        if positions is not None:
            at = positions[rows] + pads
            if not bool(((at >= begin) & (at < begin + width)).any()):
                continue  # a prompt role: the cache already holds its edited keys and values
        by_hook.setdefault(edit.site.hook_name, []).append(edit)
    return [(name, _hook(group, rows, pads, begin)) for name, group in by_hook.items()]


def _hook(edits: list[StepEdit], rows: torch.Tensor, pads: torch.Tensor, begin: int) -> Callable[..., Any]:
    def apply(act: torch.Tensor, hook: Any = None) -> torch.Tensor:
        for edit in edits:
            act = _as_edit(edit, act, rows, pads, begin).apply(act)
        return act

    return apply


def _as_edit(edit: StepEdit, act: torch.Tensor, rows: torch.Tensor, pads: torch.Tensor, begin: int) -> Edit:
    """The engine edit of ``edit`` on this step's activation ``act`` ``[b, width, ...]``."""
    site, width = edit.site, act.shape[1]
    zeros = torch.zeros(act.shape, dtype=torch.bool)
    if site.positions is None:
        mask = site.mask(zeros)
    else:
        at = site.positions[rows] + pads - begin
        inside = (at >= 0) & (at < width)
        mask = replace(site, positions=at.clamp(0, width - 1)).mask(zeros)
        mask &= inside.reshape(-1, *([1] * (act.dim() - 1)))
    if edit.shift is not None:
        return Shift(mask, _written(site, torch.zeros_like(act), edit.shift[rows]))
    if edit.values is None:
        return Edit(mask=mask, scale=1.0 if edit.scale is None else float(edit.scale))
    return Edit(mask=mask, values=_written(site, act, edit.values[rows]))


def _written(site: Site, act: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``act`` with the site's slice at every position replaced by each row's ``values`` (the mask then
    picks the positions): the inverse of :meth:`Site.select` at one position."""
    out = act.clone()
    vals = values.to(act.device, act.dtype)[:, None]  # [b, 1, ...]: the same at every position
    if site.head is not None:
        out[:, :, site.head] = vals
    elif site.index is not None:
        out[..., site.index : site.index + 1] = vals
    else:
        out[:] = vals
    return out
