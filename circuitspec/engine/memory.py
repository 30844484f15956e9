"""How much memory one forward pass may take, and what a batch row costs: batch sizes come from here.

The budget is in bytes: ``CIRCUITSPEC_MEMORY_GB`` when set, else a share of the memory available now
(the accelerator's free memory for a GPU model; ``psutil`` or ``/proc/meminfo`` on CPU). Edited passes
(:func:`circuitspec.engine.edits.copies_per_pass`) and the shared clean / corrupted runs
(:meth:`circuitspec.engine.context.RunContext.clean`) split their batches so one pass stays under it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_SHARE", "ENV_VAR", "available_bytes", "memory_budget", "row_bytes"]

ENV_VAR = "CIRCUITSPEC_MEMORY_GB"
DEFAULT_SHARE = 0.125  # of available memory: a pass's transient activations, leaving room for caches
_FALLBACK = 4 * 2**30  # when nothing says how much memory there is
_FLOAT = 4  # bytes per float32 element


def available_bytes(device: Any = None) -> int:
    """Memory available now: free accelerator memory for a CUDA ``device``, else free host memory."""
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return _FALLBACK


def memory_budget(device: Any = None) -> int:
    """Bytes one pass may take: ``CIRCUITSPEC_MEMORY_GB`` (GiB) when set, else :data:`DEFAULT_SHARE` of
    :func:`available_bytes`."""
    given = os.environ.get(ENV_VAR, "").strip()
    if given:
        try:
            return max(1, int(float(given) * 2**30))
        except ValueError:
            raise ValueError(f"{ENV_VAR}={given!r} is not a number of GiB (e.g. 4 or 0.5)") from None
    return max(1, int(available_bytes(device) * DEFAULT_SHARE))


def row_bytes(arch: Any, positions: int, logits: int | None = None) -> int:
    """Rough bytes one batch row (one prompt sequence) takes in a pass: the logits it reads out
    (``logits`` columns, default the vocabulary at one position) plus, per position, eight
    residual-or-MLP-sized activations and the attention scores and pattern of every head."""
    width = max(arch.d_model, arch.d_mlp or 0)
    read_out = arch.d_vocab if logits is None else logits
    per_position = 8 * width + 2 * arch.n_heads * positions
    return _FLOAT * (read_out + positions * per_position)
