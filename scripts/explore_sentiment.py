"""Exploration behind the sentiment hypotheses: the contrastive-sentiment study on a real LM.

    .venv/bin/python scripts/explore_sentiment.py smollm2 derive    # W_pos / W_neg from the model (§5)
    .venv/bin/python scripts/explore_sentiment.py smollm2 gate      # behaviour gate, exploration / held-out
    .venv/bin/python scripts/explore_sentiment.py smollm2 explore [--parts dla,attention,...]

The first argument names a study in ``sentiment_studies.py`` (``smollm2``: hypotheses/smollm2_sentiment.yaml,
``gemma3``: hypotheses/gemma3_sentiment.yaml); the heads each study's later parts measure were chosen from
its earlier parts' grids and live there, the machinery here is shared.

``derive`` runs ``circuitspec data derive-words`` with the study's k. ``gate`` runs every
derived row under the four templates (substitution / negation × minimal / contextual), prints behaviour
accuracy and mean logit difference per template, keeps the rows whose logit difference is > 0 under
*every* template (the behaviour gate per prompt type) and splits them, seeded, into an exploration file
and a held-out file. ``explore`` runs only on the exploration rows and prints every grid the
hypothesis' thresholds come from: behaviour, per-head direct logit attribution over every head,
attention from the last token to w_ori and s_con, denoising activation patching (which components carry
the contrastive label), path patching of the candidate label path, value scaling at α = ±2^k,
faithfulness against random circuits, the accumulated logit lens (with the verdict statistic of each
candidate lens claim) and causal scrubbing of the label path.
Every measurement is a circuitspec claim run through the
pipeline (a temporary hypothesis with the same model and templates), as ``verify`` would run it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sentiment_studies import STUDIES, Study

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_FRACTION = 0.4
PARTS = ("behaviour", "dla", "attention", "patching", "paths", "scaling", "faithfulness", "lens", "scrubbing")
ALPHAS = [-4.0, -2.0, -1.0, 1.0, 2.0, 4.0]
STUDY: Study  # set by main()


def heads() -> list[str]:
    return [f"L{layer}H{head}" for layer in range(STUDY.n_layers) for head in range(STUDY.n_heads)]


def mlps() -> list[str]:
    return [f"MLP{layer}" for layer in range(STUDY.n_layers)]


def _rows(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _load_model() -> Any:
    from circuitspec.pipeline import load_hypothesis_model
    from circuitspec.spec.loader import load_hypothesis

    hypothesis = load_hypothesis(STUDY.hypothesis)
    return load_hypothesis_model(hypothesis.spec.model, hypothesis.base_dir)


# ------------------------------------------------------------------------------------------ behaviour


def behaviour(loaded: Any, rows: list[dict[str, str]], batch: int = 64) -> dict[str, np.ndarray]:
    """Per template, each row's clean logit difference (desired − undesired at the last token)."""
    import torch

    from circuitspec.engine.metrics import logit_diff
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.spec.loader import load_hypothesis

    data = load_hypothesis(STUDY.hypothesis).spec.data
    out: dict[str, np.ndarray] = {}
    for template in data.templates:
        prompts = build_prompt_set(data, rows, loaded.tokenizer, [template.id])
        values = []
        with torch.inference_mode():
            for start in range(0, len(prompts), batch):
                sl = slice(start, start + batch)
                length = int(prompts.lengths[sl].max())
                logits = loaded.model(prompts.tokens[sl, :length])
                part = _slice_prompts(prompts, sl)
                values.append(logit_diff(logits, part))
        out[template.id] = torch.cat(values).float().numpy()
    return out


