"""The node grammar: the one place a node name becomes a model site.

A node names a component of a transformer, optionally pinned to a token role::

    embed  pos_embed                      token / positional embeddings
    L7H5                                  head 5 of layer 7, its output (hook_z, per head)
    L7H5.q  L7H5.k  L7H5.v                the head's query / key / value vector (its own copy)
    L7KV1.k  L7KV1.v                      grouped-query attention: the key / value head 1 that a
                                          group of query heads shares (all of their copies)
    L7H5.pattern                          the head's attention pattern (attention claims)
    MLP9  MLP9.in  MLP9.post[123]         MLP output, MLP input, one hidden neuron
    MLP9.post[10:20]                      neurons 10 to 19: a group of MLP9.post[i] (not a path step)
    resid_pre5  resid_mid5  resid_post5   residual stream sites
    MLP0.tc[318]                          feature 318 of the transcoder replacing MLP0
    resid_pre5.sae[1234]                  feature 1234 of the SAE on resid_pre5
    logits                                the model output (a path's final receiver)
    ...@s_con                             any of the above at the token of role ``s_con``

Parsing needs no torch and no model; :func:`parse_node` returns a :class:`NodeRef`. Where a node
lives in a forward pass (hook, order, what it sends and receives) is ``circuitspec.spec.geometry``'s
alone; token positions depend on the prompts and are resolved by ``circuitspec.engine.sites``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum

__all__ = [
    "KV_CHANNELS",
    "LAYER_RANGE_GRAMMAR",
    "NEURON_RANGE",
    "NODE_GRAMMAR",
    "SCREEN_TARGETS",
    "NodeKind",
    "NodeRef",
    "NodeSyntaxError",
    "expand_neuron_range",
    "parse_layer_range",
    "parse_node",
]

NODE_GRAMMAR = (
    "embed | pos_embed | L<l>H<h>[.q|.k|.v|.pattern] | L<l>KV<g>.k|.v | MLP<l>[.in|.post[<i>]] | "
    "MLP<l>.post[<a>:<b>] (a group of neurons) | resid_pre<l> | resid_mid<l> | resid_post<l> | "
    "MLP<l>.tc[<i>] | <site>.sae[<i>] | logits, "
    "each optionally followed by @<role>"
)


class NodeSyntaxError(ValueError):
    """A node name that does not follow :data:`NODE_GRAMMAR`."""


class NodeKind(str, Enum):  # noqa: UP042 - str() and format() of members are relied on as is
    EMBED = "embed"
    POS_EMBED = "pos_embed"
    HEAD = "head"  # a head's output (z, mapped through W_O)
    HEAD_Q = "head_q"
    HEAD_K = "head_k"
    HEAD_V = "head_v"
    HEAD_PATTERN = "head_pattern"
    KV_K = "kv_k"  # grouped-query attention: a shared key head (every copy its query heads read)
    KV_V = "kv_v"  # ... and a shared value head
    MLP = "mlp"  # MLP output
    MLP_IN = "mlp_in"
    MLP_NEURON = "mlp_neuron"
    RESID_PRE = "resid_pre"
    RESID_MID = "resid_mid"
    RESID_POST = "resid_post"
    TRANSCODER_FEATURE = "transcoder_feature"
    SAE_FEATURE = "sae_feature"
    LOGITS = "logits"


HEAD_CHANNELS: dict[str | None, NodeKind] = {"q": NodeKind.HEAD_Q, "k": NodeKind.HEAD_K, "v": NodeKind.HEAD_V}
KV_CHANNELS: dict[str, NodeKind] = {"k": NodeKind.KV_K, "v": NodeKind.KV_V}

_ROLE = r"(?:@(?P<role>[A-Za-z_][A-Za-z0-9_]*))?"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?P<name>embed|pos_embed|logits)" + _ROLE + "$"), "simple"),
    (re.compile(r"^L(?P<layer>[0-9]+)H(?P<head>[0-9]+)(?:\.(?P<chan>q|k|v|pattern))?" + _ROLE + "$"), "head"),
    (re.compile(r"^L(?P<layer>[0-9]+)KV(?P<kv>[0-9]+)\.(?P<chan>k|v)" + _ROLE + "$"), "kv"),
    (re.compile(r"^MLP(?P<layer>[0-9]+)\.tc\[(?P<feature>[0-9]+)\]" + _ROLE + "$"), "tc"),
    (re.compile(r"^MLP(?P<layer>[0-9]+)\.post\[(?P<neuron>[0-9]+)\]" + _ROLE + "$"), "neuron"),
    (re.compile(r"^MLP(?P<layer>[0-9]+)(?:\.(?P<chan>in))?" + _ROLE + "$"), "mlp"),
    (
        re.compile(
            r"^(?P<site>resid_pre|resid_mid|resid_post|MLP|mlp_out)(?P<layer>[0-9]+)\.sae\[(?P<feature>[0-9]+)\]"
            + _ROLE
            + "$"
        ),
        "sae",
    ),
    (re.compile(r"^(?P<site>resid_pre|resid_mid|resid_post)(?P<layer>[0-9]+)" + _ROLE + "$"), "resid"),
]

_KV_WITHOUT_CHANNEL = re.compile(r"^L(?P<layer>[0-9]+)KV(?P<kv>[0-9]+)(?:\.\w*)?(?:@.*)?$")


@dataclass(frozen=True)
class NodeRef:
    """A parsed node name. ``layer``/``head``/``index``/``kv_head`` are None where they do not apply.

    ``head`` is always a query head; a shared key/value head (``L7KV1.v``) has ``kv_head`` instead,
    and which query heads share it is the model's (``circuitspec.spec.geometry.query_heads``).
    """

    text: str
    kind: NodeKind
    layer: int | None = None
    head: int | None = None
    index: int | None = None  # feature or neuron index
    role: str | None = None
    kv_head: int | None = None  # grouped-query attention: the shared key/value head

    # -- naming -----------------------------------------------------------------------
    @property
    def component(self) -> str:
        """The name without its role, e.g. ``L7H5.v`` for ``L7H5.v@s_con``."""
        return self.text.split("@", 1)[0]

    @property
    def is_head(self) -> bool:
        return self.kind in (
            NodeKind.HEAD,
            NodeKind.HEAD_Q,
            NodeKind.HEAD_K,
            NodeKind.HEAD_V,
            NodeKind.HEAD_PATTERN,
        )

    @property
    def is_kv(self) -> bool:
        """A shared key/value head of grouped-query attention (``L7KV1.k``, ``L7KV1.v``)."""
        return self.kind in (NodeKind.KV_K, NodeKind.KV_V)

    @property
    def is_feature(self) -> bool:
        return self.kind in (NodeKind.TRANSCODER_FEATURE, NodeKind.SAE_FEATURE)

    @property
    def dictionary(self) -> str | None:
        """The dictionary a feature node belongs to, e.g. ``MLP0.tc`` or ``resid_pre5.sae``."""
        if not self.is_feature:
            return None
        return self.component.rsplit("[", 1)[0]

    def with_role(self, role: str | None) -> NodeRef:
        text = self.component + (f"@{role}" if role else "")
        return replace(self, text=text, role=role)

    def __str__(self) -> str:
        return self.text


def parse_node(text: str) -> NodeRef:
    """Parse one node name; raises :class:`NodeSyntaxError` naming the grammar."""
    if not isinstance(text, str):
        raise NodeSyntaxError(f"a node name must be a string, got {type(text).__name__}")
    raw = text.strip()
    for pattern, shape in _PATTERNS:
        m = pattern.match(raw)
        if not m:
            continue
        groups = m.groupdict()
        role = groups.get("role")
        layer = int(groups["layer"]) if groups.get("layer") is not None else None
        if shape == "simple":
            kind = NodeKind(groups["name"])
            if kind is NodeKind.LOGITS and role is not None:
                raise NodeSyntaxError(f"'{raw}': logits take no @role (they are read at the end token)")
            return NodeRef(raw, kind, role=role)
        if shape == "head":
            chan = groups.get("chan")
            head_kinds: dict[str | None, NodeKind] = {
                None: NodeKind.HEAD,
                "pattern": NodeKind.HEAD_PATTERN,
                **HEAD_CHANNELS,
            }
            kind = head_kinds[chan]
            return NodeRef(raw, kind, layer=layer, head=int(groups["head"]), role=role)
        if shape == "kv":
            kind = KV_CHANNELS[groups["chan"]]
            return NodeRef(raw, kind, layer=layer, role=role, kv_head=int(groups["kv"]))
        if shape == "tc":
            feature = int(groups["feature"])
            return NodeRef(raw, NodeKind.TRANSCODER_FEATURE, layer=layer, index=feature, role=role)
        if shape == "neuron":
            return NodeRef(raw, NodeKind.MLP_NEURON, layer=layer, index=int(groups["neuron"]), role=role)
        if shape == "mlp":
            kind = NodeKind.MLP_IN if groups.get("chan") == "in" else NodeKind.MLP
            return NodeRef(raw, kind, layer=layer, role=role)
        if shape == "sae":
            return NodeRef(raw, NodeKind.SAE_FEATURE, layer=layer, index=int(groups["feature"]), role=role)
        if shape == "resid":
            return NodeRef(raw, NodeKind(groups["site"]), layer=layer, role=role)
    kv = _KV_WITHOUT_CHANNEL.match(raw)
    if kv:
        base = f"L{kv['layer']}KV{kv['kv']}"
        raise NodeSyntaxError(
            f"'{raw}': a shared key/value head is named with its channel (valid: {base}.k, {base}.v)"
        )
    raise NodeSyntaxError(f"'{raw}' is not a node name (valid: {NODE_GRAMMAR})")


# --------------------------------------------------------------------------- screens
# A screen target names every component of one kind; ``graph.resolver.Resolver.screen_cells`` expands
# it against the model's shape (and ``positions: all_roles`` against the templates' roles).
SCREEN_TARGETS: dict[str, NodeKind] = {
    "all_heads": NodeKind.HEAD,
    "all_mlps": NodeKind.MLP,
    "all_resid_pre": NodeKind.RESID_PRE,
    "all_resid_mid": NodeKind.RESID_MID,
    "all_resid_post": NodeKind.RESID_POST,
}
LAYER_RANGE_GRAMMAR = "a layer, a range '<first>-<last>', or several joined by ',' (e.g. 0-3,7)"
_LAYER_PART = re.compile(r"^(?P<first>[0-9]+)(?:-(?P<last>[0-9]+))?$")


def parse_layer_range(text: str | int) -> list[int]:
    """``"0-3,7"`` → ``[0, 1, 2, 3, 7]`` (sorted, without repeats); raises :class:`NodeSyntaxError`."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise NodeSyntaxError(f"layers must be {LAYER_RANGE_GRAMMAR}, got {type(text).__name__}")
    layers: set[int] = set()
    for part in str(text).replace(" ", "").split(","):
        m = _LAYER_PART.match(part)
        if not m:
            raise NodeSyntaxError(f"'{text}' is not a layer range (valid: {LAYER_RANGE_GRAMMAR})")
        first, last = int(m["first"]), int(m["last"] if m["last"] is not None else m["first"])
        if last < first:
            raise NodeSyntaxError(f"layer range '{part}' ends before it starts (write {last}-{first})")
        layers.update(range(first, last + 1))
    return sorted(layers)


NEURON_RANGE = re.compile(r"^MLP(?P<layer>[0-9]+)\.post\[(?P<start>[0-9]+):(?P<stop>[0-9]+)\]" + _ROLE + "$")


def expand_neuron_range(text: str) -> list[str] | None:
    """``MLP3.post[10:13]@end`` → ``["MLP3.post[10]@end", "MLP3.post[11]@end", "MLP3.post[12]@end"]``
    (Python's half-open slice); None when ``text`` is not a range. Raises :class:`NodeSyntaxError` on an
    empty range. A range is a group of neuron nodes, so every check of a neuron applies to each."""
    m = NEURON_RANGE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        return None
    start, stop = int(m["start"]), int(m["stop"])
    if stop <= start:
        empty = f"the neuron range [{start}:{stop}] is empty (stop must exceed start)"
        raise NodeSyntaxError(f"'{text.strip()}': {empty}")
    role = f"@{m['role']}" if m["role"] else ""
    return [f"MLP{m['layer']}.post[{i}]{role}" for i in range(start, stop)]
