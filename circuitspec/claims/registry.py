"""The registry of claim kinds: everything circuitspec knows about a kind, in one entry (torch-free).

A :class:`ClaimKind` says, as data, what the compiler checks (which nodes may be targets, path
senders and receivers; the trend variable; whether it runs on encoders; a kind-specific check),
which activations its measurement reads from the shared clean / corrupted runs, where its
``measure(ctx, claim, graph, seed) -> Measurement`` lives (a dotted path, imported only when a
model runs) and which plot payloads it yields. Adding a claim kind is one module with its
``measure`` function plus one entry here (and its pydantic model in ``spec/claim_models.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from circuitspec.spec import schema
from circuitspec.spec.induction_claim import InductionClaim
from circuitspec.spec.learned_claim import LearnedScalingClaim
from circuitspec.spec.screens import ScreenClaim

from . import checks, hooks, rules, shard_rules
from .alignment_checks import check_alignment
from .induction_checks import INDUCTION_TARGET, check_induction
from .learned_checks import check_learned_scaling
from .mean_reference_checks import check_ablation_with_reference
from .rules import NodeRule
from .screens import screen_hooks
from .steering_checks import STEERING_TARGET, check_steering

__all__ = ["REGISTRY", "ClaimKind", "claim_kind", "splits_over_prompts"]

HookFn = Callable[[Any, Any, Any], set[str]]
CheckFn = Callable[..., None]

_ENGINE = "circuitspec.engine.interventions"


@dataclass(frozen=True)
class ClaimKind:
    """One claim kind; see the module docstring."""

    name: str
    schema: type  # the pydantic model of the claim's YAML
    measure: str  # "module:function", called as measure(ctx, claim, graph, seed)
    needed_hooks: HookFn  # (claim, graph, cfg) -> hook names read from the shared runs
    target: NodeRule | None = None  # None: any node
    paths: bool = False  # targets must be paths or edges 'A -> B'
    sender: NodeRule | None = None  # path kinds: who may send along an edge
    receiver: NodeRule | None = None  # ... and receive
    needs_targets: bool = True
    trend_variable: str | None = None  # the sweep a trend expectation may name
    encoder: bool = True  # runs on post-LN encoders
    encoder_reason: str = ""
    random_baseline: bool = False  # supports 'random_baseline'
    bars: bool = False  # its points and estimate read as bars (per layer / per target), not a sweep
    plots: tuple[str, ...] = ()  # payload types (circuitspec.measurement) it yields
    check: CheckFn | None = None  # check(checker, claim, targets, chains, template_ids)
    cross_model: bool = False  # reads two models: measure(activations, claim, seed), after every model ran
    # whether a claim may be measured on shards of its prompts (``claims.shard_rules``); None: always whole
    prompt_shards: Callable[[Any], bool] | None = None

    def load_measure(self) -> Callable[..., Any]:
        """The kind's ``measure`` function (imports the engine: call only when a model runs)."""
        module, function = self.measure.split(":")
        return getattr(importlib.import_module(module), function)


_SCRUB_ON_ENCODERS = (
    "causal scrubbing splits the residual stream into a sum of component outputs, and a post-LN "
    "encoder's stream is renormalised after every sublayer"
)

