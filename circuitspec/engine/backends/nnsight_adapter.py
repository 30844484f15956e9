"""The nnsight backend: a Hugging Face Llama-style causal LM wrapped by nnsight, as a model adapter.

It answers the same :class:`~circuitspec.engine.adapter.ModelAdapter` calls as the TransformerLens
adapter. Hook functions (``fn(activation, hook)``, TransformerLens' convention, ``hook.name`` its name)
run inside an nnsight trace on the Hugging Face values :mod:`.nnsight_sites` maps each hook name to,
viewed in TransformerLens' shapes and written back when the site is editable. A pass from block ``L``
skips blocks ``0..L-1`` (nnsight's ``skip``) with the given stream as their output. Weights are read off
the Hugging Face modules (``o_proj`` is ``W_O``, ``down_proj`` ``W_out``, ``lm_head`` ``W_U``); the final
RMSNorm keeps its weight, where TransformerLens folds it into ``W_U`` (same logits).

``remote=True`` sends every trace to NDIF (nnsight reads the key from ``NDIF_API_KEY``); NDIF runs only
code it allows, so circuitspec's hook functions may be refused there (docs/REFERENCE.md). Kinds that
need more than passes with hooks (path patching, scrubbing) are refused by :meth:`check_claim`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch

from circuitspec.errors import CircuitSpecError
from circuitspec.spec.backends import NNSIGHT_KINDS, backend_refusal

from ..architecture import Architecture
from .nnsight_sites import HFSite, hf_site, site_names
from .nnsight_weights import HFWeights

__all__ = ["SUPPORTED_KINDS", "NNsightAdapter", "architecture_of"]

Hook = tuple[str | Callable[[str], bool], Callable[..., Any]]

SUPPORTED_KINDS = NNSIGHT_KINDS  # passes with hooks on values a Hugging Face module hands over
_NNSIGHT_SPEC = SimpleNamespace(uses_nnsight=True)  # what backend_refusal reads of a model spec
# Llama-style module layout (nnsight_sites) without attention biases: TransformerLens folds a value bias
# into b_O, so a head's z would differ between the backends (qwen2 has one)
FAMILIES = ("llama", "mistral")


def architecture_of(config: Any) -> Architecture:
    """The :class:`Architecture` of a Hugging Face Llama-style decoder config."""
    heads = int(config.num_attention_heads)
    kv = int(getattr(config, "num_key_value_heads", None) or heads)
    d_model = int(config.hidden_size)
    return Architecture(
        n_layers=int(config.num_hidden_layers),
        n_heads=heads,
        d_model=d_model,
        d_head=int(getattr(config, "head_dim", None) or d_model // heads),
        d_vocab=int(config.vocab_size),
        d_mlp=int(config.intermediate_size),
        n_kv_heads=kv if kv != heads else None,
        norm="rmsnorm",
        positions="rotary",
        gated_mlp=True,
        tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
    )


@dataclass(frozen=True)
class _HookPoint:
    """What a hook function gets as its second argument (TransformerLens' ``HookPoint`` has ``name``)."""

    name: str


class NNsightAdapter(HFWeights):
    """An nnsight-wrapped Hugging Face causal LM as a :class:`ModelAdapter` (module docstring)."""

    backend = "nnsight"

    def __init__(self, lm: Any, remote: bool = False) -> None:
        self.model = lm  # the nnsight TransformersModel
        self.hf = lm._module  # the Hugging Face module it wraps (weights, component calls)
        self.remote = remote
        self.arch = architecture_of(self.hf.config)
        self._names = site_names(self.arch.n_layers)
        self._known = set(self._names)

    def has_hook(self, name: str) -> bool:
        return name in self._known

    def check_claim(self, kind: str) -> None:
        """One line naming the backend when it cannot run claim ``kind`` (``validate`` says it first,
        :func:`circuitspec.spec.backends.backend_refusal`; this covers graphs compiled for another model)."""
        refused = backend_refusal(_NNSIGHT_SPEC, kind, (), self.arch)
        if refused is not None:
            raise CircuitSpecError(refused)

    # -- passes ------------------------------------------------------------------------------------
    def forward(
        self,
        inputs: torch.Tensor,
        hooks: Sequence[Hook] = (),
        *,
        start_at_layer: int | None = None,
        stop_at_layer: int | None = None,
        attention_mask: torch.Tensor | None = None,
        ends: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One pass with ``hooks`` (the TransformerLens adapter's contract): token ids, or the stream
        entering ``start_at_layer``; returns the stream before ``stop_at_layer``, else logits at
        ``ends`` ``[rows, vocab]`` or everywhere ``[rows, pos, vocab]``."""
        n_layers, first = self.arch.n_layers, start_at_layer or 0
        last = n_layers if stop_at_layer is None else stop_at_layer
        plan = self._plan(hooks, first, last)
        if first >= n_layers:
            resid = inputs.to(self.device)
            self._run_final(plan, resid)
        else:
            tokens = inputs if first == 0 else torch.zeros(inputs.shape[:2], dtype=torch.long)
            skip = inputs.to(self.device) if first > 0 else None
            resid = self._trace(plan, {"input_ids": tokens.to(self.device)}, skip=(first, skip), stop=last)
        if stop_at_layer is not None:
            return resid
        return self.readout(resid, ends, attention_mask)

    def _plan(self, hooks: Sequence[Hook], first: int, last: int) -> list[tuple[HFSite, list[Any]]]:
        """The hook functions per site, in pass order, for blocks ``first..last-1`` (and the final norm
        when ``last`` is the end); a name the backend has no value for is a one-line error."""
        by_site: dict[str, tuple[HFSite, list[Any]]] = {}
        for name, fn in hooks:
            names = [name] if isinstance(name, str) else [n for n in self._names if name(n)]
            for hook in names:
                site = hf_site(hook, self.arch.n_layers)
                if site is None:
                    raise CircuitSpecError(f"the nnsight backend has no activation '{hook}'")
                by_site.setdefault(hook, (site, []))[1].append(fn)
        wanted = [entry for entry in by_site.values() if _in_range(entry[0], first, last, self.arch.n_layers)]
        return sorted(wanted, key=lambda entry: entry[0].order)

    def _trace(
        self,
        plan: list[tuple[HFSite, list[Any]]],
        inputs: dict[str, Any],
        skip: tuple[int, torch.Tensor | None] = (0, None),
        stop: int | None = None,
        logits: bool = False,
    ) -> torch.Tensor:
        """Run one nnsight trace applying ``plan``; returns the stream entering block ``stop`` (the final
        stream at ``n_layers``), or the last position's logits when ``logits``."""
        out: dict[str, Any] = {}
        trace = self.model.trace(**inputs, remote=self.remote)
        with torch.inference_mode(), _one_line_errors(), trace as tracer:
            self._intervene(plan, skip, stop, logits, out)
            tracer.stop()
        return out["result"]

    def _intervene(
        self,
        plan: list[tuple[HFSite, list[Any]]],
        skip: tuple[int, torch.Tensor | None],
        stop: int | None,
        logits: bool,
        out: dict[str, torch.Tensor],
    ) -> None:
        """The body of a trace: skipped blocks, hooked sites in pass order, then the value returned."""
        first, stream = skip
        for layer in range(first):
            self._envoy(f"model.layers.{layer}").skip(stream)
        seen: dict[tuple[str, str], Any] = {}  # nnsight hands each value over once
        for site, fns in plan:
            self._apply(site, fns, seen)
        if logits:
            result = self.model.lm_head.output[:, -1]
        elif stop is None or stop >= self.arch.n_layers:
            result = seen.get(("model.norm", "input"))
            result = self.model.model.norm.input if result is None else result
        else:
            result = self._envoy(f"model.layers.{stop}").input
        out["result"] = result.clone().save()

    def _envoy(self, path: str) -> Any:
        envoy = self.model
        for part in path.split("."):
            envoy = envoy[int(part)] if part.isdigit() else getattr(envoy, part)
        return envoy

    def _apply(self, site: HFSite, fns: list[Any], seen: dict[tuple[str, str], Any]) -> None:
        """Hand the site's value, in TransformerLens' shape, to each hook function; write it back."""
        envoy = self._envoy(site.module)
        value = envoy.input if site.side == "input" else envoy.output
        seen[(site.module, site.side)] = value
        act = self._view(site, value)
        point = _HookPoint(site.hook)
        for fn in fns:
            new = fn(act, point)
            if new is not None and new is not act and not site.editable:
                raise CircuitSpecError(f"the nnsight backend can read '{site.hook}' but not edit it")
            act = act if new is None else new
        if not site.editable:
            return
        back = self._unview(site, act, value)
        if site.side == "input":
            envoy.input = back
        else:
            envoy.output = back

    def _view(self, site: HFSite, value: Any) -> torch.Tensor:
        arch = self.arch
        if site.view == "pattern":
            return value[1]
        if site.view == "scale":
            eps = float(self.hf.model.norm.variance_epsilon)
            return (value.pow(2).mean(-1, keepdim=True) + eps).sqrt()
        if site.view == "plain":
            return value
        rows, pos = value.shape[:2]
        if site.view == "heads":
            return value.view(rows, pos, arch.n_heads, arch.d_head)
        kv = arch.n_kv_heads or arch.n_heads
        return value.view(rows, pos, kv, arch.d_head).repeat_interleave(arch.n_heads // kv, dim=2)

    def _unview(self, site: HFSite, act: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``act`` back in the module's shape; a shared key/value head's copies must agree."""
        if site.view == "plain":
            return act
        rows, pos = act.shape[:2]
        if site.view == "heads":
            return act.reshape(rows, pos, -1)
        kv = self.arch.n_kv_heads or self.arch.n_heads
        grouped = act.reshape(rows, pos, kv, self.arch.n_heads // kv, self.arch.d_head)
        if not bool((grouped == grouped[:, :, :, :1]).all()):
            raise CircuitSpecError(
                f"the nnsight backend runs each shared key/value head once: '{site.hook}' was edited for "
                "one query head's copy only; name the shared head (e.g. L21KV0.v) or use TransformerLens"
            )
        return grouped[:, :, :, 0].reshape(rows, pos, -1)

    def _run_final(self, plan: list[tuple[HFSite, list[Any]]], resid: torch.Tensor) -> None:
        """A pass starting after the last block: only the final norm's scale can be hooked (read)."""
        for site, fns in plan:
            act = self._view(site, resid)
            for fn in fns:
                fn(act, _HookPoint(site.hook))

    # -- generation ---------------------------------------------------------------------------------
    def kv_cache(self, rows: int) -> Any:
        """An empty Hugging Face key/value cache, with the attention mask of what it holds."""
        from transformers import DynamicCache

        return _GenerationCache(DynamicCache(config=self.hf.config), None)

    def next_logits(
        self, tokens: torch.Tensor, hooks: Sequence[Hook], attention_mask: torch.Tensor, cache: Any = None
    ) -> torch.Tensor:
        """Next-token logits ``[rows, vocab]`` after left-padded ``tokens``; positions count real tokens
        only (``cumsum`` of the mask), as TransformerLens does, and the cache keeps its mask."""
        device, mask = self.device, attention_mask.to(self.device)
        if cache is not None and cache.mask is not None:
            mask = torch.cat([cache.mask, mask], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -tokens.shape[1] :]
        inputs: dict[str, Any] = {
            "input_ids": tokens.to(device), "attention_mask": mask, "position_ids": positions,
            "use_cache": cache is not None,
        }  # fmt: skip
        if cache is not None:
            inputs["past_key_values"] = cache.hf
            cache.mask = mask
        return self._trace(self._plan(hooks, 0, self.arch.n_layers), inputs, logits=True)


@dataclass
class _GenerationCache:
    """A Hugging Face cache plus the attention mask of the tokens it holds (left padding included)."""

    hf: Any
    mask: torch.Tensor | None


def _in_range(site: HFSite, first: int, last: int, n_layers: int) -> bool:
    """Whether ``site`` runs in a pass over blocks ``first..last-1``."""
    if site.layer is None:
        return (site.hook == "hook_embed" and first == 0) or (site.hook != "hook_embed" and last >= n_layers)
    return first <= site.layer < last


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """A :class:`CircuitSpecError` raised by a hook inside the trace comes out as itself."""
    try:
        yield
    except CircuitSpecError:
        raise
    except Exception as exc:
        cause: BaseException | None = exc
        for _ in range(16):  # nnsight may wrap what a hook raised: find ours in the chain
            cause = cause.__cause__ or cause.__context__ if cause is not None else None
            if isinstance(cause, CircuitSpecError):
                raise cause from None
        raise
