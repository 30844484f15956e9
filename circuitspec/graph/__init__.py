"""Compile hypotheses into validated circuit graphs (networkx; no torch)."""

from .circuit import CircuitGraph

__all__ = ["CircuitGraph"]
