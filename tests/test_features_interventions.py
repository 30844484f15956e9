"""Feature interventions on spliced transcoders against a hand reference.

The reference never uses sae-lens: on the *plain* HookedTransformer it reads the MLP input
(``ln2.hook_normalized``), computes the feature activations by hand, decodes the edited
feature value by hand and adds ``(a' − a) · W_dec[f]`` to ``hook_mlp_out`` at the prompt's role
position — one prompt at a time, no padding.
"""

from __future__ import annotations

import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.ablation import ablate
from circuitspec.engine.interventions.activation_patching import activation_patch
from circuitspec.engine.interventions.scaling import scale_sweep
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.sites import resolve_site
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.geometry import hook_name
from circuitspec.spec.nodes import parse_node
from tests.helpers.tiny import make_prompt_set, make_tiny_model

torch.set_num_threads(1)
ATOL = 1e-4
D_SAE = 24
FEATURES = {"MLP0.tc": 5, "MLP1.tc": 11}


def random_transcoder(layer: int, d_model: int, seed: int):
    """A random transcoder for MLP ``layer`` whose features are often active (positive encoder bias)."""
    from circuitspec.features.loading import transcoder_from_weights

    gen = torch.Generator().manual_seed(seed)
    b_enc = 0.3 + 0.1 * torch.randn(D_SAE, generator=gen)
    b_enc[FEATURES[f"MLP{layer}.tc"]] = 4.0  # the feature under test fires at every position
    return transcoder_from_weights(
        W_enc=torch.randn(d_model, D_SAE, generator=gen) * 0.5,
        b_enc=b_enc,
        W_dec=torch.randn(D_SAE, d_model, generator=gen) * 0.5,
        b_dec_out=0.1 * torch.randn(d_model, generator=gen),
        hook_in=f"blocks.{layer}.ln2.hook_normalized",
        hook_out=f"blocks.{layer}.hook_mlp_out",
        b_dec_in=0.1 * torch.randn(d_model, generator=gen),
    )


@pytest.fixture(scope="module")
def setup():
    from circuitspec.features.splice import splice

    model = make_tiny_model(n_layers=2, n_heads=2, d_model=16, d_vocab=40, seed=3)
    dictionaries = {f"MLP{layer}.tc": random_transcoder(layer, 16, seed=10 + layer) for layer in (0, 1)}
    spliced = splice(model, dictionaries)
    prompts = make_prompt_set(40, lengths=(6, 8, 5, 7, 8), seed=5)
    return model, spliced, dictionaries, prompts


def feature_acts(tc, x: torch.Tensor) -> torch.Tensor:
    """Hand-written encoder: ReLU(x W_enc + b_enc)."""
    with torch.no_grad():
        return torch.relu(x @ tc.W_enc + tc.b_enc)


def one(prompts, i, corrupt=False):
    tokens = prompts.corrupt_tokens if corrupt else prompts.tokens
    return tokens[i : i + 1, : int(prompts.lengths[i])]


def hand_run(model, dictionaries, prompts, i, key, new_value, corrupt=False) -> float:
    """Logit diff of prompt i with feature ``FEATURES[key]`` of ``key`` set to ``new_value(a)`` at role a."""
    layer = int(key[3])
    tc, f = dictionaries[key], FEATURES[key]
    position = int(prompts.positions("a")[i])
    captured = {}

    def read_input(act, hook):
        captured["a"] = feature_acts(tc, act)[0, position, f]
        return act

    def add_delta(act, hook):
        a = captured["a"]
        act = act.clone()
        act[0, position] += (new_value(a, i) - a) * tc.W_dec[f]
        return act

    hooks = [(f"blocks.{layer}.ln2.hook_normalized", read_input), (f"blocks.{layer}.hook_mlp_out", add_delta)]
    with torch.no_grad():
        logits = model.run_with_hooks(one(prompts, i, corrupt), fwd_hooks=hooks)
    last = logits[0, -1]
    return float(last[prompts.desired[i]] - last[prompts.undesired[i]])


def clean_act(model, dictionaries, prompts, i, key, corrupt=False) -> torch.Tensor:
    layer = int(key[3])
    with torch.no_grad():
        _, cache = model.run_with_cache(one(prompts, i, corrupt))
    x = cache[f"blocks.{layer}.ln2.hook_normalized"][0, int(prompts.positions("a")[i])]
    return feature_acts(dictionaries[key], x)[FEATURES[key]]


def site(prompts, key):
    return resolve_site(parse_node(f"{key}[{FEATURES[key]}]@a"), prompts)


def test_splicing_with_error_term_leaves_the_output_unchanged(setup):
    model, spliced, _, prompts = setup
    with torch.no_grad():
        torch.testing.assert_close(spliced(prompts.tokens), model(prompts.tokens), atol=1e-5, rtol=0)
    assert "blocks.0.hook_mlp_out.hook_sae_acts_post" in spliced.hook_dict
    assert "blocks.0.hook_mlp_out" in spliced.hook_dict  # the site itself stays hookable
    with torch.no_grad():
        _, ours = spliced.run_with_cache(prompts.tokens, names_filter=lambda n: n.endswith("hook_mlp_out"))
        _, ref = model.run_with_cache(prompts.tokens, names_filter=lambda n: n.endswith("hook_mlp_out"))
    for layer in (0, 1):
        name = f"blocks.{layer}.hook_mlp_out"
        torch.testing.assert_close(ours[name], ref[name], atol=1e-5, rtol=0)
    assert hook_name(parse_node("MLP0.tc[3]")) in spliced.hook_dict


