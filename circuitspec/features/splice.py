"""Splice declared dictionaries into the model so feature nodes become hookable sites.

Entry point: :func:`splice_dictionaries`. The HookedTransformer is rebuilt as a sae-lens
``HookedSAETransformer`` (same weights) and every dictionary is attached with the error term on:
the site's output is ``decode(a) + (x − decode(a_clean))``, equal to the original output until a
feature activation ``a`` is edited. Editing feature ``f`` from ``a`` to ``a'`` at a position
therefore adds exactly ``(a' − a) · W_dec[f]`` to the site output — the definition of a feature
intervention — so the engine's ablation / patching / scaling act on features unchanged, on the hook
``<output hook>.hook_sae_acts_post`` named by :class:`~circuitspec.spec.nodes.NodeRef`.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from circuitspec.errors import CircuitSpecError
from circuitspec.spec.schema import ModelSpec

from .loading import dictionary_hooks, load_dictionary

if TYPE_CHECKING:  # pragma: no cover
    from circuitspec.engine.models import LoadedModel

__all__ = ["as_sae_transformer", "check_dictionary", "splice", "splice_dictionaries", "with_dictionaries"]


def as_sae_transformer(model: Any) -> Any:
    """The same model as a ``HookedSAETransformer`` (shared config, copied weights, same tokenizer)."""
    from sae_lens import HookedSAETransformer

    if isinstance(model, HookedSAETransformer):
        return model
    cfg = copy.deepcopy(model.cfg)
    cfg.init_weights = False  # the weights are copied below
    sae_model = HookedSAETransformer(cfg, move_to_device=False)
    sae_model.load_state_dict(model.state_dict(), strict=True)
    sae_model.tokenizer = model.tokenizer
    sae_model.to(next(model.parameters()).device, print_details=False)
    sae_model.eval()
    return sae_model


def check_dictionary(key: str, sae: Any, model: Any) -> None:
    """One-line error unless ``sae`` reads and writes the hooks ``key`` names, with matching widths.

    (sae-lens only logs a warning and skips the splice when a hook is missing.)
    """
    want_in, want_out = dictionary_hooks(key)
    meta = sae.cfg.metadata
    got_in = meta.hook_name
    got_out = meta.hook_name_out or got_in
    if (got_in, got_out) != (want_in, want_out):
        raise CircuitSpecError(
            f"dictionary '{key}' reads {got_in} and writes {got_out}, "
            f"but '{key}' needs {want_in} -> {want_out}"
        )
    for hook in {want_in, want_out}:
        if hook not in model.hook_dict:
            raise CircuitSpecError(f"dictionary '{key}': the model has no hook {hook}")
    d_out = getattr(sae.cfg, "d_out", sae.cfg.d_in)
    if sae.cfg.d_in != model.cfg.d_model or d_out != model.cfg.d_model:
        raise CircuitSpecError(
            f"dictionary '{key}' maps {sae.cfg.d_in} -> {d_out}, "
            f"but the model's d_model is {model.cfg.d_model}"
        )


def _keep_site_hook(model: Any, output_hook: str) -> None:
    """Put a HookPoint named ``output_hook`` back around the sae-lens wrapper sitting there.

    sae-lens replaces the site's HookPoint (e.g. ``blocks.0.hook_mlp_out``) by its wrapper, which
    would hide the site from every MLP claim and from direct logit attribution. The replacement is a
    HookPoint whose forward runs the wrapper, so hooks on ``output_hook`` see (and may edit) the
    site's final output, and the wrapper's own hooks keep their names ``<output_hook>.hook_sae_*``.
    """
    from sae_lens.analysis.hooked_sae_transformer import get_deep_attr, set_deep_attr
    from transformer_lens.hook_points import HookPoint

    wrapper = get_deep_attr(model, output_hook)

    class SplicedSite(HookPoint):
        def __init__(self) -> None:
            super().__init__()
            self.__dict__["wrapper"] = wrapper  # not a submodule: no ".wrapper." in hook names
            for name, child in wrapper.named_children():
                setattr(self, name, child)

        def forward(self, x: Any) -> Any:
            return wrapper(x)

    set_deep_attr(model, output_hook, SplicedSite())
    model.setup()


def splice(model: Any, dictionaries: dict[str, Any]) -> Any:
    """Attach ``{key: SAE/Transcoder}`` to a HookedSAETransformer copy of ``model`` (error term on)."""
    sae_model = as_sae_transformer(model)
    device = next(sae_model.parameters()).device
    dtype = next(sae_model.parameters()).dtype
    for key, sae in dictionaries.items():
        check_dictionary(key, sae, sae_model)
        sae_model.add_sae(sae.to(device=device, dtype=dtype), use_error_term=True)
        output_hook = dictionary_hooks(key)[1]
        if output_hook + ".hook_sae_acts_post" not in sae_model.hook_dict:
            raise CircuitSpecError(f"dictionary '{key}' could not be spliced at {output_hook}")
        _keep_site_hook(sae_model, output_hook)
    return sae_model


def splice_dictionaries(model: Any, spec: ModelSpec, base_dir: Path) -> Any:
    """Load every ``spec.dictionaries`` entry and splice it in; the model itself when none is declared."""
    if not spec.dictionaries:
        return model
    loaded = {
        key: load_dictionary(key, dictionary, Path(base_dir), bundled=spec.bundled)
        for key, dictionary in spec.dictionaries.items()
    }
    for key, sae in loaded.items():
        declared = spec.dictionaries[key].d_sae
        if sae.cfg.d_sae != declared:
            raise CircuitSpecError(
                f"dictionary '{key}' has {sae.cfg.d_sae} features, declared d_sae: {declared}"
            )
    return splice(model, loaded)


def with_dictionaries(loaded: LoadedModel, spec: ModelSpec, base_dir: Path) -> LoadedModel:
    """``loaded`` with ``spec.dictionaries`` spliced in (itself when none is declared).

    Model loading only loads; callers that need feature nodes (the pipeline) splice here. The
    identity's ``weights_sha256`` is re-taken over the spliced model, dictionaries included.
    """
    if not spec.dictionaries:
        return loaded
    from circuitspec.engine.models import weights_sha256

    model = splice_dictionaries(loaded.model, spec, Path(base_dir))
    return replace(loaded, model=model, identity={**loaded.identity, "weights_sha256": weights_sha256(model)})
