"""Write the emotion directions hypotheses/emotion_directions.yaml steers with, and print the direction
geometry docs/emotion_directions.md quotes (token-level vs sentence-final, cosines between emotions).

Each model is loaded once; per layer and emotion, the direction is mean(emotion) − mean(neutral) of the
residual stream on the exploration rows (the same computation as `circuitspec directions FILE --model M
--node resid_post<L>@word --groups anger,neutral`, which writes one file per call).

    .venv/bin/python scripts/emotion_directions.py hypotheses/emotion_directions.yaml
"""

from __future__ import annotations

import sys
from itertools import combinations

from circuitspec.claims.steering_checks import model_label
from circuitspec.compare.views import model_view
from circuitspec.directions.geometry import cosine, mean_difference
from circuitspec.directions.store import save_direction
from circuitspec.engine.context import RunContext
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.prompts import build_prompt_set
from circuitspec.engine.steering import collect, provenance_for
from circuitspec.pipeline import free_model_memory, load_hypothesis_model
from circuitspec.spec.loader import load_hypothesis, load_rows
from circuitspec.spec.splits import select_rows

LAYERS = {"smollm2": (9, 18, 25), "gemma": (5, 11, 15)}  # ~0.3, 0.6 and 0.85 of the depth
EMOTIONS = ("gratitude", "anger", "apology")


def main(path: str) -> None:
    loaded = load_hypothesis(path)
    out = loaded.base_dir / "directions"
    out.mkdir(exist_ok=True)
    for name, layers in LAYERS.items():
        view = model_view(loaded, name)
        spec = view.spec
        rows = select_rows(load_rows(spec.data, view.base_dir, hypothesis=view), spec.data, "explore")
        model = load_hypothesis_model(spec.model, view.base_dir)
        contexts = {
            group: RunContext(
                model.model, build_prompt_set(spec.data, rows, model.tokenizer, [group]), logit_diff
            )
            for group in (*EMOTIONS, "neutral")
        }
        for layer in layers:
            for pooling, node in (("token", f"resid_post{layer}@word"), ("final", f"resid_post{layer}")):
                acts = {g: collect(ctx, node, pooling) for g, ctx in contexts.items()}
                found = {e: mean_difference(acts[e], acts["neutral"]) for e in EMOTIONS}
                pairs = ", ".join(
                    f"{a}/{b} {cosine(found[a].unit, found[b].unit):+.2f}"
                    for a, b in combinations(EMOTIONS, 2)
                )
                norms = ", ".join(f"{e} {found[e].norm:.1f}" for e in EMOTIONS)
                print(f"{name} L{layer} {pooling:5s}: cosines {pairs}; norms {norms}")
                if pooling == "token":
                    for emotion, direction in found.items():
                        n = (len(acts[emotion]), len(acts["neutral"]))
                        provenance = provenance_for(
                            node, pooling, model_label(spec.model), (emotion, "neutral"), n
                        )
                        save_direction(out / f"{name}_{emotion}_L{layer}.safetensors", direction, provenance)
        del model, contexts
        free_model_memory()


if __name__ == "__main__":
    main(sys.argv[1])
