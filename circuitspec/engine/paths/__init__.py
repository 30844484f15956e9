"""Path patching on the one node geometry and the model adapter (see :mod:`.driver`).

``jobs`` (experiments and their checks), ``runs`` (shared runs, counted passes), ``deltas`` (sender
deltas), ``sum_stream`` (receiver inputs where the stream is a sum), ``frozen_pass`` (receiver
inputs from a frozen pass: post-norm encoders, recomputed MLPs), ``receivers`` (the patched pass).
"""

from __future__ import annotations

from .driver import path_patch_edges, path_patch_jobs
from .jobs import Pair, PathJob, job_for_chains

__all__ = ["Pair", "PathJob", "job_for_chains", "path_patch_edges", "path_patch_jobs"]