def test_spliced_feature_activations_equal_hand_encoder(setup):
    model, spliced, dictionaries, prompts = setup
    ctx = RunContext(spliced, prompts, metric=logit_diff)
    name = hook_name(parse_node("MLP1.tc[0]"))
    _, cache = ctx.clean([name])
    for i in range(len(prompts)):
        with torch.no_grad():
            _, ref = model.run_with_cache(one(prompts, i))
        hand = feature_acts(dictionaries["MLP1.tc"], ref["blocks.1.ln2.hook_normalized"][0])
        torch.testing.assert_close(cache[name][i, : int(prompts.lengths[i])], hand, atol=1e-5, rtol=0)
    assert float((cache[name] > 0).float().mean()) > 0.2  # features really fire here


@pytest.mark.parametrize("key", list(FEATURES))
@pytest.mark.parametrize("method", ["zero", "mean"])
def test_feature_ablation_matches_hand_reference(setup, key, method):
    model, spliced, dictionaries, prompts = setup
    n = len(prompts)
    got = ablate(RunContext(spliced, prompts, metric=logit_diff), [site(prompts, key)], method=method)
    acts = torch.stack([clean_act(model, dictionaries, prompts, i, key) for i in range(n)])
    assert float(acts.abs().min()) > 0, "pick a feature active at every role position"
    target = torch.zeros(n) if method == "zero" else acts.mean().expand(n)
    clean = logit_diff(spliced(prompts.tokens), prompts)
    if key == "MLP0.tc":  # (MLP1 is the last layer: an edit at role a cannot reach the end token)
        assert float((got - clean).abs().max()) > 1e-2  # the edit really moves the output
    for i in range(n):
        ref = hand_run(model, dictionaries, prompts, i, key, lambda a, i: target[i])
        assert got[i].item() == pytest.approx(ref, abs=ATOL)


@pytest.mark.parametrize("key", list(FEATURES))
def test_feature_scaling_matches_hand_reference(setup, key):
    model, spliced, dictionaries, prompts = setup
    alphas = [-2.0, 0.5, 4.0]
    got = scale_sweep(RunContext(spliced, prompts, metric=logit_diff), [site(prompts, key)], alphas)
    for a, alpha in enumerate(alphas):
        for i in range(len(prompts)):
            ref = hand_run(model, dictionaries, prompts, i, key, lambda x, i, alpha=alpha: alpha * x)
            assert got[a, i].item() == pytest.approx(ref, abs=ATOL)


@pytest.mark.parametrize("key", list(FEATURES))
def test_feature_denoising_patch_matches_hand_reference(setup, key):
    model, spliced, dictionaries, prompts = setup
    got = activation_patch(RunContext(spliced, prompts, metric=logit_diff), [site(prompts, key)], "denoising")
    for i in range(len(prompts)):
        clean = clean_act(model, dictionaries, prompts, i, key)
        ref = hand_run(model, dictionaries, prompts, i, key, lambda a, i, c=clean: c, corrupt=True)
        assert got[i].item() == pytest.approx(ref, abs=ATOL)


def test_feature_direct_logit_attribution_matches_transformerlens_stack(setup):
    from circuitspec.engine.feature_attribution import feature_logit_attribution

    model, spliced, dictionaries, prompts = setup
    node = parse_node("MLP1.tc[11]")
    got = feature_logit_attribution(
        RunContext(spliced, prompts, metric=logit_diff), [resolve_site(node, prompts)]
    )
    tc = dictionaries["MLP1.tc"]
    for i in range(len(prompts)):
        with torch.no_grad():
            _, cache = model.run_with_cache(one(prompts, i))
            a = feature_acts(tc, cache["blocks.1.ln2.hook_normalized"][0, -1])[11]
            write = (a * tc.W_dec[11])[None, None, None]  # [components, batch, pos, d]
            normed = cache.apply_ln_to_stack(write, layer=-1, pos_slice=-1)[0, 0, -1]
            direction = (
                model.W_U[:, prompts.desired[i]] - model.W_U[:, prompts.undesired[i]]
            ) * model.ln_final.w
        assert got[i].item() == pytest.approx(float(normed @ direction), abs=ATOL)


def test_wrong_hook_name_is_one_line_error(setup):
    from circuitspec.features.splice import splice

    model, _, dictionaries, _ = setup
    with pytest.raises(CircuitSpecError) as err:
        splice(model, {"MLP0.tc": dictionaries["MLP1.tc"]})
    message = str(err.value)
    assert "\n" not in message and "blocks.1.ln2.hook_normalized" in message and "MLP0.tc" in message
