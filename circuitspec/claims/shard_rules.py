"""Which claims may be measured on shards of their prompts (``verify --ray --shard-prompts K``).

A claim *splits* when each prompt's values depend on that prompt alone, given quantities the shard
still reads from the whole prompt set (a mean ablation's means): its shards' per-prompt arrays,
concatenated in prompt order, are the arrays of an unsharded run. Every other claim runs *whole*, on
the full prompt set, on one shard: its values or views read other prompts in a way that does not
split (resample partners are a derangement of the whole set, causal scrubbing resamples across it,
random-circuit baselines hold one statistic per circuit over all prompts, an attribution's head grid
and an attention claim's pattern are means over the set, generation and training are not per prompt).
Each registry entry names its rule (:attr:`circuitspec.claims.registry.ClaimKind.prompt_shards`);
the rules live here so the whole decision reads in one place.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ablation_splits",
    "always",
    "faithfulness_splits",
    "reads_whole_set_mean",
    "without_random_baseline",
]


def always(claim: Any) -> bool:
    """Per-prompt values only (path patching, scaling)."""
    return True


def without_random_baseline(claim: Any) -> bool:
    """Per-prompt unless a random-circuit baseline (one statistic per circuit over all prompts) is asked."""
    return getattr(claim, "random_baseline", None) is None


def ablation_splits(claim: Any) -> bool:
    """Zero, soft and mean ablation split (a mean is read from the whole set); resample partners do not."""
    return without_random_baseline(claim) and getattr(claim, "method", None) != "resample"


def faithfulness_splits(claim: Any) -> bool:
    """Only zero ablation of the complement: a mean or resampled complement reads the whole set."""
    return without_random_baseline(claim) and getattr(claim, "method", None) == "zero"


def reads_whole_set_mean(claim: Any) -> bool:
    """A split claim whose ablation writes the mean over its own prompts: on a shard it must still read
    the mean over the whole set (a ``mean_from`` claim reads its separate reference set anyway)."""
    return (
        claim.kind == "ablation"
        and getattr(claim, "method", None) == "mean"
        and getattr(claim, "mean_from", None) is None
    )
