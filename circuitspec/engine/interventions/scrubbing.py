"""Causal scrubbing (Chan et al. 2022): resample everything a hypothesis says does not matter.

The hypothesis is the claim's paths, read as a graph ``I`` of edges ``sender -> receiver`` (a head's
output, an MLP's output or an embedding into a head's q/k/v input, an MLP's input or the logits).
Each hypothesis node has an *equivalence*: the data-row fields it computes (``equivalence`` in the
claim; ``default`` for unlisted nodes; without ``default`` an unlisted node keeps its prompt's exact
row). For an original prompt ``x`` the scrubbed run is built recursively from the logits down, as in
Redwood's ``run_scrub``:

- a receiver's input along an edge of ``I`` from sender ``p`` is ``p``'s output evaluated on a prompt
  ``x'`` drawn from ``x``'s class for ``p``'s fields (prompts whose rows agree with ``x`` there), and
  ``p``'s own inputs are scrubbed the same way relative to ``x'`` (treeified: a component reached
  along two paths is evaluated separately, on separately drawn inputs);
- every other contribution to that input (components outside ``I``, edges ``I`` does not name, biases)
  takes its value on one random other prompt ``r`` drawn once per sample and shared by the whole tree;
- a hypothesis node with no hypothesised inputs (a leaf) is read whole from its drawn prompt.

Because the residual stream is a sum, a receiver's scrubbed input is ``input(r) + Σ_edges (value_p −
p(r))``, so each tree node needs one batched call of one component (a head's attention, an MLP) on
rows ``n_prompts × samples`` and the logits need only ``ln_final`` and the unembedding: the engine
runs one counted forward pass (the clean cache, shared with path patching) plus one component call
per non-leaf tree node. Resampled prompts must line up token by token, so classes and the random
pool are restricted to prompts of the same length and role positions.

Reported per prompt (means over samples): ``intervened`` the scrubbed metric, ``clean`` the model's
metric, ``corrupt`` the random-scrub metric (the empty hypothesis: the whole run on ``r``), so
``recovered = (L_scrubbed − L_random) / (L_model − L_random)``. :func:`reference_scrub` is the slow,
explicit per-sample, per-path version the tests compare against.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement, RunCost
from circuitspec.spec.nodes import NodeKind, NodeRef

from ..context import RunContext
from .path_patching import run_cache_names

__all__ = [
    "ScrubPlan",
    "build_plan",
    "hypothesis_edges",
    "measure_causal_scrubbing",
    "reference_scrub",
    "scrub",
]

_HEADS = (NodeKind.HEAD, NodeKind.HEAD_Q, NodeKind.HEAD_K, NodeKind.HEAD_V)
_MLPS = (NodeKind.MLP, NodeKind.MLP_IN)
_EMBEDS = (NodeKind.EMBED, NodeKind.POS_EMBED)


# ----------------------------------------------------------------------------------- the hypothesis


@dataclass(frozen=True)
class Component:
    """A model component as a hypothesis node: ``kind`` head|mlp|embed|pos_embed|logits."""

    kind: str
    layer: int | None = None
    head: int | None = None

    @property
    def name(self) -> str:
        if self.kind == "head":
            return f"L{self.layer}H{self.head}"
        if self.kind == "mlp":
            return f"MLP{self.layer}"
        return self.kind

    @property
    def order(self) -> float:
        return {"embed": -1.0, "pos_embed": -1.0, "logits": float("inf")}.get(
            self.kind, (self.layer or 0) + (0.2 if self.kind == "head" else 0.6)
        )


@dataclass(frozen=True)
class Edge:
    """``sender`` (at ``sender_role``, else everywhere) into ``receiver``'s ``channel`` (at its role)."""

    sender: Component
    receiver: Component
    channel: str  # q | k | v | mlp_in | logits
    sender_role: str | None
    receiver_role: str | None
    sender_text: str


