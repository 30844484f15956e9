"""The nnsight backend's weight reads and component calls, straight off the Hugging Face modules.

``o_proj.weight`` is ``W_O`` (``[d_model, heads·d_head]``, transposed per head), ``down_proj.weight``
``W_out``, ``lm_head.weight`` ``W_U`` (rows), ``model.norm`` the final RMSNorm, which keeps its weight
where TransformerLens folds it into ``W_U`` (same logits). A mixin of
:class:`~circuitspec.engine.backends.nnsight_adapter.NNsightAdapter`, kept apart so each file stays small.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from circuitspec.errors import CircuitSpecError

from ..architecture import Architecture

__all__ = ["HFWeights"]


class HFWeights:
    """Weights and component calls of a Llama-style Hugging Face causal LM (``self.hf``)."""

    hf: Any
    arch: Architecture

    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

    def readout(
        self, resid: torch.Tensor, ends: torch.Tensor | None, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits at ``ends`` ``[rows, vocab]``, or at every position ``[rows, pos, vocab]``."""
        if ends is not None:
            return self.unembed_at(resid, ends)
        with torch.inference_mode():
            return self.hf.lm_head(self.final_norm(resid))

    def unembed_at(self, resid: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Logits ``[rows, vocab]`` at one position per row (only those positions are unembedded)."""
        rows = torch.arange(resid.shape[0], device=resid.device)
        with torch.inference_mode():
            return self.hf.lm_head(self.final_norm(resid[rows, positions.to(resid.device)]))

    def logits_of(self, resid: torch.Tensor, positions: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``[rows, k]`` of tokens ``ids`` ``[rows, k]`` at one position per row."""
        rows = torch.arange(resid.shape[0], device=resid.device)
        with torch.inference_mode():
            normed = self.final_norm(resid[rows, positions.to(resid.device)])
            ids = ids.to(resid.device)
            return torch.einsum("rd,rkd->rk", normed, self.hf.lm_head.weight[ids]) + self.unembed_bias(ids)

    def final_norm(self, resid: torch.Tensor) -> torch.Tensor:
        return self.hf.model.norm(resid)

    def final_norm_params(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return self.hf.model.norm.weight, None

    def block_norm_weight(self, layer: int, index: int) -> torch.Tensor | None:
        block = self.hf.model.layers[layer]
        return (block.input_layernorm if index == 1 else block.post_attention_layernorm).weight

    def _w_o(self, layer: int) -> torch.Tensor:
        """``W_O`` ``[heads, d_head, d_model]`` from ``o_proj.weight`` ``[d_model, heads·d_head]``."""
        weight = self.hf.model.layers[layer].self_attn.o_proj.weight
        return weight.T.reshape(self.arch.n_heads, self.arch.d_head, self.arch.d_model)

    def head_write(self, layer: int, head: int, z: torch.Tensor) -> torch.Tensor:
        return z @ self._w_o(layer)[head]

    def head_writes(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...hd,hdm->...hm", z, self._w_o(layer))

    def neuron_write(self, layer: int, neuron: int, post: torch.Tensor) -> torch.Tensor:
        return post[..., None] * self.hf.model.layers[layer].mlp.down_proj.weight[:, neuron]

    def attention_output(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """What block ``layer``'s attention adds to the stream for the heads' ``z`` ``[rows, pos, h, d]``."""
        with torch.inference_mode():
            return self.hf.model.layers[layer].self_attn.o_proj(z.flatten(-2))

    def mlp_call(self, layer: int, resid_mid: torch.Tensor) -> torch.Tensor:
        block = self.hf.model.layers[layer]
        with torch.inference_mode():
            return block.mlp(block.post_attention_layernorm(resid_mid))

    def head_input(self, layer: int, resid: torch.Tensor) -> torch.Tensor:
        return self.hf.model.layers[layer].input_layernorm(resid)

    def head_project(self, layer: int, head: int, channel: str, resid: torch.Tensor) -> torch.Tensor:
        raise self._unsupported("per-head q/k/v projections (path patching)")

    def attn_call(
        self, layer: int, q_in: torch.Tensor, k_in: torch.Tensor, v_in: torch.Tensor
    ) -> torch.Tensor:
        raise self._unsupported("attention on split q/k/v inputs (path patching)")

    def attention_output_norm_weight(self, layer: int) -> torch.Tensor | None:
        return None

    def attention_bias(self, layer: int) -> torch.Tensor:
        bias = self.hf.model.layers[layer].self_attn.o_proj.bias
        return bias if bias is not None else self._zeros(self.arch.d_model)

    def unembed_columns(self, ids: torch.Tensor) -> torch.Tensor:
        return self.hf.lm_head.weight[ids.to(self.device)]

    def unembed_bias(self, ids: torch.Tensor) -> torch.Tensor:
        bias = self.hf.lm_head.bias
        return bias[ids.to(self.device)] if bias is not None else self._zeros(*ids.shape)

    def _zeros(self, *shape: int) -> torch.Tensor:
        weight = self.hf.lm_head.weight
        return torch.zeros(shape, dtype=weight.dtype, device=weight.device)

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise self._unsupported("sentence-embedding pooling (encoders)")

    def dictionary(self, hook: str) -> Any | None:
        return None

    @contextlib.contextmanager
    def split_inputs(self) -> Iterator[None]:
        raise self._unsupported("split q/k/v and MLP inputs (path patching)")
        yield  # pragma: no cover

    def _unsupported(self, what: str) -> CircuitSpecError:
        return CircuitSpecError(f"the nnsight backend does not provide {what}")
