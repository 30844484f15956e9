"""Shared state for running claims on one prompt set: the model, cached runs, pass counting.

Every forward pass goes through :meth:`RunContext.run` so passes and tokens are counted, and the
clean / corrupted runs (logits and caches) are computed once and shared across claims.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .adapter import ModelAdapter, adapt
from .prompts import PromptSet

__all__ = ["PassCounter", "RunContext"]

Hook = tuple[str | Callable[[str], bool], Callable[..., Any]]


@dataclass
class PassCounter:
    forward_passes: int = 0
    tokens: int = 0

    def add(self, batch: int, n_tokens: int) -> None:
        self.forward_passes += batch  # one pass per prompt sequence
        self.tokens += n_tokens


@dataclass
class RunContext:
    """``model`` is a HookedTransformer; ``metric(logits, prompts, corrupt=False) -> [n]``."""

    model: Any
    prompts: PromptSet
    metric: Callable[..., torch.Tensor]
    counter: PassCounter = field(default_factory=PassCounter)
    _cache: dict[str, Any] = field(default_factory=dict)
    seed: int = 0  # seeds every resampling a claim does (resample ablation, scrubbing, random circuits)

    @property
    def adapter(self) -> ModelAdapter:
        """The model behind the adapter interventions use (weights, partial passes, unembedding)."""
        return self.cached("_adapter", lambda: adapt(self.model))

    @property
    def device(self) -> torch.device:
        device = self.model.cfg.device
        return device if isinstance(device, torch.device) else torch.device(device)

    def run(
        self,
        tokens: torch.Tensor,
        fwd_hooks: Sequence[Hook] = (),
        cache_names: Callable[[str], bool] | Sequence[str] | None = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One batched, counted forward pass; returns logits and the activations named in ``cache_names``.

        ``last_only``: unembed only each prompt's last real token, so logits are ``[batch, 1, vocab]``
        (the metrics read them as they are). For batches of whole copies of the prompt set (``k·n``
        rows) this saves the ``pos × vocab`` unembedding that dominates small-batch cost.
        """
        model = self.model
        cache: dict[str, torch.Tensor] = {}
        hooks = list(fwd_hooks)
        if cache_names is not None:
            names = cache_names if callable(cache_names) else (lambda n, s=set(cache_names): n in s)

            def save(act: torch.Tensor, hook: Any) -> None:
                cache[hook.name] = act.detach()

            hooks = [(names, save), *hooks]  # save the *clean* value before other hooks edit it
        n = len(self.prompts)
        copies = tokens.shape[0] // n if n and tokens.shape[0] % n == 0 else 0
        if last_only and copies and not getattr(model, "is_encoder", False):  # encoders pool every token
            ends = (self.prompts.lengths - 1).repeat(copies).to(self.device)
            rows = torch.arange(tokens.shape[0], device=self.device)

            def keep_last(act: torch.Tensor, hook: Any) -> torch.Tensor:
                return act[rows, ends][:, None]  # final LN and unembed act per position

            hooks.append((f"blocks.{model.cfg.n_layers - 1}.hook_resid_post", keep_last))
        if copies:  # count real tokens only, not padding
            self.counter.add(tokens.shape[0], copies * int(self.prompts.lengths.sum()))
        else:
            self.counter.add(tokens.shape[0], tokens.numel())
        with torch.inference_mode():
            logits = model.run_with_hooks(tokens.to(self.device), fwd_hooks=hooks)
        return logits, cache

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
        known = getattr(self.model, "hook_dict", None)
        names = [n for n in names if known is None or n in known]  # e.g. no ln_final without LayerNorm
        if store is None or set(names) - covered:
            wanted = set(self._cache.get("_needed", set())) | set(names) | covered
            wanted = {n for n in wanted if known is None or n in known}
            self._cache[key] = self.run(tokens, cache_names=sorted(wanted))
            covered |= wanted
        return self._cache[key]

    def reference(self) -> torch.Tensor:
        """Encoders: ``[n, d]`` embeddings of each prompt's ``reference`` text (one hook-free pass)."""
        tokens = self.prompts.reference_tokens
        if tokens is None:
            raise ValueError("these prompts have no 'reference' texts")

        def embed() -> torch.Tensor:
            self.counter.add(tokens.shape[0], int((tokens != self.prompts.pad_id).sum()))
            with torch.inference_mode():
                return self.model(tokens.to(self.device))

        return self.cached("reference", embed)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute ``key`` once per context (clean run, corrupted run, means, ...)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]
