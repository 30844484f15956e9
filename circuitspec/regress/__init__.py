"""Regression testing of a hypothesis: baselines, report diffs, and claims × checkpoints matrices.

Torch-free at import: the model only loads inside :func:`regress` / :func:`baseline` runs.
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
from .run import RegressResult, baseline, free_model_memory, parse_checkpoints, regress

__all__ = [
    "CheckpointRun",
    "ClaimComparison",
    "ClaimTolerance",
    "RegressResult",
    "Regression",
    "RegressionMatrix",
    "baseline",
    "build_matrix",
    "compare_reports",
    "diff_reports",
    "free_model_memory",
    "load_report",
    "parse_checkpoints",
    "print_diff_table",
    "print_matrix_table",
    "regress",
    "tolerances_from_hypothesis",
    "write_matrix",
]
