"""A test reference for the component graph: node names → components by their text alone.

``circuitspec.graph.components`` reads the parsed ``NodeRef``; this maps the printed names with
regular expressions, so the two are independent ways to the same answer.
"""

from __future__ import annotations

import re
from typing import Any

_RULES = [
    (re.compile(r"^L(\d+)H(\d+)(\.(q|k|v|pattern))?$"), lambda m: f"L{m[1]}H{m[2]}"),
    (re.compile(r"^L(\d+)KV(\d+)\.(k|v)$"), lambda m: f"L{m[1]}KV{m[2]}"),
    (re.compile(r"^(?:MLP|mlp_out)(\d+)(\..*)?$"), lambda m: f"MLP{m[1]}"),
    (re.compile(r"^(resid_(?:pre|mid|post)\d+)(\.sae\[\d+\])?$"), lambda m: m[1]),
    (re.compile(r"^(embed|pos_embed|logits)$"), lambda m: m[1]),
]


def component_name(text: str) -> str:
    """``L0H0.v@s_con`` → ``L0H0``; ``MLP1.tc[3]`` → ``MLP1``; ``resid_pre5.sae[9]@w`` → ``resid_pre5``."""
    bare = text.split("@", 1)[0]
    for pattern, name in _RULES:
        m = pattern.match(bare)
        if m:
            return name(m)
    raise AssertionError(f"no component for {text!r}")


def role_of(text: str) -> str | None:
    return text.split("@", 1)[1] if "@" in text else None


def expected_edges(digraph: Any) -> set[tuple[str, str, str]]:
    """(source, target, ``channel@role``) per edge of a compiled graph: the receiver's role, else the
    sender's, parallel edges between two components combined into one sorted label set."""
    labels: dict[tuple[str, str], set[str]] = {}
    for a, b, data in digraph.edges(data=True):
        role = role_of(b) or role_of(a)
        label = f"{data['channel']}@{role}" if role else data["channel"]
        labels.setdefault((component_name(a), component_name(b)), set()).add(label)
    return {(a, b, ", ".join(sorted(texts))) for (a, b), texts in labels.items()}
