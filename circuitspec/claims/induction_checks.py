"""Compile checks of the ``induction`` claim kind (torch-free): its target rule and sequence sizes.

An induction score is read over whole repeated random sequences, so a target is a head without a
role; the sequences must fit the model's context and the vocabulary must hold ``seq_len`` distinct
tokens (each half has no repeats, so a token's first occurrence is unique).
"""

from __future__ import annotations

from typing import Any

from circuitspec.spec.nodes import NodeKind, NodeRef

from .checks import Chains, Checker
from .rules import NodeRule

__all__ = ["INDUCTION_TARGET", "check_induction"]

INDUCTION_TARGET = NodeRule(
    "heads like L7H5, without @role",
    lambda node: node.kind is NodeKind.HEAD and node.role is None,
    "induction targets are heads like L7H5 without @role: the score reads whole random sequences "
    "(got '{node}')",
)


def check_induction(
    c: Checker, claim: Any, targets: list[NodeRef], chains: Chains, template_ids: list[str]
) -> None:
    """Both halves and a BOS fit the model's context (whether the tokenizer prepends one is not known
    before the model loads); the vocabulary has ``seq_len`` distinct tokens."""
    loc = c.claim_loc(claim.id, "seq_len")
    n_ctx = c.shape.n_ctx
    if n_ctx is not None and 2 * claim.seq_len + 1 > n_ctx:  # + 1: room for a BOS token
        raise c.fail(
            f"induction: 2 × seq_len + BOS = {2 * claim.seq_len + 1} tokens exceed the model's context of "
            f"{n_ctx} (valid: seq_len ≤ {(n_ctx - 1) // 2})",
            loc,
        )
    d_vocab = c.shape.d_vocab
    if d_vocab is not None and claim.seq_len > d_vocab - 2:
        raise c.fail(
            f"induction: seq_len {claim.seq_len} distinct tokens do not fit a vocabulary of {d_vocab} "
            f"(valid: seq_len ≤ {d_vocab - 2})",
            loc,
        )