def _component(node: NodeRef, as_receiver: bool) -> tuple[Component, tuple[str, ...]]:
    """The component a node names and, as a receiver, the input channels it names."""
    if node.kind in _HEADS:
        chans = {NodeKind.HEAD_Q: ("q",), NodeKind.HEAD_K: ("k",), NodeKind.HEAD_V: ("v",)}.get(
            node.kind, ("q", "k", "v")
        )
        return Component("head", node.layer, node.head), chans
    if node.kind in _MLPS:
        return Component("mlp", node.layer), ("mlp_in",)
    if node.kind in _EMBEDS and not as_receiver:
        return Component(node.kind.value), ()
    if node.kind is NodeKind.LOGITS and as_receiver:
        return Component("logits"), ("logits",)
    role = "receiver" if as_receiver else "sender"
    raise CircuitSpecError(
        f"causal scrubbing: node '{node}' cannot be a {role} (valid: heads L<l>H<h>[.q|.k|.v], MLP<l>, "
        "embed/pos_embed as senders, logits as the final receiver)"
    )


def hypothesis_edges(chains: Sequence[Sequence[NodeRef]], targets: Sequence[NodeRef] = ()) -> list[Edge]:
    """The hypothesis graph's edges from the claim's chains, checked to form paths into the logits."""
    edges: dict[tuple, Edge] = {}
    for chain in chains:
        for a, b in itertools.pairwise(chain):
            sender, _ = _component(a, as_receiver=False)
            receiver, chans = _component(b, as_receiver=True)
            if sender.order >= receiver.order - (0.1 if receiver.kind == "head" else 0.2):
                raise CircuitSpecError(
                    f"causal scrubbing: '{b}' reads the residual stream before '{a}' writes it"
                )
            for chan in chans:
                # a head reached through its key/value at @role reads there but writes at its
                # query positions, so as a sender it is not pinned (as in path patching)
                send_role = None if a.kind in (NodeKind.HEAD_K, NodeKind.HEAD_V) else a.role
                edge = Edge(sender, receiver, chan, send_role, b.role, a.text)
                edges[(sender, receiver, chan, send_role, b.role)] = edge
    edge_list = list(edges.values())
    on_paths = {e.sender for e in edge_list} | {e.receiver for e in edge_list}
    for node in targets:
        comp, _ = _component(node, as_receiver=node.kind is NodeKind.LOGITS)
        if comp not in on_paths:
            raise CircuitSpecError(
                f"causal scrubbing: node '{node}' is on no path of the hypothesis "
                "(name paths 'A -> B -> logits')"
            )
    # every hypothesis node must reach the logits
    reaches = {Component("logits")}
    changed = True
    while changed:
        changed = False
        for e in edge_list:
            if e.receiver in reaches and e.sender not in reaches:
                reaches.add(e.sender)
                changed = True
    stranded = sorted(comp.name for comp in on_paths - reaches)
    if stranded:
        raise CircuitSpecError(
            f"causal scrubbing: {', '.join(stranded)} do(es) not reach logits along the hypothesis' paths "
            "(every path must end at logits)"
        )
    return edge_list


# ----------------------------------------------------------------------------------- the plan


@dataclass
class TreeNode:
    """One treeified evaluation of a component: on rows ``inputs`` (prompt index per batch row)."""

    component: Component
    inputs: np.ndarray  # [B] prompt indices
    edge: Edge | None = None  # the edge this evaluation feeds (None for the root)
    children: list[int] = field(default_factory=list)  # indices into ScrubPlan.nodes


@dataclass
class ScrubPlan:
    """The treeified hypothesis with every resampling decision made (shared by engine and reference).

    Batch row ``b`` is prompt ``originals[b]`` in sample ``b // n``; ``randoms[b]`` is its shared
    random other prompt; ``nodes[0]`` is the logits.
    """

    originals: np.ndarray
    randoms: np.ndarray
    nodes: list[TreeNode]
    samples: int


def _fields_for(
    edge: Edge, equivalence: Mapping[str, Sequence[str]], all_fields: Sequence[str]
) -> tuple[str, ...]:
    for key in (edge.sender_text, edge.sender_text.split("@", 1)[0], edge.sender.name):
        if key in equivalence:
            return tuple(equivalence[key])
    if "default" in equivalence:
        return tuple(equivalence["default"])
    return tuple(all_fields)


