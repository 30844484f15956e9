"""Sparse dictionaries (transcoders, SAEs) as circuit nodes: loading, splicing, feature effects.

Modules (each imports torch / sae-lens lazily, only when a model runs):

- :mod:`.loading` — a declared :class:`~circuitspec.spec.schema.DictionarySpec` → sae-lens ``SAE`` /
  ``Transcoder`` (sae-lens disk format, sae-lens releases, Dunefsky GPT-2 transcoder files, the
  bundled toy transcoders).
- :mod:`.splice` — splice them into a ``HookedSAETransformer`` with the error term on, so the model
  output is unchanged until a feature is edited; feature nodes then live on
  ``<output hook>.hook_sae_acts_post`` and the engine's ablation / patching / scaling act on them.
- :mod:`.effects` — direct logit attribution of a feature, its decoder row through the unembedding,
  and de-embedding (which vocabulary tokens drive a feature through ``W_E``).
- :mod:`.toy_transcoders` — the seeded loop that trained the toy model's bundled transcoders.
"""

from __future__ import annotations

__all__: list[str] = []
