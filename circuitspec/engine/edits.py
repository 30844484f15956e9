"""The edit machinery shared by ablation, patching, scaling, faithfulness and random circuits.

An :class:`Edit` is a boolean mask over one hook's activation plus what to write where the mask is
True (values, or a scale of the activation itself). :func:`edits_for` stacks several circuits' edits
along the batch axis so N circuits run in one pass, each on its own copy of the prompt batch.

:func:`run_edits` runs them as a *partial* pass: it starts at the first block an edit changes, from
that block's input residual stream cached by the shared clean (or corrupted) run, and reads the output
only where the metric does (each prompt's last real token; an encoder's pooled embedding). Nothing
before the first edited block can differ from the shared run, so the result equals a full hooked pass
to float tolerance. Edits on the embeddings start at the tokens; when the shared run did not cache the
stream a pass needs (a spliced dictionary replacing ``hook_resid_pre``, or a stream nobody declared), the
pass starts at the latest earlier block whose input stream it did cache, or at the tokens, rather than
rerunning the shared run.

Memory: how many copies one pass takes comes from the budget in bytes (``circuitspec.engine.memory``,
``CIRCUITSPEC_MEMORY_GB``); an edit's ``values`` may hold one copy's rows, repeated for every copy of the
batch when applied, and its ``mask`` may broadcast over trailing axes (a head's whole ``d_head``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from .architecture import Architecture
from .context import RunContext
from .memory import memory_budget, row_bytes
from .sites import Site

__all__ = [
    "Edit",
    "chain_edits",
    "copies_per_pass",
    "edits_for",
    "first_edited_layer",
    "run_edits",
    "start_hooks",
    "tile_site",
]

_BLOCK = re.compile(r"blocks\.(\d+)\.")


@dataclass
class Edit:
    """Where (``mask``) and what (``values``, or ``scale`` × the activation itself) to write on a hook.

    ``mask`` may broadcast over the activation's trailing axes; ``values`` may hold fewer rows than the
    batch (one copy's), repeated over the batch when applied (:meth:`apply`), so N circuits writing the
    same values share one tensor."""

    mask: torch.Tensor
    values: torch.Tensor | None = None
    scale: torch.Tensor | float | None = None

    def apply(self, act: torch.Tensor) -> torch.Tensor:
        mask = self.mask.to(act.device)
        if self.values is not None:
            new = _tiled(self.values.to(act.device, act.dtype), act.shape[0])
        else:
            scale = 1.0 if self.scale is None else self.scale
            if isinstance(scale, torch.Tensor):
                scale = scale.to(act.device, act.dtype).reshape(-1, *([1] * (act.dim() - 1)))
            new = act * scale
        return torch.where(mask, new, act)

    def hook(self, act: torch.Tensor, hook: Any = None) -> torch.Tensor:
        """The edit as a TransformerLens forward hook."""
        return self.apply(act)

    def same_as(self, other: Edit) -> bool:
        """Whether both write the same thing at the same places (rows of equal count)."""
        if type(other) is not Edit or not torch.equal(self.mask, other.mask):
            return False
        if self.values is not None and other.values is not None:
            return torch.equal(self._written(), other._written())
        scalars = not isinstance(self.scale, torch.Tensor) and not isinstance(other.scale, torch.Tensor)
        return self.values is None and other.values is None and scalars and self.scale == other.scale

    def _written(self) -> torch.Tensor:
        """The values written where the mask is True (one row of values per mask row)."""
        assert self.values is not None
        values = _tiled(self.values, self.mask.shape[0])
        return values[self.mask.to(values.device).expand_as(values)]

    def take(self, rows: torch.Tensor) -> Edit:
        """The same edit for batch rows ``rows`` only (whole copies when ``values`` hold one copy's)."""
        scale = self.scale[rows] if isinstance(self.scale, torch.Tensor) else self.scale
        values = self.values
        if values is not None and values.shape[0] == self.mask.shape[0]:
            values = values[rows.to(values.device)]
        elif values is not None:  # one copy's rows: the same for every whole copy taken
            assert rows.numel() % values.shape[0] == 0, "tiled values are taken by whole copies"
        return Edit(self.mask[rows.to(self.mask.device)], values, scale)


def _tiled(values: torch.Tensor, rows: int) -> torch.Tensor:
    """``values`` repeated along the batch axis to ``rows`` rows (a no-op when they already have them)."""
    if values.shape[0] == rows:
        return values
    return values.repeat(rows // values.shape[0], *([1] * (values.dim() - 1)))


class _Chain(Edit):
    """Edits of one hook applied in order (e.g. two heads of one layer, each scaled by its own sign)."""

    def __init__(self, edits: Sequence[Edit]) -> None:
        mask = edits[0].mask
        for edit in edits[1:]:
            mask = mask | edit.mask
        super().__init__(mask=mask)  # where any of them writes
        self.edits = list(edits)

    def apply(self, act: torch.Tensor) -> torch.Tensor:
        for edit in self.edits:
            act = edit.apply(act)
        return act

    def take(self, rows: torch.Tensor) -> Edit:
        return _Chain([edit.take(rows) for edit in self.edits])

    def same_as(self, other: Edit) -> bool:
        return False  # chains (per-row scalings) are never merged


def chain_edits(edits: Sequence[Edit]) -> Edit:
    """One edit applying ``edits`` (all on the same hook) in order."""
    return edits[0] if len(edits) == 1 else _Chain(edits)


def copies_per_pass(ctx: RunContext, wanted: int) -> int:
    """How many copies of the prompt batch fit one pass under the memory budget (at least 1).

    A copy costs, per prompt, its end-token logits plus activations at every position
    (``memory.row_bytes``; edited passes unembed only the last token, see :func:`run_edits`).
    """
    prompts = ctx.prompts
    per_copy = len(prompts) * row_bytes(ctx.adapter.arch, int(prompts.tokens.shape[1]))
    return max(1, min(wanted, memory_budget(ctx.device) // max(per_copy, 1)))


def tile_site(site: Site, times: int) -> Site:
    """The same site for a batch repeated ``times`` along the batch axis."""
    if site.positions is None or times == 1:
        return site
    return replace(site, positions=site.positions.repeat(times))


def edits_for(
    circuits: Sequence[Sequence[Site]],
    sources: dict[int, torch.Tensor | None],
    shapes: dict[str, torch.Size],
    alpha: float | None = None,
) -> dict[str, Edit]:
    """Stack each circuit's edits along the batch axis: circuit c acts on rows ``c·n … (c+1)·n``.

    ``sources[id(site)]`` is what to write at the site (activation-shaped ``[n, ...]``) or None to
    scale the activation by ``alpha``; ``shapes`` gives each hook's ``[n, ...]`` shape.
    """
    hooks = sorted({site.hook_name for circuit in circuits for site in circuit})
    given = [v for v in sources.values() if v is not None]
    dtype = given[0].dtype if given else torch.float32  # keep float64 sources exact
    edits: dict[str, Edit] = {}
    for hook in hooks:
        shape = shapes[hook]
        masks, values = [], []
        scaled = False
        for circuit in circuits:
            mask = torch.zeros(shape, dtype=torch.bool)
            value = torch.zeros(shape, dtype=dtype)
            for site in (s for s in circuit if s.hook_name == hook):
                site_mask = site.mask(mask)
                mask |= site_mask
                source = sources[id(site)]
                if source is None:
                    scaled = True
                else:
                    value = torch.where(site_mask, source.to(value.dtype).cpu(), value)
            masks.append(mask)
            values.append(value)
        edits[hook] = Edit(
            mask=torch.cat(masks),
            values=None if scaled else torch.cat(values),
            scale=alpha if scaled else None,
        )
    return edits


def _edit_layer(hook: str, arch: Architecture) -> int | None:
    """The first block an edit on ``hook`` changes (None: before block 0, e.g. the embeddings)."""
    match = _BLOCK.match(hook)
    if match is None:
        return None
    layer = int(match.group(1))
    if arch.stream_is_sum and hook == f"blocks.{layer}.hook_resid_post":
        return layer + 1  # pre-norm resid_post L *is* the stream entering block L + 1
    return layer


def first_edited_layer(hooks: Iterable[str], arch: Architecture) -> int | None:
    """The block a pass with edits on ``hooks`` may start at (None: it must start at the tokens)."""
    layers = [_edit_layer(hook, arch) for hook in hooks]
    if not layers or any(layer is None for layer in layers):
        return None
    return min(layer for layer in layers if layer is not None)


def start_hooks(hooks: Iterable[str], arch: Architecture) -> list[str]:
    """What the shared runs must cache for edits on ``hooks`` to start mid-model (the shared runs keep
    every block's input stream anyway, see ``RunContext``; kernels still ask, to say what they read)."""
    layer = first_edited_layer(hooks, arch)
    return [] if layer is None else [arch.stream_entering(layer)]


def _run_of(ctx: RunContext, tokens: torch.Tensor) -> str | None:
    """Which shared run ``tokens`` are (``clean``, ``corrupt``), None for any other batch."""
    if tokens is ctx.prompts.tokens:
        return "clean"
    if tokens is ctx.prompts.corrupt_tokens:
        return "corrupt"
    return None


def _earliest(layers: Sequence[int | None]) -> int | None:
    """The first of some edits' blocks (None when any acts before block 0)."""
    known = [layer for layer in layers if layer is not None]
    return None if len(known) < len(layers) else min(known)


def _copy_starts(edits: dict[str, Edit], copies: int, n: int, arch: Architecture) -> list[int | None]:
    """Per copy of the batch, the first block its own edits change (None: it starts at the tokens).

    A copy no edit touches joins the earliest-starting copies, so it costs no pass of its own.
    """
    layers = {hook: _edit_layer(hook, arch) for hook in edits}
    mine = []
    for c in range(copies):
        mine.append([layers[h] for h, e in edits.items() if bool(e.mask[c * n : (c + 1) * n].any())])
    edited = [m for m in mine if m]
    earliest = _earliest([_earliest(m) for m in edited]) if edited else None
    return [_earliest(m) if m else earliest for m in mine]


def _cached_start(ctx: RunContext, run: str, layer: int) -> tuple[int, torch.Tensor] | None:
    """The latest block at or before ``layer`` whose input stream the shared ``run`` cached, with it."""
    arch = ctx.adapter.arch
    for start in range(layer, -1, -1):
        resid = ctx.cached_activation(run, arch.stream_entering(start))
        if resid is not None:
            return start, resid
    return None


def _group_pass(
    ctx: RunContext,
    tokens: torch.Tensor,
    run: str | None,
    edits: dict[str, Edit],
    layer: int | None,
    count: int,
) -> torch.Tensor:
    """One counted pass for ``count`` copies whose edits all act at or after block ``layer``."""
    arch = ctx.adapter.arch
    start = None if layer is None or run is None else _cached_start(ctx, run, layer)
    if start is None or run is None:  # from the tokens (embedding edits, or no stream is cached)
        batch = tokens.repeat(count, 1) if count > 1 else tokens
        return ctx.forward(batch, [(name, edit.hook) for name, edit in edits.items()])
    begin, resid = start
    if begin == layer:
        after_attention = _after_attention(ctx, run, edits, layer, count, resid)
        if after_attention is not None:
            return after_attention
    resid = resid.repeat(count, *([1] * (resid.dim() - 1)))
    before = f"blocks.{begin - 1}.hook_resid_post"  # pre-norm: the same stream as the start's input
    if arch.stream_is_sum and before in edits:  # that hook would not fire in a pass starting after it
        resid = edits[before].apply(resid)
    hooks = [(name, edit.hook) for name, edit in edits.items() if name != before]
    return ctx.forward(resid, hooks, start_at_layer=begin)


def _after_attention(
    ctx: RunContext, run: str, edits: dict[str, Edit], layer: int, count: int, resid: torch.Tensor
) -> torch.Tensor | None:
    """A pass whose only edits are on ``hook_z`` of block ``layer`` starts after that block's attention:
    its output is recomputed from the cached ``z`` with the edit applied (``Σ_h z_h W_O[h] + b_O``), so
    the block's attention never runs again. None where the architecture or the cache do not allow it."""
    z_hook = f"blocks.{layer}.attn.hook_z"
    adapter = ctx.adapter
    z = ctx.cached_activation(run, z_hook)
    if set(edits) != {z_hook} or z is None or not adapter.arch.attention_adds_heads:
        return None
    z = edits[z_hook].apply(z.repeat(count, *([1] * (z.dim() - 1))))
    with torch.inference_mode():
        resid_mid = resid.repeat(count, 1, 1) + adapter.attention_output(layer, z)
        resid_post = resid_mid if adapter.arch.attn_only else resid_mid + adapter.mlp_call(layer, resid_mid)
    ctx.counter.layer_passes += z.shape[0] / adapter.arch.n_layers  # block ``layer``, counted whole
    return ctx.forward(resid_post, start_at_layer=layer + 1)


def _rows(copy: int, n: int) -> torch.Tensor:
    return torch.arange(copy * n, (copy + 1) * n)


def _representatives(edits: dict[str, Edit], copies: int, n: int) -> list[int]:
    """Per copy, the first copy with exactly the same edits (itself when no earlier copy has them):
    identical circuits (e.g. repeated random draws) then run once."""
    reps: list[int] = []
    buckets: dict[bytes, list[int]] = {}
    for copy in range(copies):
        mine = {hook: edit.take(_rows(copy, n)) for hook, edit in edits.items()}
        key = b"".join(hook.encode() + edit.mask.cpu().numpy().tobytes() for hook, edit in mine.items())
        same = [
            other
            for other in buckets.get(key, [])
            if all(mine[hook].same_as(edits[hook].take(_rows(other, n))) for hook in mine)
        ]
        reps.append(same[0] if same else copy)
        if not same:
            buckets.setdefault(key, []).append(copy)
    return reps


def run_edits(
    ctx: RunContext,
    tokens: torch.Tensor,
    edits: dict[str, Edit],
    copies: int = 1,
    run: str | None = None,
    group: bool | None = None,
) -> torch.Tensor:
    """Counted passes over ``tokens`` repeated ``copies`` times with ``edits`` applied: end-token logits
    ``[copies·n, vocab]`` (encoders: embeddings ``[copies·n, d]``).

    ``run`` names the shared run ``tokens`` belong to (``clean`` / ``corrupt``; by default recognised
    from ``tokens`` themselves); passes start from that run's cached stream. ``group``: copies are
    grouped by the first block their own edits change and each group's pass starts there (least
    compute: the default on CPU, which is compute-bound); otherwise one pass over all copies starts at
    the earliest (fewest kernel launches: the default on accelerators). Copies with identical edits
    run once.
    """
    n = len(ctx.prompts)
    reps = _representatives(edits, copies, n) if copies > 1 else [0]
    distinct = sorted(set(reps))
    if len(distinct) == copies:
        return _run_copies(ctx, tokens, edits, copies, run, group)
    rows = torch.cat([_rows(c, n) for c in distinct])
    out = _run_copies(ctx, tokens, {h: e.take(rows) for h, e in edits.items()}, len(distinct), run, group)
    where = {copy: i for i, copy in enumerate(distinct)}
    return torch.cat([out[where[rep] * n : (where[rep] + 1) * n] for rep in reps])


def _run_copies(
    ctx: RunContext,
    tokens: torch.Tensor,
    edits: dict[str, Edit],
    copies: int,
    run: str | None,
    group: bool | None,
) -> torch.Tensor:
    """:func:`run_edits` for copies that all differ."""
    run = run or _run_of(ctx, tokens)
    n = len(ctx.prompts)
    starts = _copy_starts(edits, copies, n, ctx.adapter.arch) if run is not None else [None] * copies
    if not (ctx.device.type == "cpu" if group is None else group):
        starts = [_earliest(starts)] * copies
    groups: dict[int | None, list[int]] = {}
    for copy, start in enumerate(starts):
        groups.setdefault(start, []).append(copy)
    if len(groups) == 1:
        return _group_pass(ctx, tokens, run, edits, starts[0], copies)
    out: torch.Tensor | None = None
    for start, members in groups.items():
        rows = torch.cat([torch.arange(c * n, (c + 1) * n) for c in members])
        mine = {hook: edit.take(rows) for hook, edit in edits.items()}
        mine = {hook: edit for hook, edit in mine.items() if bool(edit.mask.any())}
        result = _group_pass(ctx, tokens, run, mine, start, len(members))
        if out is None:
            out = result.new_empty((copies * n, *result.shape[1:]))
        out[rows.to(out.device)] = result
    assert out is not None
    return out