def _slice_prompts(prompts: Any, sl: slice) -> Any:
    """The prompts ``sl`` of a PromptSet (only what :func:`logit_diff` reads)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        lengths=prompts.lengths[sl], desired=prompts.desired[sl], undesired=prompts.undesired[sl]
    )


def print_behaviour(values: dict[str, np.ndarray], rows: list[dict[str, str]]) -> None:
    """Accuracy (logit difference > 0) and mean logit difference per template and direction."""
    print(f"\nbehaviour over {len(rows)} rows (accuracy = share with logit difference > 0)")
    print(f"  {'template':16s} {'acc':>7s} {'mean LD':>8s} {'± sem':>6s}   acc pos→neg  acc neg→pos")
    pos = np.array([r["s_ori"] == "Positive" for r in rows])
    for tid, ld in values.items():
        sem = ld.std() / len(ld) ** 0.5
        print(
            f"  {tid:16s} {np.mean(ld > 0):7.3f} {ld.mean():8.2f} {sem:6.2f}   "
            f"{np.mean(ld[pos] > 0):11.3f}  {np.mean(ld[~pos] > 0):11.3f}"
        )


def gate(loaded: Any, seed: int = 0) -> None:
    """Keep the rows the model gets right under every template; split them exploration / held-out."""
    rows = _rows(STUDY.all_rows)
    values = behaviour(loaded, rows)
    print_behaviour(values, rows)
    keep = np.all(np.stack([v > 0 for v in values.values()]), axis=0)
    for tid, v in values.items():
        print(f"  gate passes {tid}: {int((v > 0).sum())}/{len(rows)}")
    kept = [row for row, ok in zip(rows, keep, strict=True) if ok]
    print(f"kept {len(kept)}/{len(rows)} rows (logit difference > 0 under every template)")
    order = np.random.default_rng(seed).permutation(len(kept))
    n_held = round(HELD_OUT_FRACTION * len(kept))
    held = sorted(order[:n_held].tolist())
    explore = sorted(order[n_held:].tolist())
    for path, indices, what in (
        (STUDY.explore_rows, explore, "exploration"),
        (STUDY.heldout_rows, held, "held-out"),
    ):
        path.write_text("".join(json.dumps(kept[i]) + "\n" for i in indices))
        print(f"wrote {len(indices)} {what} rows to {path.relative_to(ROOT)}")
    trim(seed)


def trim(seed: int = 0) -> None:
    """Cap each split at the study's ``max_rows`` (a seeded sample, file order kept): the time budget."""
    if STUDY.max_rows is None:
        return
    for path in (STUDY.explore_rows, STUDY.heldout_rows):
        lines = path.read_text().splitlines(keepends=True)
        if len(lines) > STUDY.max_rows:
            keep = sorted(np.random.default_rng(seed).permutation(len(lines))[: STUDY.max_rows].tolist())
            path.write_text("".join(lines[i] for i in keep))
            print(f"kept {STUDY.max_rows} of {len(lines)} rows in {path.relative_to(ROOT)}")


# ----------------------------------------------------------------------------------- claims via pipeline


def run_claims(loaded: Any, claims: list[dict], rows: Path, n: int | None, extra: dict | None = None) -> dict:
    """Measure ``claims`` (YAML dicts) on ``rows`` through the planner, as ``verify`` would; no verdicts."""
    from circuitspec.engine.planner import run_claims as planner_run
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis, load_rows

    spec = yaml.safe_load(STUDY.hypothesis.read_text())
    spec["data"]["file"] = str(rows)
    spec["data"]["allow_outside"] = True  # the temporary hypothesis reads the study's rows in place
    spec["data"].pop("n", None)
    if n is not None:
        spec["data"]["n"] = n
    spec["nodes"], spec["paths"] = (extra or {}).get("nodes", {}), (extra or {}).get("paths", {})
    spec["claims"] = claims
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "explore.yaml"
        path.write_text(yaml.safe_dump(json.loads(json.dumps(spec)), sort_keys=False))  # no aliases
        hypothesis = load_hypothesis(path)
        graph = compile_hypothesis(hypothesis, shape=loaded.shape)
        data_rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)
        started = time.perf_counter()
        out = planner_run(graph, loaded, data_rows, hypothesis.base_dir, progress=False, seed=0)
    errors = {k: m.error for k, m in out.items() if m.error}
    if errors:
        print(f"  errors: {errors}")
    print(f"  ({len(claims)} claims, {time.perf_counter() - started:.1f} s)")
    return out


def _mean_sem(values: np.ndarray) -> str:
    return f"{values.mean():+.3f} ± {values.std() / len(values) ** 0.5:.3f}"


def _per_target(measurement: Any) -> dict[str, np.ndarray]:
    from circuitspec.measurement import TargetValues

    for plot in measurement.plots:
        if isinstance(plot, TargetValues):
            return dict(plot.values)
    return {}


def print_grid(title: str, grid: dict[str, float], fmt: str = "{:+5.2f}") -> None:
    """A layer × head table of per-head numbers."""
    print(f"\n{title}")
    print("       " + " ".join(f"{'H' + str(h):>5s}" for h in range(STUDY.n_heads)))
    for layer in range(STUDY.n_layers):
        cells = [fmt.format(grid[f"L{layer}H{h}"]) for h in range(STUDY.n_heads)]
        print(f"  L{layer:<3d} " + " ".join(f"{c:>5s}" for c in cells))