def _shape_keys(prompts: Any) -> list[tuple]:
    """Prompts whose activations line up position by position share a key (length and role positions)."""
    roles = sorted(prompts.role_positions)
    return [
        (int(prompts.lengths[i]), *(int(prompts.role_positions[r][i]) for r in roles))
        for i in range(len(prompts))
    ]


def build_plan(
    prompts: Any,
    edges: Sequence[Edge],
    equivalence: Mapping[str, Sequence[str]],
    samples: int,
    seed: int,
    max_tree_nodes: int = 4096,
) -> ScrubPlan:
    """Treeify the hypothesis and draw every resampled input (class-mates and the random prompt)."""
    rng = np.random.default_rng(seed)
    n = len(prompts)
    rows = prompts.rows
    all_fields = sorted({f for row in rows for f in row})
    for key, fields in equivalence.items():
        for f in fields:
            if f not in all_fields:
                raise CircuitSpecError(
                    f"causal scrubbing: equivalence of '{key}' names field '{f}' that the data rows lack "
                    f"(valid: {', '.join(all_fields)})"
                )
    shapes = _shape_keys(prompts)
    classes: dict[tuple[str, ...], dict[tuple, list[int]]] = {}

    def members(fields: tuple[str, ...]) -> dict[tuple, list[int]]:
        if fields not in classes:
            groups: dict[tuple, list[int]] = {}
            for i in range(n):
                groups.setdefault((shapes[i], *(rows[i].get(f) for f in fields)), []).append(i)
            classes[fields] = groups
        return classes[fields]

    def key(i: int, fields: tuple[str, ...]) -> tuple:
        return (shapes[i], *(rows[i].get(f) for f in fields))

    originals = np.tile(np.arange(n), samples)
    pool = members(())
    randoms = np.empty_like(originals)
    for b, x in enumerate(originals):
        others = [j for j in pool[key(int(x), ())] if j != x]
        randoms[b] = rng.choice(others) if others else x

    incoming: dict[Component, list[Edge]] = {}
    for e in edges:
        incoming.setdefault(e.receiver, []).append(e)
    nodes = [TreeNode(Component("logits"), originals.copy())]
    stack = [0]
    while stack:
        parent = stack.pop()
        for e in incoming.get(nodes[parent].component, []):
            fields = _fields_for(e, equivalence, all_fields)
            groups = members(fields)
            drawn = np.array([rng.choice(groups[key(int(x), fields)]) for x in nodes[parent].inputs])
            nodes.append(TreeNode(e.sender, drawn, e))
            nodes[parent].children.append(len(nodes) - 1)
            stack.append(len(nodes) - 1)
            if len(nodes) > max_tree_nodes:
                raise CircuitSpecError(
                    f"causal scrubbing: the treeified hypothesis exceeds {max_tree_nodes} nodes "
                    f"at '{e.sender.name}' "
                    "(too many paths; scrub a smaller hypothesis)"
                )
    return ScrubPlan(originals, randoms, nodes, samples)


# ----------------------------------------------------------------------------------- shared geometry


def _pos_mask(role: str | None, prompts: Any, idx: np.ndarray, seq: int) -> torch.Tensor:
    """``[B, seq, 1]``: 1 at the role's position of each row's prompt (everywhere without a role)."""
    if role is None:
        return torch.ones(len(idx), seq, 1)
    pos = prompts.positions(role)[torch.as_tensor(idx)]
    mask = torch.zeros(len(idx), seq, 1)
    mask[torch.arange(len(idx)), pos.long(), 0] = 1.0
    return mask


def _input_hook(comp: Component, channel: str, n_layers: int) -> str:
    """The residual-stream hook whose value is ``comp``'s (pre-LN) input on ``channel``."""
    if channel == "logits":
        return f"blocks.{n_layers - 1}.hook_resid_post"
    if channel == "mlp_in":
        return f"blocks.{comp.layer}.hook_resid_mid"
    return f"blocks.{comp.layer}.hook_resid_pre"


