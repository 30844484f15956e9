"""Node geometry: the one place that knows, for every node kind, where it lives in a forward pass.

For each :class:`~circuitspec.spec.nodes.NodeKind` one :class:`KindGeometry` row says

- ``hook``: the TransformerLens hook its activation lives on;
- ``order``: when it runs (smaller runs earlier), used for edge direction everywhere;
- ``writes``: what it adds to the residual stream as a path *sender* (``head`` = ``z @ W_O[h]``,
  ``mlp`` = the MLP output, ``neuron`` = ``post[i] · W_out[i]``, ``stream`` = the activation itself),
  from which hook (``sender_hook``) and when (``send_order``); None when it sends nothing;
- ``channels``: how an edge enters it as a *receiver* (``q``/``k``/``v``, ``mlp_in``, ``resid``,
  ``logits``) and when it reads (``receive_order``); empty when nothing can enter it;
- ``sends_where_pinned``: whether ``@role`` pins where it writes. A head reached through its key or
  value at a role reads there but writes at its query positions, as attention does.

Grouped-query attention (the model is loaded ungrouped: ``hook_k`` / ``hook_v`` hold one copy per
query head): ``L7H5.k|v`` is query head 5's own copy; ``L7KV1.k|v`` is the shared key/value head 1,
i.e. the copies of every query head of its group together (:func:`query_heads`). As a sender a KV
node writes what its group's heads write; as a receiver it receives through all of them.

Claim kinds (``circuitspec.claims``) say which of these a method supports; compile-time checks and
every intervention ask this module, so ``validate`` and ``verify`` agree on what a node can do.
Torch-free: the engine turns a node's role into positions (``circuitspec.engine.sites``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .nodes import NodeKind, NodeRef

__all__ = [
    "CHANNEL_OF_KIND",
    "KindGeometry",
    "Writes",
    "expand_kv",
    "geometry",
    "hook_name",
    "is_dictionary_feature",
    "kv_group",
    "node_order",
    "query_heads",
    "receive_channels",
    "receive_order",
    "residual_input_hook",
    "send_order",
    "sender_hook",
    "sends_where_pinned",
    "writes",
]

Writes = Literal["head", "mlp", "neuron", "stream"]


@dataclass(frozen=True)
class KindGeometry:
    """Where one node kind lives; ``{layer}`` in a hook template is the node's layer."""

    hook: str
    order: float  # offset within the layer (embeddings: -1, logits: +inf; see node_order)
    writes: Writes | None = None
    sender_hook: str | None = None
    send_order: float | None = None
    channels: tuple[str, ...] = ()
    receive_order: float | None = None
    sends_where_pinned: bool = True
    dictionary: bool = False  # a spliced transcoder/SAE feature: a graph node, not an intervention site


_INF = float("inf")


def _head(hook: str, order: float, channel: str | None = None, pinned: bool = True) -> KindGeometry:
    """A head node: it sends the head's output; through ``channel`` (q/k/v) it can receive."""
    channels = (channel,) if channel else ()
    receive = 0.1 if channel else None
    return KindGeometry(hook, order, "head", "blocks.{layer}.attn.hook_z", 0.2, channels, receive, pinned)


def _mlp(hook: str, order: float, sends: Writes, sender: str) -> KindGeometry:
    """An MLP node: it receives through the MLP input and sends what ``sender`` holds."""
    return KindGeometry(hook, order, sends, sender, 0.6, ("mlp_in",), 0.4)


