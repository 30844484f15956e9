"""Which nodes a claim kind accepts as a target, a path sender or a path receiver (torch-free).

Every rule is a predicate over a :class:`NodeRef` derived from :mod:`circuitspec.spec.geometry`
(what a node writes, how an edge enters it, whether it is a dictionary feature), plus the
``valid`` text that error messages show. Compile-time checks and the engine read the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from circuitspec.spec.geometry import is_dictionary_feature, receive_channels, writes
from circuitspec.spec.nodes import NodeKind, NodeRef

__all__ = [
    "ATTENTION_TARGET",
    "ATTRIBUTION_TARGET",
    "EDITABLE",
    "PATH_RECEIVER",
    "PATH_SENDER",
    "RESIDUAL_SITE",
    "SCRUB_RECEIVER",
    "SCRUB_SENDER",
    "SCRUB_TARGET",
    "NodeRule",
]


@dataclass(frozen=True)
class NodeRule:
    """A predicate over nodes with the ``valid: ...`` text shown when a node fails it."""

    valid: str
    accepts: Callable[[NodeRef], bool]
    message: str = "a {kind} claim cannot act on '{node}' (valid: {valid})"

    def explain(self, kind: str, node: NodeRef) -> str:
        """The error text for ``node`` failing this rule as a ``kind`` target."""
        return self.message.format(kind=kind, node=node.text, valid=self.valid)

    def __call__(self, node: NodeRef) -> bool:
        return self.accepts(node)


def _editable(node: NodeRef) -> bool:
    """An activation an intervention can set: anything that writes, and dictionary features."""
    return writes(node) is not None or is_dictionary_feature(node)


def _path_receiver(node: NodeRef) -> bool:
    return bool(receive_channels(node)) and not is_dictionary_feature(node)


def _scrub_sender(node: NodeRef) -> bool:
    """Scrubbing splits the stream into component outputs: heads, whole MLPs and embeddings."""
    what = writes(node)
    if node.is_kv:  # a shared key/value head is several components; name its query heads' copies
        return False
    return what in ("head", "mlp") or (what == "stream" and node.layer is None)


def _scrub_receiver(node: NodeRef) -> bool:
    channels = receive_channels(node)
    return (
        _path_receiver(node)
        and not node.is_kv
        and channels[0] in ("q", "k", "v", "mlp_in", "logits")
        and writes(node) in ("head", "mlp", None)
    )


EDITABLE = NodeRule("any node but logits and L<l>H<h>.pattern", _editable)
ATTENTION_TARGET = NodeRule(
    "heads like L7H5 or L7H5.pattern",
    lambda n: n.kind in (NodeKind.HEAD, NodeKind.HEAD_PATTERN),
    "attention targets must be heads like L7H5 (got '{node}')",
)
ATTRIBUTION_TARGET = NodeRule(
    "heads L<l>H<h>, MLP<l>, embed, pos_embed, dictionary features",
    lambda n: (
        n.kind in (NodeKind.HEAD, NodeKind.MLP, NodeKind.EMBED, NodeKind.POS_EMBED)
        or is_dictionary_feature(n)
    ),
)
RESIDUAL_SITE = NodeRule(
    "resid_pre<l>, resid_mid<l>, resid_post<l>",
    lambda n: n.kind in (NodeKind.RESID_PRE, NodeKind.RESID_MID, NodeKind.RESID_POST),
)
PATH_SENDER = NodeRule(
    "heads L<l>H<h>[.q|.k|.v], L<l>KV<g>.k|v, MLP<l>, MLP<l>.in, MLP<l>.post[<i>], embed, pos_embed, "
    "residual sites",
    lambda n: writes(n) is not None,
)
PATH_RECEIVER = NodeRule(
    "L<l>H<h>.q|k|v, L<l>KV<g>.k|v, MLP<l>, MLP<l>.in, MLP<l>.post[<i>], residual sites, logits",
    _path_receiver,
)
SCRUB_SENDER = NodeRule("heads L<l>H<h>[.q|.k|.v], MLP<l>, MLP<l>.in, embed, pos_embed", _scrub_sender)
SCRUB_RECEIVER = NodeRule("L<l>H<h>.q|k|v, MLP<l>, MLP<l>.in, logits", _scrub_receiver)
SCRUB_TARGET = NodeRule(
    f"{SCRUB_SENDER.valid}, logits", lambda n: _scrub_sender(n) or n.kind is NodeKind.LOGITS
)
