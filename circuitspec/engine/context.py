"""Shared state for running claims on one prompt set: the model, cached runs, pass counting.

Every forward pass goes through :meth:`RunContext.forward` (the model adapter underneath), so passes,
real tokens and layer work are counted, and the clean / corrupted runs (logits and caches) are
computed once and shared across claims. The shared runs always keep the residual stream entering every
block (``Architecture.stream_hooks``): edited passes start there, at their first edited block
(:meth:`RunContext.cached_activation`, ``circuitspec.engine.edits.run_edits``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .adapter import ModelAdapter, adapt
from .prompts import PromptSet
from .shared_runs import slice_run

__all__ = ["Hook", "PassCounter", "RunContext"]

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
    ) -> torch.Tensor:
        """One counted pass through the adapter over ``inputs``: token ids ``[rows, pos]`` (copies of
        the prompt set), or the residual stream entering block ``start_at_layer`` ``[rows, pos, d]``.

        Returns the residual stream before block ``stop_at_layer`` when given; else logits read at each
        prompt's last real token ``[rows, vocab]`` (``ends_only``; an encoder: sentence embeddings
        ``[rows, d]``) or at every position. Encoders get the prompts' attention mask.
        """
        arch = self.adapter.arch
        rows = inputs.shape[0]
        copies = self.copies(rows)
        first = start_at_layer or 0
        last = arch.n_layers if stop_at_layer is None else stop_at_layer
        n_tokens = copies * int(self.prompts.lengths.sum()) if copies else rows * int(inputs.shape[1])
        self.counter.add(rows, n_tokens, max(last - first, 0) / max(arch.n_layers, 1))
        ends = None
        if ends_only and copies and not arch.encoder:
            ends = (self.prompts.lengths - 1).repeat(copies)
        return self.adapter.forward(
            inputs,
            hooks,
            start_at_layer=start_at_layer,
            stop_at_layer=stop_at_layer,
            attention_mask=self.attention_mask(rows) if arch.encoder and copies else None,
            ends=ends,
        )

    def run(
        self,
        tokens: torch.Tensor,
        fwd_hooks: Sequence[Hook] = (),
        cache_names: Callable[[str], bool] | Sequence[str] | None = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One counted full pass (:meth:`forward`); returns logits and the activations in ``cache_names``.

        ``last_only``: logits only at each prompt's last real token (``[rows, vocab]``).
        """
        cache: dict[str, torch.Tensor] = {}
        hooks = list(fwd_hooks)
        if cache_names is not None:
            names = cache_names if callable(cache_names) else (lambda n, s=set(cache_names): n in s)

            def save(act: torch.Tensor, hook: Any) -> None:
                cache[hook.name] = act.detach()

            hooks = [(names, save), *hooks]  # save the *clean* value before other hooks edit it
        return self.forward(tokens, hooks, ends_only=last_only), cache

    def cached_activation(self, run: str, name: str) -> torch.Tensor | None:
        """Activation ``name`` of the shared ``run`` (``clean`` / ``corrupt``) if it was cached, without
        running anything (None otherwise)."""
        store = self._cache.get(run)
        return None if store is None else store[1].get(name)

    def need(self, names: Sequence[str]) -> None:
        """Ask for activations in the shared clean / corrupted caches before they are first computed."""
        self._cache.setdefault("_needed", set()).update(names)

    def clean(self, names: Sequence[str] = ()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The clean run's logits and activations (``names`` plus those asked for with :meth:`need`)."""
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
            wanted |= set(self.adapter.arch.stream_hooks)  # where edited passes start (run_edits)
            wanted = {n for n in wanted if known(n)}
            source = self._cache.get(f"{key}:from")
            if source is not None:  # this prompt set's prompts are rows of a larger set's run
                self._cache[key] = slice_run(source.context.shared_run(key, sorted(wanted)), source)
            else:
                self._cache[key] = self.run(tokens, cache_names=sorted(wanted))
            covered |= wanted
        return self._cache[key]

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