GEOMETRY: dict[NodeKind, KindGeometry] = {
    NodeKind.EMBED: KindGeometry("hook_embed", -1.0, "stream", "hook_embed", -1.0),
    NodeKind.POS_EMBED: KindGeometry("hook_pos_embed", -1.0, "stream", "hook_pos_embed", -1.0),
    NodeKind.HEAD: _head("blocks.{layer}.attn.hook_z", 0.2),
    NodeKind.HEAD_Q: _head("blocks.{layer}.attn.hook_q", 0.1, "q"),
    NodeKind.HEAD_K: _head("blocks.{layer}.attn.hook_k", 0.1, "k", pinned=False),
    NodeKind.HEAD_V: _head("blocks.{layer}.attn.hook_v", 0.1, "v", pinned=False),
    NodeKind.HEAD_PATTERN: KindGeometry("blocks.{layer}.attn.hook_pattern", 0.15),
    # a shared key/value head acts on its group's copies in the ungrouped hook_k / hook_v
    NodeKind.KV_K: _head("blocks.{layer}.attn.hook_k", 0.1, "k", pinned=False),
    NodeKind.KV_V: _head("blocks.{layer}.attn.hook_v", 0.1, "v", pinned=False),
    NodeKind.MLP: _mlp("blocks.{layer}.hook_mlp_out", 0.6, "mlp", "blocks.{layer}.hook_mlp_out"),
    NodeKind.MLP_IN: _mlp("blocks.{layer}.hook_mlp_in", 0.4, "mlp", "blocks.{layer}.hook_mlp_out"),
    NodeKind.MLP_NEURON: _mlp("blocks.{layer}.mlp.hook_post", 0.5, "neuron", "blocks.{layer}.mlp.hook_post"),
    NodeKind.RESID_PRE: KindGeometry(
        "blocks.{layer}.hook_resid_pre", 0.0, "stream", "blocks.{layer}.hook_resid_pre", 0.0, ("resid",), 0.05
    ),
    NodeKind.RESID_MID: KindGeometry(
        "blocks.{layer}.hook_resid_mid", 0.3, "stream", "blocks.{layer}.hook_resid_mid", 0.3, ("resid",), 0.35
    ),
    NodeKind.RESID_POST: KindGeometry(
        "blocks.{layer}.hook_resid_post",
        0.9,
        "stream",
        "blocks.{layer}.hook_resid_post",
        0.9,
        ("resid",),
        0.95,
    ),
    # dictionary features live on the spliced dictionary's hook; a graph edge may enter them (feature
    # circuits), but no path method sends or receives along them, so they write nothing
    NodeKind.TRANSCODER_FEATURE: KindGeometry(
        "blocks.{layer}.hook_mlp_out.hook_sae_acts_post", 0.5, channels=("mlp_in",), dictionary=True
    ),
    NodeKind.SAE_FEATURE: KindGeometry(
        "{site}.hook_sae_acts_post", 0.6, channels=("resid",), dictionary=True
    ),
    NodeKind.LOGITS: KindGeometry("unembed.hook_out", _INF, channels=("logits",), receive_order=_INF),
}

#: the q/k/v/MLP-input channel a node kind names when it is an edge's receiver
CHANNEL_OF_KIND = {NodeKind.HEAD_Q: "q", NodeKind.HEAD_K: "k", NodeKind.HEAD_V: "v"}
_QUERY_HEAD_OF_KV = {NodeKind.KV_K: NodeKind.HEAD_K, NodeKind.KV_V: NodeKind.HEAD_V}

_SAE_SITE = re.compile(r"(resid_pre|resid_mid|resid_post|MLP|mlp_out)(\d+)")
_SAE_ORDER = {"resid_pre": 0.0, "resid_mid": 0.3, "resid_post": 0.9}


def geometry(node: NodeRef) -> KindGeometry:
    """The geometry row of ``node``'s kind."""
    return GEOMETRY[node.kind]


def _fill(template: str, node: NodeRef) -> str:
    if "{site}" in template:
        m = _SAE_SITE.fullmatch(node.component.split(".", 1)[0])
        assert m, node.text
        name, layer = m.group(1), m.group(2)
        site = f"blocks.{layer}.hook_mlp_out" if name in ("MLP", "mlp_out") else f"blocks.{layer}.hook_{name}"
        return template.format(site=site)
    return template.format(layer=node.layer)


def hook_name(node: NodeRef) -> str:
    """The hook this node's activation lives on (``unembed.hook_out`` stands for the logits)."""
    return _fill(geometry(node).hook, node)


def _at_layer(node: NodeRef, offset: float) -> float:
    if node.kind in (NodeKind.EMBED, NodeKind.POS_EMBED) or offset in (-1.0, _INF):
        return offset
    assert node.layer is not None, node.text
    return node.layer + offset


def node_order(node: NodeRef) -> float:
    """Position of the node in the forward pass (smaller runs earlier).

    Within layer ``l``: resid_pre = l, head q/k/v = l + .1, pattern = l + .15, head output = l + .2,
    resid_mid = l + .3, MLP input = l + .4, neurons / transcoder features = l + .5, MLP output =
    l + .6, resid_post = l + .9; an SAE feature sits just after its site. Embeddings -1, logits +inf.
    """
    if node.kind is NodeKind.SAE_FEATURE:
        m = _SAE_SITE.fullmatch(node.component.split(".", 1)[0])
        base = _SAE_ORDER.get(m.group(1), 0.6) if m else 0.6
        return _at_layer(node, base) + 0.01
    return _at_layer(node, geometry(node).order)


def writes(node: NodeRef) -> Writes | None:
    """What the node adds to the residual stream as a path sender (None: it cannot send)."""
    return geometry(node).writes


