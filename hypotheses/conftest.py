"""pytest settings for ``pytest hypotheses/`` (the circuitspec plugin makes every claim a test).

The ``*_wrong*.yaml`` hypotheses are deliberately wrong circuits (a decoy head, a wrong channel,
a missing node): their claims are *meant* to fail, and tests/ checks that they do. They are not
collected here, so ``pytest hypotheses/`` passes exactly when every true hypothesis holds.
The real-model studies ``smollm2_sentiment.yaml`` (~3 min on 2 cores, some claims inconclusive on the
held-out split, see docs/smollm2_sentiment.md) and ``gemma3_sentiment.yaml`` (an optional extra) are
verified against their baselines by scripts/verify-bundled.sh instead.
"""

import pytest

collect_ignore_glob = ["*_wrong*.yaml", "smollm2_*.yaml", "gemma3_*.yaml", "emotion_*.yaml"]


# Claims recorded as inconclusive on their held-out rows (their docs say why, and the thresholds were not
# moved after seeing those rows): expected failures here, so a change to pass shows as XPASS; a change
# in either direction also fails scripts/verify-bundled.sh's baseline diff.
KNOWN_INCONCLUSIVE = {
    ("minilm_colour.yaml", "colour_head_attends_colour"): "docs/minilm_colour.md",
    ("minilm_colour.yaml", "zero_ablate_colour_head"): "docs/minilm_colour.md",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        doc = KNOWN_INCONCLUSIVE.get((item.path.name, item.name))
        if doc is not None:
            reason = f"inconclusive on the held-out rows ({doc})"
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
