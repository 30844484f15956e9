"""Which weight files a Hugging Face directory may be loaded from: safetensors only.

``pytorch_model.bin`` / ``*.pt`` / ``*.ckpt`` are pickles, and unpickling can run code, so they are
refused with a one-line message saying how to convert them, never opened. A directory with no
weights at all is named as such, before transformers gets to raise a traceback about it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from circuitspec.errors import CircuitSpecError, ModelNotAvailable

__all__ = ["PICKLE_SUFFIXES", "check_weight_files", "one_line_load_errors"]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_CONVERT = (
    "convert it once where you trust the file: "
    "AutoModel.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)"
)


def check_weight_files(directory: Path, where: str) -> Path:
    """The directory's safetensors weights (``model.safetensors`` or a sharded index); a one-line
    :class:`ModelNotAvailable` when there are only pickles or no weights."""
    for name in ("model.safetensors", "model.safetensors.index.json"):
        if (directory / name).is_file():
            return directory / name
    shards = sorted(directory.glob("*.safetensors"))
    if shards:
        return shards[0]
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES and p.is_file())
    if pickles:
        raise ModelNotAvailable(
            f"{where}: {directory} holds only pickled weights ({', '.join(pickles[:3])}), which circuitspec "
            f"does not open (unpickling can run code); {_CONVERT}"
        )
    raise ModelNotAvailable(
        f"{where}: no weights in {directory} (looked for model.safetensors, model.safetensors.index.json, "
        "*.safetensors)"
    )


@contextmanager
def one_line_load_errors(directory: Path, where: str) -> Iterator[None]:
    """Turn whatever transformers / safetensors / TransformerLens raise while loading ``directory``
    (a truncated file, a missing tokenizer, weights of the wrong shape) into one line, exit 2."""
    try:
        yield
    except CircuitSpecError:
        raise
    except Exception as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise ModelNotAvailable(f"{where}: cannot load the model in {directory}: {reason}") from None
