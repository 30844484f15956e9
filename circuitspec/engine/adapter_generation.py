"""The adapter's generation methods: a key/value cache and next-token logits (TransformerLens' own cache).

Kept apart from :mod:`circuitspec.engine.adapter` so each file stays small; like the adapter, this
module may touch the model (``tests/test_adapter.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

__all__ = ["Hook", "KeyValueCacheMethods"]

Hook = tuple[str | Callable[[str], bool], Callable[..., Any]]


class KeyValueCacheMethods:
    """Mixin for :class:`~circuitspec.engine.adapter.HookedTransformerAdapter` (``self.model``)."""

    model: Any

    @property
    def device(self) -> torch.device:  # the adapter's own property overrides this
        raise NotImplementedError

    def kv_cache(self, rows: int) -> Any:
        """An empty key/value cache for ``rows`` sequences (TransformerLens' own). Grouped-query attention
        loads ungrouped here (one key/value copy per query head), so the cache holds ``n_heads`` copies."""
        from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

        cfg = self.model.cfg
        cache = TransformerLensKeyValueCache.init_cache(cfg, self.device, rows)
        if getattr(cfg, "ungroup_grouped_query_attention", False):
            for entry in cache.entries:
                entry.past_keys = entry.past_keys.new_empty((rows, 0, cfg.n_heads, cfg.d_head))
                entry.past_values = entry.past_values.new_empty((rows, 0, cfg.n_heads, cfg.d_head))
        return cache

    def next_logits(
        self,
        tokens: torch.Tensor,
        hooks: Sequence[Hook],
        attention_mask: torch.Tensor,
        cache: Any = None,
    ) -> torch.Tensor:
        """Next-token logits ``[rows, vocab]`` after left-padded ``tokens`` ``[rows, new]`` with ``hooks``;
        ``attention_mask`` covers the new tokens, and with a ``cache`` (:meth:`kv_cache`) the tokens
        continue the cached ones (TransformerLens masks and positions left padding itself)."""
        device = self.device
        ungrouped = cache is not None and getattr(self.model.cfg, "ungroup_grouped_query_attention", False)
        with (
            torch.inference_mode(),
            self.model.hooks(fwd_hooks=list(hooks)),
            _cache_check(self.model.cfg, ungrouped),
        ):
            logits = self.model(
                tokens.to(device), attention_mask=attention_mask.to(device), past_kv_cache=cache
            )
        return logits[:, -1]


@contextlib.contextmanager
def _cache_check(cfg: Any, ungrouped: bool) -> Iterator[None]:
    """TransformerLens 3.9 checks a key/value cache's head count against ``n_key_value_heads`` even when
    it loads grouped-query attention ungrouped (keys and values then hold ``n_heads`` copies, and so
    does the cache); only that check reads the setting during a forward pass, so it is lifted for it."""
    if not ungrouped:
        yield
        return
    saved = cfg.n_key_value_heads
    cfg.n_key_value_heads = None
    try:
        yield
    finally:
        cfg.n_key_value_heads = saved
