"""Architecture differences as data: one :class:`Architecture` per loaded model, read once from its config.

Interventions ask this object (through the model adapter) instead of threading flags such as
``post_ln`` or ``attn_only`` through helpers. The cases it covers:

- ``residual``: ``pre_norm`` (GPT-2, Llama, Gemma: the stream is a sum of component outputs) or
  ``post_norm`` (BERT: the stream is renormalised after every sublayer, so it is not a sum);
- ``norm``: ``layernorm``, ``rmsnorm`` or ``none`` (TransformerLens' ``normalization_type``, folded or not);
- grouped-query attention: ``n_kv_heads`` < ``n_heads`` (query head ``h`` reads key/value head
  ``h // (n_heads // n_kv_heads)``);
- ``positions``: ``learned`` absolute position embeddings added to the stream (GPT-2, BERT), or
  ``shortformer`` (added to queries and keys only), ``rotary``, ``alibi``;
- ``parallel_attn_mlp`` (GPT-J / NeoX: attention and MLP read the same stream), ``gated_mlp``,
  ``attn_only``, ``tied_embeddings``, and whether the model is an ``encoder`` (sentence embeddings,
  pooled by ``pooling`` ``mean`` or ``cls``, L2-normalised when ``normalized_embedding``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Architecture"]

_NORMS = {"LN": "layernorm", "LNPre": "layernorm", "RMS": "rmsnorm", "RMSPre": "rmsnorm", None: "none"}
_POSITIONS = {"standard": "learned", "shortformer": "shortformer", "rotary": "rotary", "alibi": "alibi"}


@dataclass(frozen=True)
class Architecture:
    """What differs between the model families the engine supports (see the module docstring)."""

    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_vocab: int
    d_mlp: int | None = None
    n_kv_heads: int | None = None
    residual: Literal["pre_norm", "post_norm"] = "pre_norm"
    norm: Literal["layernorm", "rmsnorm", "none"] = "layernorm"
    positions: Literal["learned", "shortformer", "rotary", "alibi"] = "learned"
    parallel_attn_mlp: bool = False
    sublayer_output_norms: bool = False  # Gemma 2/3: outputs normalised again before the stream adds them
    gated_mlp: bool = False
    attn_only: bool = False
    tied_embeddings: bool = False
    encoder: bool = False
    causal: bool = True
    pooling: Literal["mean", "cls"] | None = None  # encoders: how token states become the embedding
    normalized_embedding: bool = False  # encoders: the pooled vector is L2-normalised

    @classmethod
    def of(cls, model: Any) -> Architecture:
        """Read the architecture of a HookedTransformer (or the project's SentenceEncoder)."""
        cfg = model.cfg
        encoder = bool(getattr(model, "is_encoder", False))
        kv = getattr(cfg, "n_key_value_heads", None)
        pooling = getattr(model, "pooling", None) if encoder else None
        positions = getattr(cfg, "positional_embedding_type", "standard")
        return cls(
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            d_model=cfg.d_model,
            d_head=cfg.d_head,
            d_vocab=cfg.d_vocab,
            d_mlp=cfg.d_mlp or None,
            n_kv_heads=kv if kv and kv != cfg.n_heads else None,
            residual="post_norm" if encoder else "pre_norm",
            norm=_NORMS.get(cfg.normalization_type, "layernorm"),  # type: ignore[arg-type]
            positions=_POSITIONS.get(positions, "learned"),  # type: ignore[arg-type]
            parallel_attn_mlp=bool(getattr(cfg, "parallel_attn_mlp", False)),
            sublayer_output_norms=bool(getattr(cfg, "use_normalization_before_and_after", False)),
            gated_mlp=bool(getattr(cfg, "gated_mlp", False)),
            attn_only=bool(cfg.attn_only),
            tied_embeddings=bool(getattr(cfg, "tie_word_embeddings", False)),
            encoder=encoder,
            causal=getattr(cfg, "attention_dir", "causal") != "bidirectional",
            pooling=getattr(pooling, "mode", "mean") if encoder else None,
            normalized_embedding=bool(getattr(pooling, "normalize", False)),
        )

    @property
    def stream_is_sum(self) -> bool:
        """Whether the residual stream is the sum of the embeddings and every component's output."""
        return self.residual == "pre_norm"

    @property
    def attention_adds_heads(self) -> bool:
        """Whether block ``L``'s stream after attention is its input + ``Σ_h z_h W_O[h] + b_O`` and the
        MLP reads that sum (sequential pre-norm blocks without output norms), so a pass editing only
        ``hook_z`` of ``L`` may start at the MLP of ``L`` from cached values."""
        return self.stream_is_sum and not self.parallel_attn_mlp and not self.sublayer_output_norms

    @property
    def grouped_query(self) -> bool:
        return self.n_kv_heads is not None

    def kv_head(self, head: int) -> int:
        """The key/value head query head ``head`` reads (itself without grouped-query attention)."""
        if self.n_kv_heads is None:
            return head
        return head // (self.n_heads // self.n_kv_heads)

    @property
    def final_hook(self) -> str:
        """The residual stream after the last block: what the unembedding (or the pooling) reads."""
        last = f"blocks.{self.n_layers - 1}"
        post = "hook_normalized_resid_post" if self.residual == "post_norm" else "hook_resid_post"
        return f"{last}.{post}"

    def stream_entering(self, layer: int) -> str:
        """The hook holding the residual stream entering block ``layer`` (``n_layers``: the final stream)."""
        return f"blocks.{layer}.hook_resid_pre" if layer < self.n_layers else self.final_hook

    @property
    def stream_hooks(self) -> list[str]:
        """The residual stream entering every block and after the last: where partial passes start."""
        return [self.stream_entering(layer) for layer in range(self.n_layers + 1)]

    def start_layer_after(self, layer: int, post_site: bool = False) -> int:
        """The first block a change at ``layer`` affects (``post_site``: the change is to resid_post,
        which in a pre-norm model enters the next block, in a post-norm model is inside this one)."""
        return layer + 1 if post_site and self.residual == "pre_norm" else layer
