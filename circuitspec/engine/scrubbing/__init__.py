"""Causal scrubbing (Chan et al. 2022): ``hypothesis`` (edges, treeified plan), ``engine`` (batched scrub)."""

from __future__ import annotations

from .engine import clean_run, scrub
from .hypothesis import LOGITS, Component, Edge, ScrubPlan, TreeNode, build_plan, component, hypothesis_edges

__all__ = [
    "LOGITS",
    "Component",
    "Edge",
    "ScrubPlan",
    "TreeNode",
    "build_plan",
    "clean_run",
    "component",
    "hypothesis_edges",
    "scrub",
]
