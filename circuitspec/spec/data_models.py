"""The ``data:`` section of a hypothesis file as pydantic v2 models (no torch): templates, corruptions,
row splits. Kept apart from :mod:`.schema` (the rest of the file), which re-exports every name here.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from .claim_base import StrictModel
from .names import non_negative_seed
from .templates import parse_template

__all__ = ["CorruptionSpec", "DataSpec", "SplitSpec", "TemplateSpec"]

_Strict = StrictModel


class CorruptionSpec(_Strict):
    """How a prompt's corrupted (counterfactual) twin is made from its data row.

    ``set`` rewrites slots from the row's own values, e.g. ``{s_con: "{s_ori}"}`` turns a
    contrast prompt into a preservation prompt; ``shuffle`` takes the named slots from another
    (seeded, never the same) row. Corrupted prompts must tokenize to the clean prompt's length.
    """

    set: dict[str, str] = Field(default_factory=dict)
    """Slots rewritten from the row's own values, e.g. {s_con: "{s_ori}"}."""
    shuffle: list[str] = Field(default_factory=list)
    """Slots taken from another (seeded, never the same) row."""
    desired: str | None = None
    """The corrupted prompt's desired answer, if it differs."""
    undesired: str | None = None
    """The corrupted prompt's undesired answer, if it differs."""

    @model_validator(mode="after")
    def _not_empty(self) -> CorruptionSpec:
        if not self.set and not self.shuffle:
            raise ValueError("a corruption needs 'set' or 'shuffle'")
        for value in self.set.values():
            parse_template(value)
        return self


class TemplateSpec(_Strict):
    """One prompt template; ``tags`` let claims select prompt subsets. Its answers are needed only by
    claims comparing answer logits, not by generation or attention claims (``validate`` checks each
    claim's templates); an encoder's embedding metrics read ``reference`` instead."""

    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")
    """The template's id (a letter or '_', then letters, digits, '_', '-'); claims select it in `data`."""
    text: str = Field(min_length=1)
    """The prompt: {slot} is filled from the row and marks a token role, {role:text} marks fixed text."""
    desired: str | None = Field(default=None, min_length=1)
    """The desired answer pattern, e.g. " {w_con}" (give undesired too; claims comparing answer logits need
    both, generation and attention claims none).
    """
    undesired: str | None = Field(default=None, min_length=1)
    """The undesired answer pattern, e.g. " {w_ori}" (give desired too)."""
    tags: list[str] = Field(default_factory=list)
    """Tags claims can select in `data`."""
    corrupt: CorruptionSpec | None = None
    """This template's corruption (default: data.corrupt)."""
    reference: str | None = None
    """Encoders: the text an embedding is compared with."""
    where: dict[str, str] = Field(default_factory=dict)
    """Only the data rows whose fields have these values, e.g. {category: anger} (default: every row)."""

    @field_validator("text", "desired", "undesired", "reference")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            parse_template(value)
        return value

    @model_validator(mode="after")
    def _both_answers_or_neither(self) -> TemplateSpec:
        """A logit difference needs both answers; one alone is always a mistake."""
        if (self.desired is None) != (self.undesired is None):
            raise ValueError(f"template '{self.id}': give both 'desired' and 'undesired', or neither")
        return self

    def selects(self, row: dict[str, str]) -> bool:
        """Whether this template is filled from ``row`` (its ``where:`` holds)."""
        return all(str(row.get(field)) == value for field, value in self.where.items())

    @property
    def has_answers(self) -> bool:
        """Whether claims comparing answer logits can use this template."""
        return self.desired is not None and self.undesired is not None


class SplitSpec(_Strict):
    """Rows divided into ``explore`` (thresholds are set there) and ``test`` (held out for verdicts).

    A row is ``test`` when a seeded SHA-256 of its slot values falls below ``test_fraction``: its split
    depends only on the row itself and the seed, so adding or reordering rows never moves one between
    splits (``circuitspec.spec.splits``).
    """

    test_fraction: float = Field(default=0.5, gt=0, lt=1)
    """Share of rows held out as `test` (0 < f < 1)."""
    seed: int = 0
    """Seed of the split's hash (a whole number from 0)."""

    _seed = field_validator("seed")(non_negative_seed)


class DataSpec(_Strict):
    """Prompts: templates × rows (inline or a JSONL file), sampled with a seed."""

    templates: list[TemplateSpec] = Field(min_length=1)
    """The prompt templates (at least one)."""
    rows: list[dict[str, str]] | None = None
    """Inline rows of slot values (give rows or file)."""
    file: str | None = None
    """A JSONL file, one row of slot values per line, relative to the hypothesis file (give rows or file)."""
    allow_outside: bool = False
    """Allow `file` to lie outside the hypothesis' folder."""
    n: int | None = Field(default=None, ge=1)
    """Rows sampled per template (default: all)."""
    seed: int = 0
    """Seed of the row sampling (a whole number from 0)."""
    corrupt: CorruptionSpec | None = None
    """How every prompt's corrupted twin is made (templates may override it)."""
    max_length: int | None = Field(default=None, ge=1)
    """Longest prompt allowed, in tokens."""
    split: SplitSpec | None = None
    """Divide the rows into explore and test (held-out verification)."""

    _seed = field_validator("seed")(non_negative_seed)

    @model_validator(mode="after")
    def _rows_or_file(self) -> DataSpec:
        if (self.rows is None) == (self.file is None):
            raise ValueError("give exactly one of 'rows' or 'file'")
        if self.rows is not None and not self.rows:
            raise ValueError("'rows' is empty")
        ids = [t.id for t in self.templates]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate template id {', '.join(dupes)}")
        return self
