"""Small fixtures shared by the engine tests (tiny random models, tokenizers, prompt sets)."""
