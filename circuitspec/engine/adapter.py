"""The model behind one small adapter: what interventions may ask of a model, and nothing else.

Interventions never touch ``HookedTransformer`` attributes directly; they ask a :class:`ModelAdapter`
for hook points, the weights they read (a head's ``W_O``, an MLP's ``W_out``, the unembedding and the
final norm), the normalisation a head's input goes through, counted partial passes from a layer, and
logits at chosen positions only. :class:`HookedTransformerAdapter` is the first implementation (it
also serves the project's post-LN ``SentenceEncoder``, a ``HookedEncoder``); a second backend
(TransformerLens 4's ``TransformerBridge``, nnsight) implements the same methods and no intervention
changes. See ``docs/ARCHITECTURE.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import torch

from circuitspec.errors import CircuitSpecError

from .adapter_generation import Hook, KeyValueCacheMethods
from .architecture import Architecture
from .encoder import pool

__all__ = ["HookedTransformerAdapter", "ModelAdapter", "adapt"]

class ModelAdapter(Protocol):
    """What the engine needs from a model (see the module docstring)."""

    arch: Architecture
    model: Any

    @property
    def device(self) -> torch.device: ...

    def has_hook(self, name: str) -> bool: ...

    def forward(
        self,
        inputs: torch.Tensor,
        hooks: Sequence[Hook] = (),
        *,
        start_at_layer: int | None = None,
        stop_at_layer: int | None = None,
        attention_mask: torch.Tensor | None = None,
        ends: torch.Tensor | None = None,
    ) -> torch.Tensor: ...

    def head_write(self, layer: int, head: int, z: torch.Tensor) -> torch.Tensor: ...

    def neuron_write(self, layer: int, neuron: int, post: torch.Tensor) -> torch.Tensor: ...

    def head_input(self, layer: int, resid: torch.Tensor) -> torch.Tensor: ...

    def head_project(self, layer: int, head: int, channel: str, resid: torch.Tensor) -> torch.Tensor: ...

    def attn_call(
        self, layer: int, q_in: torch.Tensor, k_in: torch.Tensor, v_in: torch.Tensor
    ) -> torch.Tensor: ...

    def mlp_call(self, layer: int, resid_mid: torch.Tensor) -> torch.Tensor: ...

    def attention_output(self, layer: int, z: torch.Tensor) -> torch.Tensor: ...

    def final_norm(self, resid: torch.Tensor) -> torch.Tensor: ...

    def final_norm_params(self) -> tuple[torch.Tensor | None, torch.Tensor | None]: ...

    def block_norm_weight(self, layer: int, index: int) -> torch.Tensor | None: ...

    def head_writes(self, layer: int, z: torch.Tensor) -> torch.Tensor: ...

    def attention_output_norm_weight(self, layer: int) -> torch.Tensor | None: ...

    def attention_bias(self, layer: int) -> torch.Tensor: ...

    def unembed_columns(self, ids: torch.Tensor) -> torch.Tensor: ...

    def unembed_bias(self, ids: torch.Tensor) -> torch.Tensor: ...

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor: ...

    def dictionary(self, hook: str) -> Any | None: ...

    def unembed_at(self, resid: torch.Tensor, positions: torch.Tensor) -> torch.Tensor: ...

    def logits_of(self, resid: torch.Tensor, positions: torch.Tensor, ids: torch.Tensor) -> torch.Tensor: ...

    def readout(
        self, resid: torch.Tensor, ends: torch.Tensor | None, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor: ...

    def split_inputs(self) -> contextlib.AbstractContextManager[None]: ...

    def kv_cache(self, rows: int) -> Any: ...

    def next_logits(
        self,
        tokens: torch.Tensor,
        hooks: Sequence[Hook],
        attention_mask: torch.Tensor,
        cache: Any = None,
    ) -> torch.Tensor: ...


class HookedTransformerAdapter(KeyValueCacheMethods):
    """A TransformerLens ``HookedTransformer`` (or the project's ``SentenceEncoder``) as a model adapter."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.arch = Architecture.of(model)

    @property
    def device(self) -> torch.device:
        device = self.model.cfg.device
        return device if isinstance(device, torch.device) else torch.device(device or "cpu")

    def has_hook(self, name: str) -> bool:
        return name in self.model.hook_dict

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
        """One pass with ``hooks``: token ids, or the residual stream entering ``start_at_layer``.

        Returns logits (an encoder: the sentence embedding), or the residual stream before block
        ``stop_at_layer``. ``ends`` (``[rows]`` positions, decoders): only those positions are normalised
        and unembedded, giving ``[rows, vocab]``. Post-norm encoders need ``attention_mask`` when
        starting mid-model. ``start_at_layer == n_layers``: ``inputs`` is the final stream, only read out.
        """
        n_layers = self.arch.n_layers
        if self.arch.encoder:
            ends = None  # the pooling reads every real token
        kwargs: dict[str, Any] = {}
        if start_at_layer is not None:
            kwargs["start_at_layer"] = start_at_layer
        if attention_mask is not None and self.arch.encoder:
            kwargs["one_zero_attention_mask"] = attention_mask.to(self.device)
        read_out = stop_at_layer is None and (ends is not None or (start_at_layer or 0) >= n_layers)
        if read_out:  # run the blocks only, then read the chosen positions out
            stop_at_layer = n_layers
        if stop_at_layer is not None:
            kwargs["stop_at_layer"] = stop_at_layer
        last_mlp = self._last_mlp_at(ends, hooks) if read_out and (start_at_layer or 0) < n_layers else None
        with torch.inference_mode(), self.model.hooks(fwd_hooks=list(hooks)), last_mlp or _nothing():
            if (start_at_layer or 0) >= n_layers:
                out = inputs.to(self.device)
            else:
                out = self.model(inputs.to(self.device), **kwargs)
            if not read_out:
                return out
            return self.readout(out, ends, attention_mask)

    def _last_mlp_at(
        self, ends: torch.Tensor | None, hooks: Sequence[Hook]
    ) -> contextlib.AbstractContextManager[None] | None:
        """When only ``ends`` are read out, the last block's MLP runs at those positions alone (its
        output elsewhere is never read); None where a hook reads or edits that MLP or what follows it."""
        last = self.arch.n_layers - 1
        touched = (f"blocks.{last}.mlp.", f"blocks.{last}.hook_mlp_out", f"blocks.{last}.hook_resid_post")
        if ends is None or self.arch.attn_only or self.arch.encoder:
            return None
        if any(not isinstance(name, str) or name.startswith(touched) for name, _ in hooks):
            return None
        return _mlp_at_positions(self.model.blocks[last].mlp, ends.to(self.device))

    def readout(
        self, resid: torch.Tensor, ends: torch.Tensor | None, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The output read from a final residual stream ``[rows, pos, d]``: an encoder's sentence
        embedding (pooling over ``attention_mask``), else logits at ``ends`` (``[rows, vocab]``) or at
        every position (``[rows, pos, vocab]``)."""
        if self.arch.encoder:
            mask = attention_mask if attention_mask is not None else torch.ones(resid.shape[:2])
            return self.model.readout(resid, mask.to(resid.device))
        if ends is None:
            with torch.inference_mode():
                return self._softcap(self.model.unembed(self.final_norm(resid)))
        return self.unembed_at(resid, ends)

    # -- weights the interventions read ----------------------------------------------------------
    def head_write(self, layer: int, head: int, z: torch.Tensor) -> torch.Tensor:
        """What head ``head`` of ``layer`` adds to the residual stream for its ``z`` (``z @ W_O[h]``).

        Refused where the block renormalises its attention output (Gemma 2/3): there one head's share of
        the stream depends on every head of its block, so no per-head write exists."""
        if self.arch.sublayer_output_norms:
            raise CircuitSpecError(
                f"a head's own write to the residual stream is undefined on this model: block {layer} "
                "normalises the sum of its heads again (sublayer output norms, Gemma 2/3), so path "
                "patching from a head and causal scrubbing of heads do not apply; patch or ablate the head"
            )
        return z @ self.model.blocks[layer].attn.W_O[head]

    def neuron_write(self, layer: int, neuron: int, post: torch.Tensor) -> torch.Tensor:
        """What MLP neuron ``neuron`` adds to the residual stream for its activation ``post``."""
        return post[..., None] * self.model.blocks[layer].mlp.W_out[neuron]

    def head_input(self, layer: int, resid: torch.Tensor) -> torch.Tensor:
        """What a head's q/k/v projections read from the stream ``resid`` (its block's first norm;
        post-norm encoders read the stream as it is)."""
        if self.arch.residual == "post_norm":
            return resid
        return self.model.blocks[layer].ln1(resid)

    def head_project(self, layer: int, head: int, channel: str, resid: torch.Tensor) -> torch.Tensor:
        """Head ``head``'s ``channel`` (``q``/``k``/``v``) vector ``[..., d_head]`` for the pre-norm stream
        ``resid``: its block's first norm (:meth:`head_input`), then the head's projection."""
        attn = self.model.blocks[layer].attn
        name = channel.upper()
        weight, bias = getattr(attn, f"W_{name}")[head], getattr(attn, f"b_{name}")[head]
        return self.head_input(layer, resid) @ weight + bias

    def attn_call(
        self, layer: int, q_in: torch.Tensor, k_in: torch.Tensor, v_in: torch.Tensor
    ) -> torch.Tensor:
        """One call of ``layer``'s attention on pre-norm query/key/value inputs ``[batch, pos, d_model]``;
        every head's ``z`` ``[batch, pos, heads, d_head]`` (one component call, no forward pass)."""
        block = self.model.blocks[layer]
        grabbed: dict[str, torch.Tensor] = {}

        def grab(act: torch.Tensor, hook: Any) -> None:
            grabbed["z"] = act

        with torch.inference_mode(), self.model.hooks(fwd_hooks=[(f"blocks.{layer}.attn.hook_z", grab)]):
            block.attn(*(self.head_input(layer, x) for x in (q_in, k_in, v_in)))
        return grabbed["z"]

    def mlp_call(self, layer: int, resid_mid: torch.Tensor) -> torch.Tensor:
        """The MLP output of ``layer`` for the pre-norm stream ``resid_mid`` (one component call)."""
        block = self.model.blocks[layer]
        return block.mlp(block.ln2(resid_mid))

    def attention_output(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """What block ``layer``'s attention adds to the stream for the heads' ``z`` ``[rows, pos, h, d]``."""
        attn = self.model.blocks[layer].attn
        return torch.einsum("bphd,hdm->bpm", z, attn.W_O) + attn.b_O

    def final_norm(self, resid: torch.Tensor) -> torch.Tensor:
        """The final norm the unembedding reads through (identity when the model has none)."""
        if self.arch.norm == "none" or not hasattr(self.model, "ln_final"):
            return resid
        return self.model.ln_final(resid)

    def final_norm_params(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The final norm's (weight, bias); None where it has none (folded, RMSNorm's bias, no norm)."""
        norm = getattr(self.model, "ln_final", None) if self.arch.norm != "none" else None
        return getattr(norm, "w", None), getattr(norm, "b", None)

    def block_norm_weight(self, layer: int, index: int) -> torch.Tensor | None:
        """The weight of block ``layer``'s norm ``ln{index}`` (1: before or after attention, 2: the MLP's);
        None when it has none (folded, or no norm)."""
        return getattr(getattr(self.model.blocks[layer], f"ln{index}", None), "w", None)

    def head_writes(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """Every head's write ``[..., heads, d_model]`` for ``z`` ``[..., heads, d_head]`` (no bias)."""
        return torch.einsum("...hd,hdm->...hm", z, self.model.blocks[layer].attn.W_O)

    def attention_output_norm_weight(self, layer: int) -> torch.Tensor | None:
        """The weight of the norm block ``layer`` applies to its attention output before the stream adds
        it (Gemma 2/3's ``ln1_post``); None when the block has no such norm or it has no weight."""
        if not self.arch.sublayer_output_norms:
            return None
        return getattr(getattr(self.model.blocks[layer], "ln1_post", None), "w", None)

    def attention_bias(self, layer: int) -> torch.Tensor:
        """Block ``layer``'s attention output bias ``b_O`` ``[d_model]`` (added once, not per head)."""
        return self.model.blocks[layer].attn.b_O

    def unembed_columns(self, ids: torch.Tensor) -> torch.Tensor:
        """The unembedding directions of token ``ids`` ``[len(ids), d_model]`` (``W_U[:, ids].T``)."""
        return self.model.W_U[:, ids].T

    def unembed_bias(self, ids: torch.Tensor) -> torch.Tensor:
        """The unembedding bias of token ``ids`` ``[len(ids)]``."""
        return self.model.b_U[ids]

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encoders: token states ``[rows, pos, d]`` pooled as the model pools its last layer (mean over
        ``attention_mask`` or the CLS token), before any normalisation: ``[rows, d]``."""
        return pool(states, attention_mask.to(states.device), self.arch.pooling or "mean")

    def dictionary(self, hook: str) -> Any | None:
        """The spliced dictionary (an sae-lens SAE or transcoder) whose output lives on ``hook``."""
        for sae in getattr(self.model, "acts_to_saes", {}).values():
            meta = sae.cfg.metadata
            if (meta.hook_name_out or meta.hook_name) == hook:
                return sae
        return None

    def unembed_at(self, resid: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Logits ``[rows, vocab]`` at one position per row of a final residual stream ``[rows, pos, d]``.

        Only the chosen positions are normalised and unembedded, never ``[rows, pos, vocab]``.
        """
        rows = torch.arange(resid.shape[0], device=resid.device)
        last = resid[rows, positions.to(resid.device)][:, None]
        with torch.inference_mode():
            return self._softcap(self.model.unembed(self.final_norm(last))[:, 0])

    def logits_of(self, resid: torch.Tensor, positions: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``[rows, k]`` of tokens ``ids`` ``[rows, k]`` at one position per row of a final residual
        stream: only those columns of the unembedding are read (never the whole vocabulary)."""
        rows = torch.arange(resid.shape[0], device=resid.device)
        ids = ids.to(resid.device)
        with torch.inference_mode():
            normed = self.final_norm(resid[rows, positions.to(resid.device)][:, None])[:, 0]
            logits = torch.einsum("rd,drk->rk", normed, self.model.W_U[:, ids]) + self.model.b_U[ids]
            return self._softcap(logits)

    def _softcap(self, logits: torch.Tensor) -> torch.Tensor:
        """Gemma 2's logit soft-cap, as the model's own forward applies it (identity without one)."""
        cap = float(getattr(self.model.cfg, "output_logits_soft_cap", 0.0) or 0.0)
        return cap * torch.tanh(logits / cap) if cap > 0 else logits

    @contextlib.contextmanager
    def split_inputs(self) -> Iterator[None]:
        """Per-head q/k/v inputs and the MLP input as hooks (``hook_{q,k,v}_input``, ``hook_mlp_in``)
        for the block, restoring the model's settings after."""
        cfg = self.model.cfg
        old_split, old_mlp_in = cfg.use_split_qkv_input, cfg.use_hook_mlp_in
        self.model.set_use_split_qkv_input(True)
        self.model.set_use_hook_mlp_in(True)
        try:
            yield
        finally:
            self.model.set_use_split_qkv_input(old_split)
            self.model.set_use_hook_mlp_in(old_mlp_in)


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextlib.contextmanager
def _mlp_at_positions(mlp: torch.nn.Module, ends: torch.Tensor) -> Iterator[None]:
    """Run ``mlp`` on one position per row (``ends``) and place its output there, zeros elsewhere."""
    shape: list[torch.Size] = []

    def narrow(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x = args[0]
        shape[:] = [x.shape]
        return (x[torch.arange(x.shape[0], device=x.device), ends][:, None], *args[1:])

    def widen(module: Any, args: tuple[Any, ...], out: torch.Tensor) -> torch.Tensor:
        full = out.new_zeros(*shape[0][:2], out.shape[-1])
        full[torch.arange(out.shape[0], device=out.device), ends] = out[:, 0]
        return full

    handles = [mlp.register_forward_pre_hook(narrow), mlp.register_forward_hook(widen)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def adapt(model: Any) -> ModelAdapter:
    """The adapter for a loaded model (already an adapter, e.g. the nnsight backend's: returned as is)."""
    if isinstance(model, HookedTransformerAdapter) or getattr(model, "backend", None) == "nnsight":
        return model
    return HookedTransformerAdapter(model)
