"""The node grammar: the one place a node name becomes a model site.

A node names a component of a transformer, optionally pinned to a token role::

    embed  pos_embed                      token / positional embeddings
    L7H5                                  head 5 of layer 7, its output (hook_z, per head)
    L7H5.q  L7H5.k  L7H5.v                the head's query / key / value vector
    L7H5.pattern                          the head's attention pattern (attention claims)
    MLP9  MLP9.in  MLP9.post[123]         MLP output, MLP input, one hidden neuron
    resid_pre5  resid_mid5  resid_post5   residual stream sites
    MLP0.tc[318]                          feature 318 of the transcoder replacing MLP0
    resid_pre5.sae[1234]                  feature 1234 of the SAE on resid_pre5
    logits                                the model output (a path's final receiver)
    ...@s_con                             any of the above at the token of role ``s_con``

Parsing needs no torch and no model; :func:`parse_node` returns a :class:`NodeRef` whose
``hook_name`` is the TransformerLens hook the node lives on. Token positions depend on the
prompts and are resolved by ``circuitspec.engine.sites`` from ``NodeRef.role``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = ["NODE_GRAMMAR", "NodeKind", "NodeRef", "NodeSyntaxError", "parse_node"]

NODE_GRAMMAR = (
    "embed | pos_embed | L<l>H<h>[.q|.k|.v|.pattern] | MLP<l>[.in|.post[<i>]] | "
    "resid_pre<l> | resid_mid<l> | resid_post<l> | MLP<l>.tc[<i>] | <site>.sae[<i>] | logits, "
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
    MLP = "mlp"  # MLP output
    MLP_IN = "mlp_in"
    MLP_NEURON = "mlp_neuron"
    RESID_PRE = "resid_pre"
    RESID_MID = "resid_mid"
    RESID_POST = "resid_post"
    TRANSCODER_FEATURE = "transcoder_feature"
    SAE_FEATURE = "sae_feature"
    LOGITS = "logits"


HEAD_CHANNELS = {"q": NodeKind.HEAD_Q, "k": NodeKind.HEAD_K, "v": NodeKind.HEAD_V}

_ROLE = r"(?:@(?P<role>[A-Za-z_][A-Za-z0-9_]*))?"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?P<name>embed|pos_embed|logits)" + _ROLE + "$"), "simple"),
    (re.compile(r"^L(?P<layer>\d+)H(?P<head>\d+)(?:\.(?P<chan>q|k|v|pattern))?" + _ROLE + "$"), "head"),
    (re.compile(r"^MLP(?P<layer>\d+)\.tc\[(?P<feature>\d+)\]" + _ROLE + "$"), "tc"),
    (re.compile(r"^MLP(?P<layer>\d+)\.post\[(?P<neuron>\d+)\]" + _ROLE + "$"), "neuron"),
    (re.compile(r"^MLP(?P<layer>\d+)(?:\.(?P<chan>in))?" + _ROLE + "$"), "mlp"),
    (
        re.compile(
            r"^(?P<site>resid_pre|resid_mid|resid_post|MLP|mlp_out)(?P<layer>\d+)\.sae\[(?P<feature>\d+)\]"
            + _ROLE
            + "$"
        ),
        "sae",
    ),
    (re.compile(r"^(?P<site>resid_pre|resid_mid|resid_post)(?P<layer>\d+)" + _ROLE + "$"), "resid"),
]


@dataclass(frozen=True)
class NodeRef:
    """A parsed node name. ``layer``/``head``/``index`` are None where they do not apply."""

    text: str
    kind: NodeKind
    layer: int | None = None
    head: int | None = None
    index: int | None = None  # feature or neuron index
    role: str | None = None

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
    def is_feature(self) -> bool:
        return self.kind in (NodeKind.TRANSCODER_FEATURE, NodeKind.SAE_FEATURE)

    @property
    def dictionary(self) -> str | None:
        """The dictionary a feature node belongs to, e.g. ``MLP0.tc`` or ``resid_pre5.sae``."""
        if not self.is_feature:
            return None
        return self.component.rsplit("[", 1)[0]

    @property
    def hook_name(self) -> str:
        """The TransformerLens hook this node's activation lives on."""
        layer = self.layer
        match self.kind:
            case NodeKind.EMBED:
                return "hook_embed"
            case NodeKind.POS_EMBED:
                return "hook_pos_embed"
            case NodeKind.HEAD:
                return f"blocks.{layer}.attn.hook_z"
            case NodeKind.HEAD_Q:
                return f"blocks.{layer}.attn.hook_q"
            case NodeKind.HEAD_K:
                return f"blocks.{layer}.attn.hook_k"
            case NodeKind.HEAD_V:
                return f"blocks.{layer}.attn.hook_v"
            case NodeKind.HEAD_PATTERN:
                return f"blocks.{layer}.attn.hook_pattern"
            case NodeKind.MLP:
                return f"blocks.{layer}.hook_mlp_out"
            case NodeKind.MLP_IN:
                return f"blocks.{layer}.hook_mlp_in"
            case NodeKind.MLP_NEURON:
                return f"blocks.{layer}.mlp.hook_post"
            case NodeKind.RESID_PRE | NodeKind.RESID_MID | NodeKind.RESID_POST:
                return f"blocks.{layer}.hook_{self.kind.value}"
            case NodeKind.TRANSCODER_FEATURE:
                # sae-lens names a spliced dictionary's activations <hook>.hook_sae_acts_post
                return f"blocks.{layer}.hook_mlp_out.hook_sae_acts_post"
            case NodeKind.SAE_FEATURE:
                site = self.component.split(".", 1)[0]
                site_hook = _sae_site_hook(site)
                return f"{site_hook}.hook_sae_acts_post"
            case NodeKind.LOGITS:
                return "unembed.hook_out"  # not a TransformerLens hook; logits are the output
        raise AssertionError(self.kind)

    @property
    def receiver_input_hook(self) -> str | None:
        """Where a path edge *into* this node enters: the per-head q/k/v input, MLP input, ..."""
        layer = self.layer
        match self.kind:
            case NodeKind.HEAD_Q:
                return f"blocks.{layer}.hook_q_input"
            case NodeKind.HEAD_K:
                return f"blocks.{layer}.hook_k_input"
            case NodeKind.HEAD_V:
                return f"blocks.{layer}.hook_v_input"
            case NodeKind.MLP | NodeKind.MLP_IN | NodeKind.MLP_NEURON | NodeKind.TRANSCODER_FEATURE:
                return f"blocks.{layer}.hook_mlp_in"
            case NodeKind.RESID_PRE | NodeKind.RESID_MID | NodeKind.RESID_POST:
                return self.hook_name
            case NodeKind.LOGITS:
                return "ln_final.hook_normalized"
            case _:
                return None

    # -- causal order -----------------------------------------------------------------
    @property
    def order(self) -> float:
        """Position of the node in the forward pass (smaller runs earlier).

        Within layer ``l``: resid_pre = l, head inputs/q/k/v/pattern = l + .1, head output
        = l + .2, resid_mid = l + .3, MLP input = l + .4, MLP neurons/features = l + .5,
        MLP output = l + .6, resid_post = l + .9. Embeddings are -1, logits +inf.
        """
        kind = self.kind
        if kind in (NodeKind.EMBED, NodeKind.POS_EMBED):
            return -1.0
        if kind is NodeKind.LOGITS:
            return float("inf")
        assert self.layer is not None
        offset = {
            NodeKind.RESID_PRE: 0.0,
            NodeKind.HEAD_Q: 0.1,
            NodeKind.HEAD_K: 0.1,
            NodeKind.HEAD_V: 0.1,
            NodeKind.HEAD_PATTERN: 0.15,
            NodeKind.HEAD: 0.2,
            NodeKind.RESID_MID: 0.3,
            NodeKind.MLP_IN: 0.4,
            NodeKind.MLP_NEURON: 0.5,
            NodeKind.TRANSCODER_FEATURE: 0.5,
            NodeKind.MLP: 0.6,
            NodeKind.RESID_POST: 0.9,
        }
        if kind is NodeKind.SAE_FEATURE:
            site = self.component.split(".", 1)[0]
            base = {"resid_pre": 0.0, "resid_mid": 0.3, "resid_post": 0.9}.get(re.sub(r"\d+$", "", site), 0.6)
            return self.layer + base + 0.01
        return self.layer + offset[kind]

    def with_role(self, role: str | None) -> NodeRef:
        text = self.component + (f"@{role}" if role else "")
        return NodeRef(text, self.kind, self.layer, self.head, self.index, role)

    def __str__(self) -> str:
        return self.text


def _sae_site_hook(site: str) -> str:
    m = re.fullmatch(r"(resid_pre|resid_mid|resid_post|MLP|mlp_out)(\d+)", site)
    assert m, site
    name, layer = m.group(1), m.group(2)
    if name in ("MLP", "mlp_out"):
        return f"blocks.{layer}.hook_mlp_out"
    return f"blocks.{layer}.hook_{name}"


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
            kind = {None: NodeKind.HEAD, "pattern": NodeKind.HEAD_PATTERN, **HEAD_CHANNELS}[chan]
            return NodeRef(raw, kind, layer=layer, head=int(groups["head"]), role=role)
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
    raise NodeSyntaxError(f"'{raw}' is not a node name (valid: {NODE_GRAMMAR})")