def sender_hook(node: NodeRef) -> str:
    """Where a sender's own activation lives (a head: ``hook_z``; an MLP input: the MLP's output)."""
    row = geometry(node)
    if row.sender_hook is None:
        raise ValueError(f"'{node}' sends nothing along a path")
    return _fill(row.sender_hook, node)


def send_order(node: NodeRef) -> float:
    """When a sender writes to the residual stream."""
    row = geometry(node)
    if row.send_order is None:
        raise ValueError(f"'{node}' sends nothing along a path")
    return _at_layer(node, row.send_order)


def receive_channels(node: NodeRef) -> tuple[str, ...]:
    """How an edge enters ``node`` (empty: nothing can; an SAE on an MLP output reads the MLP input)."""
    if node.kind is NodeKind.SAE_FEATURE and node.component.startswith(("MLP", "mlp_out")):
        return ("mlp_in",)
    return geometry(node).channels


def is_dictionary_feature(node: NodeRef) -> bool:
    """A spliced transcoder / SAE feature: a node of the graph that no path method acts along."""
    return geometry(node).dictionary


def receive_order(node: NodeRef) -> float:
    """When a receiver reads the residual stream."""
    row = geometry(node)
    if row.receive_order is None:
        raise ValueError(f"'{node}' receives nothing along a path")
    return _at_layer(node, row.receive_order)


def sends_where_pinned(node: NodeRef) -> bool:
    """Whether ``@role`` pins where the node writes (not for a head reached through its key/value)."""
    return geometry(node).sends_where_pinned


def residual_input_hook(node: NodeRef, n_layers: int, final_hook: str | None = None) -> str:
    """The residual-stream hook whose value is this receiver's (pre-norm) input.

    A head reads ``resid_pre`` of its layer, an MLP ``resid_mid``, a residual site itself, the
    logits the stream after the last block (``final_hook`` overrides that, e.g. post-LN encoders).
    """
    channels = receive_channels(node)
    if not channels or geometry(node).dictionary:
        raise ValueError(f"'{node}' receives nothing along a path")
    if channels[0] == "logits":
        return final_hook or f"blocks.{n_layers - 1}.hook_resid_post"
    if channels[0] in ("q", "k", "v"):
        return f"blocks.{node.layer}.hook_resid_pre"
    if channels[0] == "mlp_in":
        return f"blocks.{node.layer}.hook_resid_mid"
    return hook_name(node)


# ----------------------------------------------------------------------------- grouped-query attention


def kv_group(kv_head: int, n_heads: int, n_kv_heads: int | None) -> tuple[int, ...]:
    """The query heads that read key/value head ``kv_head`` (contiguous, as TransformerLens repeats
    them: query head ``h`` reads ``h // (n_heads // n_kv_heads)``); raises ValueError with the
    user-facing reason when the model has no grouped-query attention or the index is out of range."""
    if n_kv_heads is None or n_kv_heads >= n_heads:
        raise ValueError("this model has no grouped-query attention")
    if not 0 <= kv_head < n_kv_heads:
        raise ValueError(
            f"key/value head {kv_head} out of range for a model with {n_kv_heads} key/value heads per "
            f"layer (valid: 0–{n_kv_heads - 1})"
        )
    size = n_heads // n_kv_heads
    return tuple(range(kv_head * size, (kv_head + 1) * size))


def query_heads(node: NodeRef, n_heads: int, n_kv_heads: int | None) -> tuple[int, ...]:
    """The query heads whose activations ``node`` acts on: its own head, its key/value group (a KV
    node), or none (not a head node)."""
    if node.is_kv:
        assert node.kv_head is not None, node.text
        try:
            return kv_group(node.kv_head, n_heads, n_kv_heads)
        except ValueError as exc:
            grouped = n_kv_heads is not None and n_kv_heads < n_heads
            hint = "" if grouped else f"; use L{node.layer}H{node.kv_head}.{node.component[-1]}"
            raise ValueError(f"'{node.text}': {exc}{hint}") from None
    return (node.head,) if node.head is not None else ()


def expand_kv(node: NodeRef, n_heads: int, n_kv_heads: int | None) -> tuple[NodeRef, ...]:
    """A KV node as its group's query-head nodes (``L7KV1.v`` → ``L7H3.v``, ``L7H4.v``, ``L7H5.v``, role
    kept); any other node as itself. Editing or receiving through all of them is editing the shared head."""
    if not node.is_kv:
        return (node,)
    kind = _QUERY_HEAD_OF_KV[node.kind]
    channel = node.component[-1]
    role = f"@{node.role}" if node.role else ""
    return tuple(
        NodeRef(f"L{node.layer}H{h}.{channel}{role}", kind, layer=node.layer, head=h, role=node.role)
        for h in query_heads(node, n_heads, n_kv_heads)
    )
