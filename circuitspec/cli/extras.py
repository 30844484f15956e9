"""Which commands need the ``models`` extra (torch, TransformerLens, transformers), and the one line
that says how to install it.

The core install (``pip install circuitspec``) runs ``validate``, ``schema``, ``graph`` and ``diff``
without torch; ``verify``, ``regress``, ``baseline``, ``prompts``, ``data`` and ``features`` run a model
and need ``pip install 'circuitspec[models]'``. Checked with :func:`importlib.util.find_spec`, which
finds a module without importing it (importing torch alone takes seconds).
"""

from __future__ import annotations

import importlib.util

from circuitspec.errors import CircuitSpecError

__all__ = ["MODEL_MODULES", "missing_model_module", "models_hint", "require_models"]

# what every model run imports; the rest of the extra (gguf, einops) is named by the
# ModuleNotFoundError fallback in cli/main.py when a run reaches it
MODEL_MODULES = ("torch", "transformer_lens", "transformers")
# every top-level module the models (and features) extras provide (safetensors is in the core)
EXTRA_MODULES = frozenset({*MODEL_MODULES, "einops", "gguf", "sae_lens"})


def missing_model_module() -> str | None:
    """The first of :data:`MODEL_MODULES` that cannot be found here; None when all can."""
    for name in MODEL_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):  # a broken install, or a finder refusing it
            return name
    return None


def models_hint(command: str | None, missing: str) -> CircuitSpecError:
    """The one-line error for ``command`` run without the extra ``missing`` belongs to."""
    extra = "features" if missing == "sae_lens" else "models"
    who = f"circuitspec {command}" if command else "this circuitspec command"
    return CircuitSpecError(
        f"{who} needs the {extra} extra ({missing} is not installed): pip install 'circuitspec[{extra}]' "
        "(on a CPU-only machine first: pip install torch==2.13.0 --index-url "
        "https://download.pytorch.org/whl/cpu, else pip pulls the CUDA build)"
    )


def require_models(command: str) -> None:
    """Raise :func:`models_hint` when a module every model run imports is missing."""
    missing = missing_model_module()
    if missing is not None:
        raise models_hint(command, missing)
