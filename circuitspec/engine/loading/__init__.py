"""Model loading by concern: ``hf_convert`` (a Hugging Face decoder directory → HookedTransformer with
TransformerLens' own conversion) and ``gguf_cache`` (a GGUF → a dequantized directory, cached).
Sources are resolved torch-free by :mod:`circuitspec.graph.model_sources`; :mod:`..models` wires them."""
