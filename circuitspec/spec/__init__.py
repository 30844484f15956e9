"""The hypothesis language: node / template / expectation grammars, pydantic schema, YAML loader.

Nothing here imports torch.
"""

from .expectations import Expectation, parse_expectation
from .nodes import NodeKind, NodeRef, parse_node
from .schema import Hypothesis

__all__ = ["Expectation", "Hypothesis", "NodeKind", "NodeRef", "parse_expectation", "parse_node"]
