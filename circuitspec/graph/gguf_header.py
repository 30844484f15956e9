"""Read a GGUF file's metadata (its key/value header) without reading its tensors: torch-free and
in milliseconds, so ``validate`` knows a GGUF model's shape without loading or dequantizing it."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from circuitspec.spec.schema import ModelShape

__all__ = ["gguf_metadata", "gguf_shape"]

# GGUF value types → struct format of a scalar (8: string, 9: array are read by hand)
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}


def _read(handle: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    return struct.unpack(fmt, handle.read(size))[0]


def _string(handle: BinaryIO) -> str:
    return handle.read(_read(handle, "<Q")).decode("utf-8", errors="replace")


def _value(handle: BinaryIO, kind: int) -> Any:
    if kind in _SCALARS:
        return _read(handle, _SCALARS[kind])
    if kind == 8:
        return _string(handle)
    if kind == 9:
        item, count = _read(handle, "<I"), _read(handle, "<Q")
        if item in _SCALARS:  # numbers: skip them, keep the length
            handle.seek(count * struct.calcsize(_SCALARS[item]), 1)
            return count
        for _ in range(count):
            _value(handle, item)
        return count  # arrays are summarised by their length (e.g. the vocabulary size)
    raise ValueError(f"unknown GGUF value type {kind}")


def gguf_metadata(path: str | Path) -> dict[str, Any]:
    """The header's key/values; arrays are given as their length."""
    with Path(path).open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version = _read(handle, "<I")
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old")
        _read(handle, "<Q")  # tensor count
        return {_string(handle): _value(handle, _read(handle, "<I")) for _ in range(_read(handle, "<Q"))}


def gguf_shape(path: str | Path) -> ModelShape:
    """The :class:`ModelShape` a GGUF's metadata describes (``<arch>.block_count`` etc.; grouped-query
    attention from ``<arch>.attention.head_count_kv``)."""
    meta = gguf_metadata(path)
    arch = meta.get("general.architecture")
    if not arch:
        raise ValueError("the GGUF header has no general.architecture")

    def need(key: str) -> int:
        if f"{arch}.{key}" not in meta:
            raise ValueError(f"the GGUF header lacks {arch}.{key}")
        return int(meta[f"{arch}.{key}"])

    vocab = meta.get(f"{arch}.vocab_size") or meta.get("tokenizer.ggml.tokens")
    d_mlp = meta.get(f"{arch}.feed_forward_length")
    n_heads = need("attention.head_count")
    n_kv = meta.get(f"{arch}.attention.head_count_kv")  # grouped-query attention (absent: none)
    return ModelShape(
        n_layers=need("block_count"),
        n_heads=n_heads,
        d_model=need("embedding_length"),
        d_mlp=int(d_mlp) if d_mlp else None,
        d_vocab=int(vocab) if vocab else None,
        n_ctx=int(meta[f"{arch}.context_length"]) if f"{arch}.context_length" in meta else None,
        causal=True,
        n_kv_heads=int(n_kv) if n_kv and 0 < int(n_kv) < n_heads else None,
    )
