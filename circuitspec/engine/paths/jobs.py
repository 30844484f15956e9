"""Path-patching experiments (:class:`PathJob`) and the checks on their hops.

Every fact about a node (what it writes, how an edge enters it, when it reads and writes) comes from
:mod:`circuitspec.spec.geometry`; legality errors name the rule the claim registry compiles with
(``circuitspec.claims.rules``), so a hypothesis ``validate`` accepts is one the engine runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

from circuitspec.claims.rules import PATH_RECEIVER, PATH_SENDER, NodeRule
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.geometry import (
    CHANNEL_OF_KIND,
    expand_kv,
    receive_channels,
    receive_order,
    residual_input_hook,
    send_order,
)
from circuitspec.spec.nodes import NodeKind, NodeRef

from ..architecture import Architecture

__all__ = [
    "Pair",
    "PathJob",
    "check_edge",
    "check_jobs",
    "enters_block",
    "input_channels",
    "input_hook",
    "job_for_chains",
    "receiver_inputs",
    "start_layer",
]

Pair = tuple[NodeRef, NodeRef]


@dataclass(frozen=True)
class PathJob:
    """One path-patching experiment: hops of (sender, receiver) pairs patched jointly.

    A single edge is one hop with one pair; a chain ``A -> B -> C`` is two hops, and the senders of
    hop ``k + 1`` must be receivers of hop ``k`` (their changed output is what is sent on).
    """

    hops: tuple[tuple[Pair, ...], ...]

    @classmethod
    def chain(cls, nodes: Sequence[NodeRef]) -> PathJob:
        return cls(tuple(((a, b),) for a, b in itertools.pairwise(nodes)))

    @classmethod
    def joint(cls, pairs: Sequence[Pair]) -> PathJob:
        return cls((tuple(pairs),))

    def ungrouped(self, arch: Architecture) -> PathJob:
        """The job with every shared key/value head (``L7KV1.v``) replaced by its group's query-head
        nodes (``L7H3.v``, ``L7H4.v``, ...): receiving through all of their copies is receiving through
        the shared head, and what they write together is what it sends on."""
        if not any(node.is_kv for hop in self.hops for pair in hop for node in pair):
            return self
        try:
            return PathJob(
                tuple(
                    tuple(
                        dict.fromkeys(
                            (a, b)
                            for sender, receiver in hop
                            for a in expand_kv(sender, arch.n_heads, arch.n_kv_heads)
                            for b in expand_kv(receiver, arch.n_heads, arch.n_kv_heads)
                        )
                    )
                    for hop in self.hops
                )
            )
        except ValueError as exc:
            raise CircuitSpecError(f"path patching: {exc}") from None


def job_for_chains(claim_id: str, chains: Sequence[Sequence[NodeRef]]) -> PathJob:
    """One chain (any length) hop by hop, or several single edges patched jointly."""
    if not chains:
        raise CircuitSpecError(
            f"claim '{claim_id}': path patching needs at least one edge 'A -> B' among its targets"
        )
    if len(chains) == 1:
        return PathJob.chain(chains[0])
    if all(len(chain) == 2 for chain in chains):
        return PathJob.joint([(chain[0], chain[1]) for chain in chains])
    raise CircuitSpecError(
        f"claim '{claim_id}': several multi-hop paths cannot be patched jointly "
        "(use each: true, one path per claim)"
    )


# ----------------------------------------------------------------------------------- receivers


def receiver_inputs(node: NodeRef) -> tuple[NodeRef, ...]:
    """The receiver nodes an edge into ``node`` patches: ``node`` itself, except that a bare head
    ``L7H5`` (which a hypothesis file must name through ``.q``/``.k``/``.v``) stands for all three of
    its inputs when the engine is called directly, as its API always accepted."""
    if node.kind is NodeKind.HEAD:
        return tuple(replace(node, kind=kind) for kind in CHANNEL_OF_KIND)
    return (node,)


def input_channels(node: NodeRef) -> tuple[str, ...]:
    """The geometry's receive channels of every input :func:`receiver_inputs` names."""
    return tuple(channel for part in receiver_inputs(node) for channel in receive_channels(part)[:1])


def input_hook(node: NodeRef, arch: Architecture) -> str:
    """The residual-stream hook whose value is the receiver's (pre-norm) input."""
    return residual_input_hook(receiver_inputs(node)[0], arch.n_layers, arch.final_hook)


def start_layer(node: NodeRef, arch: Architecture) -> int:
    """The first block whose computation a patch of the receiver's input changes (logits: none)."""
    if input_channels(node)[0] == "logits":
        return arch.n_layers
    assert node.layer is not None, node.text
    return arch.start_layer_after(node.layer, post_site=node.kind is NodeKind.RESID_POST)


def enters_block(node: NodeRef, start: int, arch: Architecture) -> bool:
    """Whether the receiver reads the residual stream entering block ``start`` (patched directly on
    the pass's input rather than by a hook)."""
    channel = input_channels(node)[0]
    if channel == "logits":
        return True
    if channel != "resid" or start_layer(node, arch) != start:
        return False
    return node.kind is NodeKind.RESID_PRE or start != node.layer  # a pre-norm resid_post: the next block


# ----------------------------------------------------------------------------------- checks


def check_edge(
    sender: NodeRef, receiver: NodeRef, method: str, senders: NodeRule, receivers: NodeRule
) -> None:
    """Sender / receiver legality (the registry's rules) and the order they write and read in."""
    if not senders(sender):
        raise CircuitSpecError(f"{method}: '{sender}' cannot be a sender (valid: {senders.valid})")
    if not all(receivers(part) for part in receiver_inputs(receiver)):
        raise CircuitSpecError(f"{method}: '{receiver}' cannot be a receiver (valid: {receivers.valid})")
    if send_order(sender) >= receive_order(receiver_inputs(receiver)[0]):
        raise CircuitSpecError(
            f"{method}: receiver '{receiver}' reads the residual stream before sender '{sender}' writes it"
        )


def check_jobs(jobs: Sequence[PathJob], arch: Architecture) -> None:
    """Every hop of every job is legal, and a chain's later senders are its earlier receivers."""
    for job in jobs:
        for k, hop in enumerate(job.hops):
            for sender, receiver in hop:
                check_edge(sender, receiver, "path patching", PATH_SENDER, PATH_RECEIVER)
                if receiver.layer is not None and receiver.layer >= arch.n_layers:
                    raise CircuitSpecError(
                        f"path patching: '{receiver}' is beyond the model's {arch.n_layers} layers"
                    )
                if k > 0 and sender not in {r for _, r in job.hops[k - 1]}:
                    raise CircuitSpecError(
                        f"path patching: '{sender}' sends on a later hop but receives nothing before it"
                    )
            if k + 1 < len(job.hops) and any(input_channels(r)[0] == "logits" for _, r in hop):
                raise CircuitSpecError("path patching: logits can only end a path")
