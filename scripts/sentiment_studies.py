"""The per-model choices of the sentiment studies ``explore_sentiment.py`` runs.

A study names its hypothesis and data files, and the heads its later exploration parts measure; those
were chosen from its earlier parts' grids (the docs say why), so they live here as data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "hypotheses" / "data"


@dataclass
class Study:
    """One model's study: its files, k for derive-words, and the components chosen from the grids."""

    name: str  # hypotheses/<name>.yaml; data/<name>_{pairs,explore,heldout}.jsonl
    k: int  # words per side for derive-words
    label_heads: list[str] = field(default_factory=list)  # attend end -> s_con, patching recovers the label
    word_heads: list[str] = field(default_factory=list)  # read w_ori with a negative direct effect
    circuit: list[str] = field(default_factory=list)  # the faithfulness circuit (heads; every MLP is added)
    controls: list[str] = field(default_factory=list)  # near-zero DLA, attention and patching
    lens_at: tuple[int, ...] = ()  # residual sites tried for an ``at`` logit-lens claim
    scrub_variants: dict[str, dict] = field(default_factory=dict)  # causal-scrubbing hypotheses to try
    max_rows: int | None = None  # cap on each split's rows after the gate (seeded sample): the time budget
    n_layers: int = 0  # read from the loaded model
    n_heads: int = 0

    @property
    def hypothesis(self) -> Path:
        return ROOT / "hypotheses" / f"{self.name}.yaml"

    @property
    def all_rows(self) -> Path:
        return DATA / f"{self.name}_pairs.jsonl"

    @property
    def explore_rows(self) -> Path:
        return DATA / f"{self.name}_explore.jsonl"

    @property
    def heldout_rows(self) -> Path:
        return DATA / f"{self.name}_heldout.jsonl"


_SMOLLM2_LABEL_PATH = ["L21H1 -> MLP22@end", "MLP22@end -> logits", "L21H1 -> logits"]

SMOLLM2 = Study(
    name="smollm2_sentiment",
    k=20,  # 400 pairs per direction (k = 10 kept only 16 of 200 rows through the gate)
    label_heads=["L21H1", "L16H4", "L11H8"],
    word_heads=["L24H7", "L22H7", "L23H0"],
    circuit=[
        "L11H8",
        "L16H4",
        "L21H1",
        "L25H7",
        "L20H0",
        "L23H3",
        "L18H6",
        "L22H7",
        "L23H0",
        "L24H7",
        "L26H1",
        "L29H1",
    ],
    controls=["L2H8", "L5H3"],
    lens_at=(12, 18, 21, 24, 27),
    scrub_variants={
        # the label path: L21H1 reads only the labels, MLP22@end what L21H1 wrote
        "label_path": {
            "targets": _SMOLLM2_LABEL_PATH,
            "equivalence": {"L21H1": ["s_ori", "s_con"], "MLP22": ["s_ori", "s_con"]},
        },
        "label_path_word_heads": {
            "targets": [*_SMOLLM2_LABEL_PATH, "L24H7 -> logits", "L23H0 -> logits"],
            "equivalence": {
                "L21H1": ["s_ori", "s_con"],
                "MLP22": ["s_ori", "s_con"],
                "L24H7": ["w_ori"],
                "L23H0": ["w_ori"],
            },
        },
        "label_path_rest_exact": {
            "targets": _SMOLLM2_LABEL_PATH,
            "equivalence": {"L21H1": ["s_ori", "s_con"], "MLP22": ["s_ori", "s_con", "w_ori"]},
        },
    },
)

GEMMA3 = Study(
    name="gemma3_sentiment",
    k=20,
    max_rows=40,  # 160 prompts a split: Gemma's 262k-word unembedding makes every pass dearer
    label_heads=["L10H0", "L6H2", "L8H1"],
    word_heads=["L11H2", "L12H3", "L12H2"],
    circuit=[
        "L10H0",
        "L11H2",
        "L11H3",
        "L12H1",
        "L12H2",
        "L12H3",
        "L13H3",
        "L15H0",
        "L15H1",
        "L15H3",
        "L16H2",
    ],
    controls=["L1H1", "L3H2"],
    lens_at=(6, 9, 12, 15),
    # no scrubbing and no head-sender path patching: Gemma renormalises each block's attention output,
    # so a single head has no stream write of its own (circuitspec refuses both there)
)

STUDIES = {"smollm2": SMOLLM2, "gemma3": GEMMA3}
