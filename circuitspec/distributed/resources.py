"""The Ray resources one model group declares, from the model's size (torch-free, before it loads).

Hand-written because no library sizes a model from its config without loading it: the parameter
count is an upper bound from the shape ``validate`` already knows (embedding and unembedding both
counted, gated MLPs assumed), times the bytes of the run's dtype; a worker is declared to need twice
the weights (the weights plus the activations and edited copies a pass holds) plus the interpreter
with torch and TransformerLens. Ray schedules on these numbers only (they are not enforced limits):
a group waits until a node has that much memory, and one larger than every node is refused up front.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BASE_BYTES", "DTYPE_BYTES", "group_resources", "parameter_count"]

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
BASE_BYTES = 1 << 30  # one worker with torch and TransformerLens imported: about 1 GiB resident
ACTIVATION_FACTOR = 2  # weights + activations / edited copies, as a multiple of the weights


def parameter_count(shape: Any) -> int:
    """An upper bound on the parameters of a model of this shape."""
    d_model, n_heads = shape.d_model, shape.n_heads
    d_head = max(1, d_model // n_heads)
    d_mlp = shape.d_mlp or 4 * d_model
    vocab = shape.d_vocab or 50_000
    attention = 4 * d_model * n_heads * d_head
    mlp = 3 * d_model * d_mlp
    embeddings = 2 * vocab * d_model + (shape.n_ctx or 0) * d_model
    return shape.n_layers * (attention + mlp + 4 * d_model) + embeddings


def group_resources(shape: Any, model_spec: Any, cluster_gpus: float = 0.0) -> dict[str, float]:
    """``num_cpus``, ``num_gpus`` and ``memory`` (bytes) for a worker running this model: a GPU when
    ``model.device`` names CUDA, or is ``auto`` and the cluster has GPUs."""
    weights = parameter_count(shape) * DTYPE_BYTES.get(str(model_spec.dtype), 4)
    device = str(model_spec.device)
    wants_gpu = device.startswith("cuda") or (device == "auto" and cluster_gpus > 0)
    return {
        "num_cpus": 1.0,
        "num_gpus": 1.0 if wants_gpu else 0.0,
        "memory": float(BASE_BYTES + ACTIVATION_FACTOR * weights),
    }