def print_top(title: str, values: dict[str, np.ndarray], k: int = 10, reverse: bool = True) -> list[str]:
    """The ``k`` targets with the largest (``reverse``) or smallest mean, with ± one standard error."""
    order = sorted(values, key=lambda name: float(values[name].mean()), reverse=reverse)[:k]
    print(f"\n{title}")
    for name in order:
        print(f"  {name:10s} {_mean_sem(values[name])}")
    return order


# ------------------------------------------------------------------------------------------------ parts


def _claim(cid: str, kind: str, targets: list[str], data: list[str] | None = None, **fields: Any) -> dict:
    claim = {"id": cid, "kind": kind, "targets": targets, "expect": fields.pop("expect", "mean > -1000")}
    if data:
        claim["data"] = data
    return claim | fields


def part_dla(loaded: Any, state: dict) -> None:
    """Direct logit attribution of every head and MLP, substitution and negation apart."""
    claims = [_claim(f"dla_{c}", "attribution", heads() + mlps(), [c]) for c in ("substitution", "negation")]
    out = run_claims(loaded, claims, STUDY.explore_rows, None)
    for condition in ("substitution", "negation"):
        values = _per_target(out[f"dla_{condition}"])
        state[f"dla_{condition}"] = values
        print_grid(f"mean DLA per head, {condition}", {h: float(values[h].mean()) for h in heads()})
        print_top(f"most positive heads, {condition}", {h: values[h] for h in heads()})
        print_top(f"most negative heads, {condition}", {h: values[h] for h in heads()}, reverse=False)
        print_top(f"MLPs by DLA, {condition}", {m: values[m] for m in mlps()}, k=8)
        print_top(f"most negative MLPs, {condition}", {m: values[m] for m in mlps()}, k=4, reverse=False)


def part_attention(loaded: Any, state: dict) -> None:
    """Attention from the last token to w_ori and to s_con, every head (all four templates)."""
    claims = [
        _claim(f"att_{role}", "attention", heads(), None, source="end", destination=role, each=True)
        for role in ("w_ori", "s_con")
    ]
    out = run_claims(loaded, claims, STUDY.explore_rows, None)
    for role in ("w_ori", "s_con"):
        values = {h: out[f"att_{role}[{h}]"].arrays["value"] for h in heads()}
        state[f"att_{role}"] = values
        means = {h: float(v.mean()) for h, v in values.items()}
        print_grid(f"mean attention end -> {role}", means, "{:4.2f}")
        print_top(f"heads attending most to {role}", values)
    dla = state.get("dla_substitution")
    if dla:
        readers = {h: dla[h] for h in heads() if float(state["att_w_ori"][h].mean()) > 0.2}
        print_top(
            "heads attending to w_ori (> 0.2) by substitution DLA, most negative first",
            readers,
            reverse=False,
        )


def _candidates(state: dict) -> list[str]:
    """Heads worth patching: the most label-attending heads and the largest |DLA| heads."""
    att = state["att_s_con"]
    by_attention = sorted(heads(), key=lambda h: -float(att[h].mean()))[:10]
    dla = state["dla_substitution"]
    by_dla = sorted(heads(), key=lambda h: -abs(float(dla[h].mean())))[:8]
    return list(dict.fromkeys(by_attention + by_dla))


