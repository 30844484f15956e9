"""Model backends other than TransformerLens behind :class:`circuitspec.engine.adapter.ModelAdapter`.

``nnsight_*``: a Hugging Face causal LM wrapped by nnsight (local, or remote on NDIF). Each backend maps
the TransformerLens hook names that :mod:`circuitspec.spec.geometry` gives every node to its own
module paths, so node geometry stays in one place.
"""