def _contribution(model: Any, comp: Component, cache: Mapping[str, torch.Tensor], idx: Any) -> torch.Tensor:
    """``comp``'s term in the residual stream on prompts ``idx`` (from a clean cache)."""
    if comp.kind == "head":
        z = cache[f"blocks.{comp.layer}.attn.hook_z"][idx][:, :, comp.head]
        return z @ model.blocks[comp.layer].attn.W_O[comp.head]
    if comp.kind == "mlp":
        return cache[f"blocks.{comp.layer}.hook_mlp_out"][idx]
    return cache[f"hook_{comp.kind}"][idx]


# ----------------------------------------------------------------------------------- the engine


def _clean_cache(ctx: RunContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return ctx.clean(run_cache_names(ctx.model))  # shared with path patching and the planner


def _evaluate(model: Any, comp: Component, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """One batched call of one component on given pre-LN inputs; its residual-stream term."""
    block = model.blocks[comp.layer]
    if comp.kind == "mlp":
        return block.mlp(block.ln2(inputs["mlp_in"]))
    grabbed: dict[str, torch.Tensor] = {}

    def grab(act: torch.Tensor, hook: Any) -> None:
        grabbed["z"] = act[:, :, comp.head]

    with model.hooks(fwd_hooks=[(f"blocks.{comp.layer}.attn.hook_z", grab)]):
        block.attn(block.ln1(inputs["q"]), block.ln1(inputs["k"]), block.ln1(inputs["v"]))
    return grabbed["z"] @ block.attn.W_O[comp.head]


def scrub(ctx: RunContext, plan: ScrubPlan) -> tuple[torch.Tensor, dict[str, int]]:
    """Batched scrubbed end-token logits ``[B, vocab]`` for every row of ``plan``; plus call counts."""
    model = ctx.model
    prompts = ctx.prompts
    n_layers = model.cfg.n_layers
    seq = prompts.tokens.shape[1]
    _, cache = _clean_cache(ctx)
    randoms = torch.as_tensor(plan.randoms)
    values: dict[int, torch.Tensor] = {}
    calls = 0
    with torch.inference_mode():
        for index in reversed(range(len(plan.nodes))):  # children always come after their parent
            tree = plan.nodes[index]
            comp = tree.component
            if not tree.children and comp.kind != "logits":
                values[index] = _contribution(model, comp, cache, torch.as_tensor(tree.inputs))
                continue
            channels = (
                ("logits",)
                if comp.kind == "logits"
                else ("mlp_in",)
                if comp.kind == "mlp"
                else ("q", "k", "v")
            )
            inputs = {c: cache[_input_hook(comp, c, n_layers)][randoms].clone() for c in channels}
            for child_index in tree.children:
                child = plan.nodes[child_index]
                edge = child.edge
                assert edge is not None
                mask = _pos_mask(edge.sender_role, prompts, tree.inputs, seq) * _pos_mask(
                    edge.receiver_role, prompts, tree.inputs, seq
                )
                inputs[edge.channel] += mask * (
                    values[child_index] - _contribution(model, edge.sender, cache, randoms)
                )
            if comp.kind == "logits":
                final = inputs["logits"]
                ends = prompts.lengths[torch.as_tensor(plan.originals)] - 1
                last = final[torch.arange(final.shape[0]), ends][:, None]
                normed = model.ln_final(last) if model.cfg.normalization_type is not None else last
                return model.unembed(normed)[:, 0], {"component_calls": calls, "tree_nodes": len(plan.nodes)}
            values[index] = _evaluate(model, comp, inputs)
            calls += 1
    raise AssertionError("the plan has no root")


def _row_prompts(prompts: Any, idx: np.ndarray) -> Any:
    """A view of ``prompts`` reindexed by rows (for metrics on ``[B, vocab]`` logits)."""
    from dataclasses import replace

    t = torch.as_tensor(idx)
    return replace(
        prompts,
        tokens=prompts.tokens[t],
        corrupt_tokens=prompts.corrupt_tokens[t],
        lengths=prompts.lengths[t],
        role_positions={k: v[t] for k, v in prompts.role_positions.items()},
        desired=prompts.desired[t],
        undesired=prompts.undesired[t],
        corrupt_desired=prompts.corrupt_desired[t],
        corrupt_undesired=prompts.corrupt_undesired[t],
        rows=[prompts.rows[i] for i in idx],
        template_ids=[prompts.template_ids[i] for i in idx],
    )


def measure_causal_scrubbing(ctx: RunContext, claim: Any, graph: Any) -> Measurement:
    """The planner's entry point for a ``causal_scrubbing`` claim (see the module docstring)."""
    t0 = time.perf_counter()
    passes0, tokens0 = ctx.counter.forward_passes, ctx.counter.tokens
    edges = hypothesis_edges(graph.chains(claim.id), graph.targets(claim.id))
    seed = int(getattr(getattr(graph, "hypothesis", None), "seed", 0) or 0)
    plan = build_plan(ctx.prompts, edges, claim.equivalence, claim.samples, seed)
    scrubbed_logits, counts = scrub(ctx, plan)
    clean_logits, _ = _clean_cache(ctx)
    prompts = ctx.prompts
    n = len(prompts)
    row_prompts = _row_prompts(prompts, plan.originals)
    scrubbed = ctx.metric(scrubbed_logits, row_prompts).reshape(plan.samples, n).mean(0)
    ends = prompts.lengths - 1
    random_last = clean_logits[torch.as_tensor(plan.randoms), ends[torch.as_tensor(plan.originals)]]
    random = ctx.metric(random_last, row_prompts).reshape(plan.samples, n).mean(0)
    model_metric = ctx.metric(clean_logits, prompts)
    arrays = {
        "value": (scrubbed - model_metric).float().cpu().numpy(),
        "clean": model_metric.float().cpu().numpy(),
        "corrupt": random.float().cpu().numpy(),
        "intervened": scrubbed.float().cpu().numpy(),
    }
    cost = RunCost(
        ctx.counter.forward_passes - passes0, ctx.counter.tokens - tokens0, time.perf_counter() - t0
    )
    extra = {
        **counts,
        "samples": plan.samples,
        # prompts with no other prompt of their shape keep themselves as the "random" input
        "prompts_without_partner": int((plan.randoms == plan.originals).sum() // plan.samples),
        "edges": [f"{e.sender.name}->{e.receiver.name}.{e.channel}" for e in edges],
    }
    return Measurement(claim.id, "causal_scrubbing", n, arrays=arrays, extra=extra, cost=cost)


# ----------------------------------------------------------------------------------- the reference


def reference_scrub(model: Any, prompts: Any, plan: ScrubPlan) -> torch.Tensor:
    """Slow explicit causal scrubbing: per batch row, recursive ``run_scrub`` with whole forward passes.

    For each tree node it runs the model on the shared random prompt with plain hooks, rebuilds the
    component's input as the explicit sum of every upstream term (embeddings, each head's ``z @ W_O``,
    attention biases, each MLP's output), with the hypothesis' edges taking their recursively scrubbed
    values, writes it into ``hook_{q,k,v}_input`` / ``hook_mlp_in`` / the final residual stream, and
    reads the component's output. Returns end-token logits ``[B, vocab]``.
    """
    n_layers = model.cfg.n_layers
    old_split, old_mlp_in = model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in
    model.set_use_split_qkv_input(True)
    model.set_use_hook_mlp_in(True)
    out = []
    try:
        with torch.inference_mode():
            caches: dict[int, Any] = {}

            def cache_of(i: int) -> Any:
                if i not in caches:
                    caches[i] = model.run_with_cache(prompts.tokens[i : i + 1])[1]
                return caches[i]

            for b in range(len(plan.originals)):
                r = int(plan.randoms[b])
                out.append(_reference_node(model, prompts, plan, 0, b, r, cache_of, n_layers))
    finally:
        model.set_use_split_qkv_input(old_split)
        model.set_use_hook_mlp_in(old_mlp_in)
    return torch.cat(out)


def _explicit_terms(
    model: Any, cache: Any, comp: Component, channel: str, n_layers: int
) -> dict[Any, torch.Tensor]:
    """Every term of ``comp``'s input on ``channel`` from one run's cache, keyed by component (or 'bias')."""
    limit = n_layers if channel == "logits" else comp.layer
    terms: dict[Any, torch.Tensor] = {
        Component("embed"): cache["hook_embed"][0],
        Component("pos_embed"): cache["hook_pos_embed"][0],
    }
    bias = torch.zeros_like(terms[Component("embed")])
    for layer in range(limit + (1 if channel == "mlp_in" else 0)):
        attn = model.blocks[layer].attn
        z = cache[f"blocks.{layer}.attn.hook_z"][0]
        for h in range(model.cfg.n_heads):
            terms[Component("head", layer, h)] = z[:, h] @ attn.W_O[h]
        bias = bias + attn.b_O
        if layer < limit and not model.cfg.attn_only:
            terms[Component("mlp", layer)] = cache[f"blocks.{layer}.hook_mlp_out"][0]
    terms["bias"] = bias
    return terms


def _reference_node(
    model, prompts, plan: ScrubPlan, index: int, b: int, r: int, cache_of, n_layers: int
) -> torch.Tensor:
    """run_scrub for tree node ``index`` on batch row ``b``: its residual term (or logits at the root)."""
    tree = plan.nodes[index]
    comp = tree.component
    x = int(tree.inputs[b])
    if not tree.children and comp.kind != "logits":  # a leaf: read whole from its drawn prompt
        cache = cache_of(x)
        if comp.kind == "head":
            return (
                cache[f"blocks.{comp.layer}.attn.hook_z"][0, :, comp.head]
                @ model.blocks[comp.layer].attn.W_O[comp.head]
            )
        if comp.kind == "mlp":
            return cache[f"blocks.{comp.layer}.hook_mlp_out"][0]
        return cache[f"hook_{comp.kind}"][0]
    seq = prompts.tokens.shape[1]
    channels = (
        ("logits",) if comp.kind == "logits" else ("mlp_in",) if comp.kind == "mlp" else ("q", "k", "v")
    )
    random_cache = cache_of(r)
    inputs = {}
    for channel in channels:
        terms = _explicit_terms(model, random_cache, comp, channel, n_layers)
        for child_index in tree.children:
            edge = plan.nodes[child_index].edge
            if edge.channel != channel:
                continue
            value = _reference_node(model, prompts, plan, child_index, b, r, cache_of, n_layers)
            mask = (
                _pos_mask(edge.sender_role, prompts, np.array([x]), seq)[0]
                * _pos_mask(edge.receiver_role, prompts, np.array([x]), seq)[0]
            )
            terms[(edge, child_index)] = mask * (value - terms[edge.sender])  # this path's input instead
        inputs[channel] = sum(terms.values())
    tokens = prompts.tokens[r : r + 1]
    if comp.kind == "logits":

        def set_final(act, hook):
            return inputs["logits"][None]

        logits = model.run_with_hooks(
            tokens, fwd_hooks=[(f"blocks.{n_layers - 1}.hook_resid_post", set_final)]
        )
        return logits[:, int(prompts.lengths[x]) - 1]
    hooks = []
    if comp.kind == "mlp":
        hooks.append((f"blocks.{comp.layer}.hook_mlp_in", lambda act, hook: inputs["mlp_in"][None]))
        read = f"blocks.{comp.layer}.hook_mlp_out"
    else:
        for channel in channels:

            def set_input(act, hook, channel=channel):
                act = act.clone()
                act[0, :, comp.head] = inputs[channel]
                return act

            hooks.append((f"blocks.{comp.layer}.hook_{channel}_input", set_input))
        read = f"blocks.{comp.layer}.attn.hook_z"
    seen = {}

    def grab(act, hook):
        seen["a"] = act.detach().clone()

    model.run_with_hooks(tokens, fwd_hooks=[*hooks, (read, grab)])
    if comp.kind == "mlp":
        return seen["a"][0]
    return seen["a"][0, :, comp.head] @ model.blocks[comp.layer].attn.W_O[comp.head]