def part_patching(loaded: Any, state: dict) -> None:
    """Denoising activation patching (clean into the same-label twin): which components carry s_con."""
    heads, n = _candidates(state), STUDY.n_layers
    claims = [_claim(f"res_scon{l}", "activation_patching", [f"resid_pre{l}@s_con"]) for l in range(0, n, 3)]
    claims += [_claim(f"res_end{l}", "activation_patching", [f"resid_pre{l}@end"]) for l in range(0, n, 3)]
    claims += [_claim(f"head_{h}", "activation_patching", [h]) for h in heads]
    claims += [_claim(f"mlp_end{l}", "activation_patching", [f"MLP{l}@end"]) for l in range(0, n, 2)]
    out = run_claims(loaded, claims, STUDY.explore_rows, None)

    def recovered(cid: str) -> str:
        m = out[cid].arrays
        if "intervened" not in m:
            return "n/a"
        gap = m["clean"].mean() - m["corrupt"].mean()
        return f"{(m['intervened'].mean() - m['corrupt'].mean()) / gap:+.3f}"

    any_m = out[claims[0]["id"]].arrays
    print(f"\nclean LD {any_m['clean'].mean():+.2f}, same-label twin LD {any_m['corrupt'].mean():+.2f}")
    print("recovered (denoising) by layer: resid_pre@s_con / resid_pre@end")
    for l in range(0, n, 3):
        print(f"  layer {l:2d}   {recovered(f'res_scon{l}'):>7s}   {recovered(f'res_end{l}'):>7s}")
    print("recovered by MLP at end")
    print("  " + "  ".join(f"MLP{l} {recovered(f'mlp_end{l}')}" for l in range(0, n, 2)))
    head_rec = {h: out[f"head_{h}"] for h in heads}
    print("recovered by candidate head (all positions)")
    for h in sorted(heads, key=lambda h: -float(recovered(f"head_{h}").replace("n/a", "nan"))):
        print(f"  {h:8s} {recovered(f'head_{h}')}   att s_con {float(state['att_s_con'][h].mean()):.2f}")
    state["patching"] = head_rec


def part_paths(loaded: Any, state: dict) -> None:
    """Noising path patching: the label at s_con entering each label head's value, to the logits / MLPs."""
    claims = []
    for head in STUDY.label_heads:
        layer = int(head[1:].split("H")[0])
        for tail, name in (
            ("logits", "direct"),
            (f"MLP{min(layer + 1, STUDY.n_layers - 1)}@end -> logits", "mlp"),
        ):
            path = f"resid_pre{layer}@s_con -> {head}.v@s_con -> {tail}"
            claims.append(_claim(f"path_{head}_{name}", "path_patching", [path], ["substitution"]))
    out = run_claims(loaded, claims, STUDY.explore_rows, None)
    print("\nnoising path patching, substitution (intervened − clean LD)")
    for claim in claims:
        value = out[claim["id"]].arrays.get("value")
        print(f"  {claim['targets'][0]:60s} {_mean_sem(value) if value is not None else 'error'}")


def part_scaling(loaded: Any, state: dict) -> None:
    """Value scaling α = ±2^k of the label heads at s_con and the word heads at w_ori."""
    sites = [f"{h}.v@s_con" for h in STUDY.label_heads] + [f"{h}.v@w_ori" for h in STUDY.word_heads]
    claims = [
        _claim(f"scale_{i}", "scaling", [site], [cond], alphas=ALPHAS)
        for i, site in enumerate(sites)
        for cond in ("substitution",)
    ]
    out = run_claims(loaded, claims, STUDY.explore_rows, None)
    print("\nvalue scaling, substitution: mean LD / success rate per alpha")
    for claim in claims:
        m = out[claim["id"]]
        cells = [
            f"{p.x:+g}: {p.arrays['intervened'].mean():+.2f}/{np.mean(p.arrays['intervened'] > 0):.2f}"
            for p in m.sweep
        ]
        print(f"  {claim['targets'][0]:16s} " + "  ".join(cells))


def part_faithfulness(loaded: Any, state: dict) -> None:
    """Everything outside the circuit mean-ablated (recovered vs random circuits); controls mean-ablated."""
    claims = [
        _claim(
            "faithful",
            "faithfulness",
            [*mlps(), *STUDY.circuit],
            None,
            method="mean",
            random_baseline={"n": 20},
        ),
        *(_claim(f"control_{h}", "ablation", [h], None, method="mean") for h in STUDY.controls),
    ]
    out = run_claims(loaded, claims, STUDY.explore_rows, None)
    m = out["faithful"]
    a = m.arrays
    recovered = (a["intervened"].mean() - a["corrupt"].mean()) / (a["clean"].mean() - a["corrupt"].mean())
    baseline = m.random_baseline if m.random_baseline is not None else np.array([np.nan])
    print(
        f"\nfaithfulness of {len(STUDY.circuit) + STUDY.n_layers} components: recovered {recovered:+.3f}; "
        f"random circuits "
        f"mean {np.nanmean(baseline):+.3f}, max {np.nanmax(baseline):+.3f}"
    )
    for h in STUDY.controls:
        print(f"  control {h}: mean ablation effect {_mean_sem(out[f'control_{h}'].arrays['value'])}")


