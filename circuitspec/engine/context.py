"""Shared state for running claims on one prompt set: the model, cached runs, pass counting.

Every forward pass goes through :meth:`RunContext.forward` (the model adapter underneath), so passes,
real tokens and layer work are counted, and the clean / corrupted runs (logits and caches) are
computed once and shared across claims. The shared runs keep logits only at each prompt's last real
token (``[n, vocab]``, never ``[n, pos, vocab]``) and the activations the claims asked for; edited
passes start from the residual stream entering their first edited block
(:meth:`RunContext.cached_activation`, ``circuitspec.engine.edits.run_edits``), which the planner asks
for with the rest (:meth:`RunContext.declare`).
A context nobody declared its needs to keeps every block's input stream, so any edit can start mid-model.
The shared runs go over the prompts in chunks that fit the memory budget (``circuitspec.engine.memory``);
:func:`release_runs` frees a prompt set's runs once its last claim is done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .adapter import ModelAdapter, adapt
from .memory import memory_budget, row_bytes
from .prompts import PromptSet
from .shared_runs import slice_run

__all__ = ["Hook", "PassCounter", "RunContext", "release_runs"]

Hook = tuple[str | Callable[[str], bool], Callable[..., Any]]


@dataclass
class PassCounter:
    """Counted work: ``forward_passes`` rows (one per prompt sequence, partial passes included),
    ``tokens`` real (unpadded) tokens, ``layer_passes`` full-pass equivalents (rows × the share of
    blocks a pass ran: a pass from block L of an N-block model counts (N − L) / N)."""

    forward_passes: int = 0
    tokens: int = 0
    layer_passes: float = 0.0

    def add(self, batch: int, n_tokens: int, share: float = 1.0) -> None:
        self.forward_passes += batch  # one pass per prompt sequence
        self.tokens += n_tokens
        self.layer_passes += batch * share


@dataclass
class RunContext:
    """``model`` is a HookedTransformer; ``metric(logits, prompts, corrupt=False) -> [n]``."""

    model: Any
    prompts: PromptSet
    metric: Callable[..., torch.Tensor]
    counter: PassCounter = field(default_factory=PassCounter)
    _cache: dict[str, Any] = field(default_factory=dict)
    tokenizer: Any = None  # the model's TextTokenizer, for claims that decode text (generation)

    @classmethod
    def of_loaded(cls, loaded: Any, prompts: PromptSet, metric: Callable[..., torch.Tensor]) -> RunContext:
        """A context on a ``LoadedModel`` (its model and tokenizer), for code that reads activations
        outside the planner (cross-model claims, commands)."""
        return cls(loaded.model, prompts, metric, tokenizer=loaded.tokenizer)

    @property
    def adapter(self) -> ModelAdapter:
        """The model behind the adapter interventions use (weights, partial passes, unembedding)."""
        return self.cached("_adapter", lambda: adapt(self.model))

    @property
    def device(self) -> torch.device:
        return self.adapter.device

    def copies(self, rows: int) -> int:
        """How many whole copies of the prompt set ``rows`` batch rows are (0: not a whole number)."""
        n = len(self.prompts)
        return rows // n if n and rows % n == 0 else 0

    def attention_mask(self, rows: int) -> torch.Tensor:
        """``[rows, pos]`` 1 on real tokens for ``rows // n`` stacked copies of the prompt set."""
        return self.prompts.attention_mask.repeat(max(self.copies(rows), 1), 1)[:rows]

    def forward(
        self,
        inputs: torch.Tensor,
        hooks: Sequence[Hook] = (),
        *,
        start_at_layer: int | None = None,
        stop_at_layer: int | None = None,
        ends_only: bool = True,
        rows: slice | None = None,
    ) -> torch.Tensor:
        """One counted pass through the adapter over ``inputs``: token ids ``[rows, pos]`` (copies of
        the prompt set, or the prompts ``rows`` of it), or the residual stream entering block
        ``start_at_layer`` ``[rows, pos, d]``.

        Returns the residual stream before block ``stop_at_layer`` when given; else logits read at each
        prompt's last real token ``[rows, vocab]`` (``ends_only``; an encoder: sentence embeddings
        ``[rows, d]``) or at every position. Encoders get the prompts' attention mask.
        """
        arch = self.adapter.arch
        first = start_at_layer or 0
        last = arch.n_layers if stop_at_layer is None else stop_at_layer
        lengths, mask = self._row_layout(inputs.shape[0], rows)
        n_tokens = int(lengths.sum()) if lengths is not None else inputs.shape[0] * int(inputs.shape[1])
        self.counter.add(inputs.shape[0], n_tokens, max(last - first, 0) / max(arch.n_layers, 1))
        ends = None
        if ends_only and lengths is not None and not arch.encoder:
            ends = lengths - 1
        return self.adapter.forward(
            inputs,
            hooks,
            start_at_layer=start_at_layer,
            stop_at_layer=stop_at_layer,
            attention_mask=mask if arch.encoder else None,
            ends=ends,
        )

    def _row_layout(self, count: int, rows: slice | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Real lengths ``[count]`` and attention mask of a batch of ``count`` rows: the prompts ``rows``,
        or whole copies of the prompt set (None, None when it is neither)."""
        if rows is not None:
            return self.prompts.lengths[rows], self.prompts.attention_mask[rows]
        copies = self.copies(count)
        if not copies:
            return None, None
        return self.prompts.lengths.repeat(copies), self.attention_mask(count)

    def run(
        self,
        tokens: torch.Tensor,
        fwd_hooks: Sequence[Hook] = (),
        cache_names: Callable[[str], bool] | Sequence[str] | None = None,
        last_only: bool = False,
        rows: slice | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One counted full pass (:meth:`forward`); returns logits and the activations in ``cache_names``.

        ``last_only``: logits only at each prompt's last real token (``[rows, vocab]``). ``rows``: the
        prompts of the set ``tokens`` are (default: whole copies of it).
        """
        cache: dict[str, torch.Tensor] = {}
        hooks = list(fwd_hooks)
        if cache_names is not None:
            names = cache_names if callable(cache_names) else (lambda n, s=set(cache_names): n in s)

            def save(act: torch.Tensor, hook: Any) -> None:
                cache[hook.name] = act.detach()

            hooks = [(names, save), *hooks]  # save the *clean* value before other hooks edit it
        return self.forward(tokens, hooks, ends_only=last_only, rows=rows), cache

    def cached_activation(self, run: str, name: str) -> torch.Tensor | None:
        """Activation ``name`` of the shared ``run`` (``clean`` / ``corrupt``) if it was cached, without
        running anything (None otherwise)."""
        store = self._cache.get(run)
        return None if store is None else store[1].get(name)

    def need(self, names: Sequence[str]) -> None:
        """Ask for activations in the shared clean / corrupted caches before they are first computed."""
        self._cache.setdefault("_needed", set()).update(names)

    def declare(self, names: Sequence[str]) -> None:
        """Say up front everything the claims on this prompt set read from the shared runs, the streams
        their edited passes start from included: the runs then cache only these (see the module doc)."""
        self.need(names)
        self._cache["_declared"] = True

    def clean(self, names: Sequence[str] = ()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The clean run's end-token logits ``[n, vocab]`` and activations (``names`` plus those asked
        for with :meth:`need`)."""
        return self._shared_run("clean", self.prompts.tokens, names)

    def corrupted(self, names: Sequence[str] = ()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The corrupted twins' run, shared the same way as :meth:`clean`."""
        return self._shared_run("corrupt", self.prompts.corrupt_tokens, names)

    def _shared_run(
        self, key: str, tokens: torch.Tensor, names: Sequence[str]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run once per key; rerun (counted) only when an activation nobody asked for is needed.

        Names the model has no hook for, or whose hook never fires (e.g. ``hook_q_input`` without
        split inputs), count as covered once asked for, so they never trigger a rerun.
        """
        store = self._cache.get(key)
        covered: set[str] = self._cache.setdefault(f"{key}:covered", set())
        known = self.adapter.has_hook
        names = [n for n in names if known(n)]  # e.g. no ln_final without LayerNorm
        if store is None or set(names) - covered:
            wanted = set(self._cache.get("_needed", set())) | set(names) | covered
            if not self._cache.get("_declared"):  # nobody said where edited passes start: keep them all
                wanted |= set(self.adapter.arch.stream_hooks)
            wanted = {n for n in wanted if known(n)}
            self._cache.pop(key, None)  # free the old run before its replacement is computed
            source = self._cache.get(f"{key}:from")
            if source is not None:  # this prompt set's prompts are rows of a larger set's run
                self._cache[key] = slice_run(source.context.shared_run(key, sorted(wanted)), source, wanted)
            else:
                self._cache[key] = self._chunked_run(tokens, sorted(wanted))
            covered |= wanted
        return self._cache[key]

    def prompts_per_pass(self) -> int:
        """How many prompts one shared-run pass takes under the memory budget (at least 1)."""
        per_row = row_bytes(self.adapter.arch, int(self.prompts.tokens.shape[1]))
        return max(1, memory_budget(self.device) // per_row)

    def _chunked_run(
        self, tokens: torch.Tensor, names: list[str]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The shared run over ``tokens`` (one row per prompt), in chunks of prompts that fit the memory
        budget; end-token logits ``[n, vocab]`` and the ``names`` activations of every prompt."""
        n = tokens.shape[0]
        step = self.prompts_per_pass()
        if step >= n:
            return self.run(tokens, cache_names=names, last_only=True)
        logits: torch.Tensor | None = None
        cache: dict[str, torch.Tensor] = {}
        for start in range(0, n, step):
            rows = slice(start, min(start + step, n))
            part, part_cache = self.run(tokens[rows], cache_names=names, last_only=True, rows=rows)
            if logits is None:
                logits = part.new_empty((n, *part.shape[1:]))
            logits[rows] = part
            for name, act in part_cache.items():
                if name not in cache:
                    cache[name] = act.new_empty((n, *act.shape[1:]))
                cache[name][rows] = act
        assert logits is not None
        return logits, cache

    def shared_run(self, key: str, names: Sequence[str] = ()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The shared ``clean`` or ``corrupt`` run (as :meth:`clean` / :meth:`corrupted`)."""
        return self.clean(names) if key == "clean" else self.corrupted(names)

    def reference(self) -> torch.Tensor:
        """Encoders: ``[n, d]`` embeddings of each prompt's ``reference`` text (one hook-free pass)."""
        tokens = self.prompts.reference_tokens
        if tokens is None:
            raise ValueError("these prompts have no 'reference' texts")

        def embed() -> torch.Tensor:
            self.counter.add(tokens.shape[0], int((tokens != self.prompts.pad_id).sum()))
            return self.adapter.forward(tokens)

        return self.cached("reference", embed)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute ``key`` once per context (clean run, corrupted run, means, ...)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


def release_runs(cache: dict[str, Any]) -> None:
    """Free what a prompt set's context computed (shared runs, means, scaled outputs, ...), keeping what
    it was told (its needs, where its runs come from) so a later call reruns rather than fails."""
    for key in list(cache):
        if not key.startswith("_") and not key.endswith(":from"):
            del cache[key]