_KINDS = [
    ClaimKind(
        "attribution", schema.AttributionClaim, f"{_ENGINE}.attribution:measure", hooks.attribution_hooks,
        target=rules.ATTRIBUTION_TARGET, random_baseline=True, bars=True, plots=("HeadGrid", "TargetValues"),
    ),
    ClaimKind(
        "logit_lens", schema.LogitLensClaim, f"{_ENGINE}.logit_lens:measure", hooks.lens_hooks,
        needs_targets=False, trend_variable="layer", bars=True, check=checks.check_logit_lens,
    ),
    ClaimKind(
        "attention", schema.AttentionClaim, f"{_ENGINE}.attention:measure", hooks.attention_hooks,
        target=rules.ATTENTION_TARGET, plots=("AttentionPattern",), check=checks.check_attention,
    ),
    ClaimKind(
        "ablation", schema.AblationClaim, f"{_ENGINE}.ablation_claim:measure", hooks.target_hooks,
        target=rules.EDITABLE, random_baseline=True, check=check_ablation_with_reference,
        prompt_shards=shard_rules.ablation_splits,
    ),
    ClaimKind(
        "activation_patching", schema.ActivationPatchingClaim, f"{_ENGINE}.activation_patching_claim:measure",
        hooks.target_hooks, target=rules.EDITABLE, random_baseline=True,
        prompt_shards=shard_rules.without_random_baseline,
    ),
    ClaimKind(
        "path_patching", schema.PathPatchingClaim, f"{_ENGINE}.path_patching:measure", hooks.path_hooks,
        paths=True, sender=rules.PATH_SENDER, receiver=rules.PATH_RECEIVER, check=checks.check_path_patching,
        prompt_shards=shard_rules.always,
    ),
    ClaimKind(
        "causal_scrubbing", schema.CausalScrubbingClaim, f"{_ENGINE}.scrubbing:measure",
        hooks.scrubbing_hooks, target=rules.SCRUB_TARGET, paths=True, sender=rules.SCRUB_SENDER,
        receiver=rules.SCRUB_RECEIVER, encoder=False, encoder_reason=_SCRUB_ON_ENCODERS,
        check=checks.check_scrubbing,
    ),
    ClaimKind(
        "scaling", schema.ScalingClaim, f"{_ENGINE}.scaling_claim:measure", hooks.target_hooks,
        target=rules.EDITABLE, trend_variable="alpha", check=checks.check_scaling,
        prompt_shards=shard_rules.always,
    ),
    ClaimKind(
        "faithfulness", schema.FaithfulnessClaim, f"{_ENGINE}.faithfulness_claim:measure",
        hooks.faithfulness_hooks, random_baseline=True, prompt_shards=shard_rules.faithfulness_splits,
    ),
    ClaimKind(
        "behaviour", schema.BehaviourClaim, f"{_ENGINE}.behaviour:measure", hooks.no_hooks,
        needs_targets=False, check=checks.check_behaviour,
    ),
    ClaimKind(
        "generation", schema.GenerationClaim, f"{_ENGINE}.generation_claim:measure", hooks.no_hooks,
        target=rules.EDITABLE, trend_variable="alpha", encoder=False,
        encoder_reason="an encoder outputs a sentence embedding and generates no text",
        check=checks.check_scaling,
    ),
    ClaimKind(
        "steering", schema.SteeringClaim, f"{_ENGINE}.steering_claim:measure", hooks.target_hooks,
        target=STEERING_TARGET, trend_variable="alpha", check=check_steering,
    ),
    ClaimKind(
        "induction", InductionClaim, f"{_ENGINE}.induction:measure", hooks.no_hooks,
        target=INDUCTION_TARGET, encoder=False, check=check_induction, plots=("HeadGrid", "TargetValues"),
        encoder_reason="an encoder attends both ways, so a head has no earlier occurrence to look back to",
    ),
    ClaimKind(
        "alignment", schema.AlignmentClaim, f"{_ENGINE}.alignment:measure", hooks.no_hooks,
        needs_targets=False, encoder=False, cross_model=True, check=check_alignment,
        encoder_reason="alignment reads two causal models' residual streams",
    ),
    ClaimKind(
        "screen", ScreenClaim, f"{_ENGINE}.screen:measure",
        lambda claim, graph, cfg: screen_hooks(claim, graph, cfg, REGISTRY),
    ),
    ClaimKind(
        "learned_scaling", LearnedScalingClaim, f"{_ENGINE}.learned_scaling_claim:measure", hooks.no_hooks,
        needs_targets=False, encoder=False, check=check_learned_scaling,
        encoder_reason="a learned intervention flips a next-token answer, which an encoder does not predict",
    ),
]  # fmt: skip

REGISTRY: dict[str, ClaimKind] = {kind.name: kind for kind in _KINDS}


def claim_kind(name: str) -> ClaimKind:
    """The registry entry of ``name`` (a one-line error naming the valid kinds otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown claim kind '{name}' (valid: {', '.join(REGISTRY)})") from None


def splits_over_prompts(claim: Any) -> bool:
    """Whether ``claim`` may be measured on shards of its prompts and merged (``claims.shard_rules``)."""
    rule = claim_kind(claim.kind).prompt_shards
    return rule is not None and rule(claim)
