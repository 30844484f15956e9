"""Axis labels with units: what a claim's per-prompt values and statistics are (from kind and metric)."""

from __future__ import annotations

from typing import Any

__all__ = ["metric_names", "statistic_label", "value_label"]

# each metric (spec.claim_models.Metric): short name, what it compares, unit (logits and KL: nats)
_METRICS = {
    "logit_diff": ("logit difference", " (desired − undesired)", "nats"),
    "prob_diff": ("probability difference", " (desired − undesired)", ""),
    "desired_prob": ("desired-answer probability", "", ""),
    "kl": ("KL divergence", " from the clean run", "nats"),
    "kl_run_clean": ("KL(run ‖ clean)", "", "nats"),
    "cosine": ("cosine similarity", "", ""),
    "distance_change": ("distance change", "", ""),
}
# what a kind's per-prompt ``value`` is (engine/interventions); {m}: the metric's short name, {base}:
# the run the change is measured from; kinds not here: the metric itself
_VALUES = {
    "attribution": "direct logit attribution (desired − undesired)",
    "attention": "attention probability",
    "logit_lens": "{m} at the layer",
    "ablation": "Δ {m} vs clean (ablated − clean)",
    "activation_patching": "Δ {m} (patched − {base})",
    "path_patching": "Δ {m} (path-patched − {base})",
    "causal_scrubbing": "Δ {m} (scrubbed − clean)",
}

# a generation claim's per-prompt ``value`` by its text score (engine/interventions/generation_claim.py)
_GENERATED = {
    "sentiment": ("sentiment", "Δ VADER sentiment (intervened − control text)"),
    "flip": ("target sentiment", "flip (1: only the intervened text has the target sentiment)"),
    "levenshtein": ("token distance", "Δ token edit distance to the original (intervened − control), tokens"),
    "keywords": ("keyword share", "Δ keyword share (intervened − control text)"),
}


def metric_names(spec: Any) -> tuple[str, str, str]:
    """The claim's metric: short name, what it compares, unit."""
    return _METRICS.get(str(getattr(spec, "metric", "logit_diff")), _METRICS["logit_diff"])


def value_label(kind: str, spec: Any = None) -> str:
    """What a claim's per-prompt ``value`` is, with its unit: an axis label (from the kind and metric)."""
    short, detail, unit = metric_names(spec)
    if kind == "generation" or (kind == "steering" and getattr(spec, "score", None)):  # generated text
        return _GENERATED.get(str(getattr(spec, "score", None)), ("score", "Δ text score"))[1]
    if kind == "attention":
        return _VALUES[kind]
    if kind == "attribution":
        unit = "nats"
    default = "noising" if kind == "path_patching" else "denoising"
    base = "corrupted" if getattr(spec, "direction", default) == "denoising" else "clean"
    text = _VALUES.get(kind, "{m}{detail}").format(m=short, detail=detail, base=base)
    return f"{text}, {unit}" if unit else text


def statistic_label(statistic: str, kind: str, spec: Any = None) -> str:
    """An axis label for a statistic of the claim's values ('mean attention probability', …)."""
    if kind == "steering" and getattr(spec, "score", None):
        kind = "generation"  # steering scored on generated text reads like a generation claim
    if statistic == "success_rate" and kind == "generation":
        name = _GENERATED.get(str(getattr(spec, "score", None)), ("score", ""))[0]
        return f"success rate (share of intervened texts with {name} > 0)"
    if statistic == "mean" and kind == "generation" and getattr(spec, "score", None) == "flip":
        return "flip rate (share of prompts where only the intervened text has the target sentiment)"
    if statistic == "success_rate":
        return f"success rate (share of prompts with {metric_names(spec)[0].split(' (')[0]} > 0)"
    if statistic == "recovered":
        return "recovered fraction of (clean − corrupted)"
    if statistic == "rho":
        return "Spearman ρ"
    if statistic == "percentile":
        return "share of random directions whose change is below the direction's"
    if statistic in ("mean", "median"):
        return f"{statistic} {value_label(kind, spec)}"
    return f"{statistic}: {value_label(kind, spec)}"