def part_lens(loaded: Any, state: dict) -> None:
    """Accumulated logit lens (Figure 2): where the logit difference emerges, per condition.

    Prints the site means, then the verdict statistic ``verify`` would compute (:func:`evaluate_claim`,
    Spearman ρ of the per-site means for a trend; the mean for an ``at`` site) for each candidate claim.
    """
    from circuitspec.stats.evaluate import evaluate_claim

    claims = [_claim(f"lens_{c}", "logit_lens", [], [c]) for c in ("substitution", "negation")]
    claims += [
        _claim(f"lens_sub_at{layer}", "logit_lens", [], ["substitution"], at=f"resid_pre{layer}")
        for layer in STUDY.lens_at
    ]
    for claim in claims:
        claim.pop("targets")
    out = run_claims(loaded, claims, STUDY.explore_rows, None)
    for claim in claims[:2]:
        points = out[claim["id"]].sweep
        print(f"\naccumulated logit lens, {claim['data'][0]} (mean LD at the residual before each layer)")
        for p in points:
            if (p.x == int(p.x) and int(p.x) % 3 == 0) or p is points[-1]:
                print(f"  layer {p.x:5.1f}  {_mean_sem(p.arrays['value'])}")
    print("\ncandidate logit-lens claims, as verify would judge them on the exploration rows")
    for claim in claims:
        expect = "mean increases with layer" if "at" not in claim else "mean > 0"
        o = evaluate_claim(out[claim["id"]], expect)
        ci = f"[{o.ci.low:+.3f}, {o.ci.high:+.3f}]" if o.ci else "n/a"
        print(
            f"  {claim['id']:18s} {expect:27s} {o.statistic} {o.estimate:+.3f} {ci} {o.verdict}: {o.reason}"
        )


def part_scrubbing(loaded: Any, state: dict) -> None:
    """Causal scrubbing of the label path (variants above), substitution prompts (and all), 4 samples each."""
    claims = [
        _claim(
            f"scrub_{name}",
            "causal_scrubbing",
            v["targets"],
            ["substitution"],
            equivalence=v["equivalence"],
            samples=4,
        )
        for name, v in STUDY.scrub_variants.items()
    ]
    claims.append(claims[0] | {"id": "scrub_label_path_all_conditions", "data": None})
    claims[-1].pop("data")
    out = run_claims(loaded, claims, STUDY.explore_rows, None)
    print("\ncausal scrubbing, substitution: recovered = (L_scrubbed − L_random) / (L_model − L_random)")
    for claim in claims:
        a = out[claim["id"]].arrays
        if "intervened" not in a:
            print(f"  {claim['id']}: error")
            continue
        rec = (a["intervened"].mean() - a["corrupt"].mean()) / (a["clean"].mean() - a["corrupt"].mean())
        print(
            f"  {claim['id']:30s} recovered {rec:+.3f}  scrubbed {_mean_sem(a['intervened'])}  "
            f"model {a['clean'].mean():+.2f}  random {a['corrupt'].mean():+.2f}  "
            f"scrubbed − model {_mean_sem(a['value'])}"
        )


def run_parts(loaded: Any, parts: list[str]) -> None:
    """Run the exploration parts in order, each after those it reads from."""
    state: dict = {}
    rows = _rows(STUDY.explore_rows)
    print(f"exploration rows: {len(rows)} ({len(rows) * 4} prompts)")
    if "behaviour" in parts:
        print_behaviour(behaviour(loaded, rows), rows)
    for name in PARTS[1:]:
        if name in parts:
            globals()[f"part_{name}"](loaded, state)


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("stage", choices=["derive", "gate", "trim", "explore"])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"explore: comma-separated of {PARTS}")
    args = parser.parse_args()
    import torch

    global STUDY
    STUDY = STUDIES[args.study]
    torch.set_num_threads(1)
    if args.stage == "trim":
        trim()
        return
    if args.stage == "derive":
        from circuitspec.cli.data_commands import derive_words_command

        count = derive_words_command(
            STUDY.hypothesis, STUDY.all_rows, STUDY.k, "This movie is", None, ("Positive", "Negative")
        )
        print(f"wrote {count} rows to {STUDY.all_rows.relative_to(ROOT)}")
        return
    loaded = _load_model()
    STUDY.n_layers, STUDY.n_heads = loaded.shape.n_layers, loaded.shape.n_heads
    if args.stage == "gate":
        gate(loaded)
        return
    run_parts(loaded, args.parts.split(","))


if __name__ == "__main__":
    main()
