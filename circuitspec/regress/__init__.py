"""Regression comparison of a hypothesis: report diffs against a baseline, claims × checkpoints matrices.

Pure comparison below the pipeline (it reads and writes reports, never runs a model); the commands that
run checkpoints through the pipeline (``regress``, ``baseline``) are :mod:`circuitspec.checkpoints`.
"""

from __future__ import annotations

from .diff import (
    ClaimComparison,
    ClaimTolerance,
    Regression,
    compare_reports,
    diff_reports,
    load_report,
    print_diff_table,
    tolerances_from_hypothesis,
)
from .matrix import CheckpointRun, RegressionMatrix, build_matrix, print_matrix_table, write_matrix

__all__ = [
    "CheckpointRun",
    "ClaimComparison",
    "ClaimTolerance",
    "Regression",
    "RegressionMatrix",
    "build_matrix",
    "compare_reports",
    "diff_reports",
    "load_report",
    "print_diff_table",
    "print_matrix_table",
    "tolerances_from_hypothesis",
    "write_matrix",
]
