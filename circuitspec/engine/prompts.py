"""Prompt sets: templates × data rows → padded token batches with role positions.

:func:`build_prompt_set` fills each selected template with each sampled row, tokenizes with
character offsets (a role's position is the last token overlapping its span), right-pads, and
builds every prompt's corrupted twin. Causal models never attend to right padding, so prompts of
different lengths share a batch; metrics read logits at each prompt's own last real token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from circuitspec.errors import CircuitSpecError
from circuitspec.spec.rows import DataRow
from circuitspec.spec.templates import fill, parse_template

__all__ = ["NO_ANSWER", "PromptSet", "build_prompt_set", "derangement"]


NO_ANSWER = -1  # the answer id of a prompt whose template has no desired / undesired answers


@dataclass
class PromptSet:
    """A batch of clean prompts with their corrupted twins, right-padded.

    - ``tokens`` / ``corrupt_tokens``: LongTensor ``[n, max_len]`` (BOS included where the model
      wants one), right-padded with ``pad_id``; clean and corrupt twins have equal lengths.
    - ``lengths``: LongTensor ``[n]`` real lengths; ``end`` = lengths − 1.
    - ``role_positions``: role → LongTensor ``[n]`` (position of the role's last token).
    - ``desired`` / ``undesired``: LongTensor ``[n]`` answer token ids (clean prompts);
      ``corrupt_desired`` / ``corrupt_undesired`` for the twins (default: the same);
      :data:`NO_ANSWER` for prompts of a template without answers (encoder templates).
    - ``rows``: the data row each prompt was filled from (slot → value), for equivalence classes.
    - ``template_ids``: which template each prompt came from.
    - ``decode``: the tokenizer's ``decode`` (ids → text), so a report can show a prompt's tokens
      without the tokenizer being passed around (None for hand-built sets).
    """

    tokens: torch.Tensor
    corrupt_tokens: torch.Tensor
    lengths: torch.Tensor
    role_positions: dict[str, torch.Tensor]
    desired: torch.Tensor
    undesired: torch.Tensor
    corrupt_desired: torch.Tensor
    corrupt_undesired: torch.Tensor
    rows: list[dict[str, str]]
    template_ids: list[str]
    texts: list[str] = field(default_factory=list)
    corrupt_texts: list[str] = field(default_factory=list)
    pad_id: int = 0
    reference_tokens: torch.Tensor | None = None  # encoders: [n, ref_len] each prompt's reference text
    reference_texts: list[str] = field(default_factory=list)
    decode: Callable[[list[int]], str] | None = None

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def has_answers(self) -> bool:
        """Whether every prompt has answer tokens (logit metrics need them)."""
        return bool((self.desired != NO_ANSWER).all() and (self.undesired != NO_ANSWER).all())

    def positions(self, role: str) -> torch.Tensor:
        """Per-prompt position of ``role`` (``end`` is the last real token)."""
        if role == "end":
            return self.lengths - 1
        if role not in self.role_positions:
            defined = ", ".join(sorted(self.role_positions))
            raise KeyError(f"role '{role}' is not defined by these prompts (defined: {defined}, end)")
        return self.role_positions[role]

    @property
    def attention_mask(self) -> torch.Tensor:
        """``[n, max_len]`` 1 on real tokens, 0 on padding."""
        ar = torch.arange(self.tokens.shape[1])
        return (ar[None, :] < self.lengths[:, None]).long()

    def take(self, index: slice | Sequence[int] | np.ndarray) -> PromptSet:
        """The prompts ``index`` (a slice, or row indices in any order, repeats allowed) with every
        per-prompt field cut alike; the padding width stays, so positions keep their meaning. The one
        place a prompt set is subset (batches, shards, scrubbing's reindexed rows)."""
        picks = list(range(len(self)))[index] if isinstance(index, slice) else [int(i) for i in index]
        at = torch.as_tensor(picks, dtype=torch.long)

        def listed(values: list[Any]) -> list[Any]:
            return [values[i] for i in picks] if values else []

        ref = self.reference_tokens
        return replace(
            self,
            tokens=self.tokens[at],
            corrupt_tokens=self.corrupt_tokens[at],
            lengths=self.lengths[at],
            role_positions={role: positions[at] for role, positions in self.role_positions.items()},
            desired=self.desired[at],
            undesired=self.undesired[at],
            corrupt_desired=self.corrupt_desired[at],
            corrupt_undesired=self.corrupt_undesired[at],
            rows=listed(self.rows),
            template_ids=listed(self.template_ids),
            texts=listed(self.texts),
            corrupt_texts=listed(self.corrupt_texts),
            reference_tokens=None if ref is None else ref[at],
            reference_texts=listed(self.reference_texts),
        )


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n)`` with no fixed point (n ≥ 2): rejection sampling."""
    if n < 2:
        raise ValueError("a derangement needs at least 2 items")
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm


@dataclass
class _Encoded:
    ids: list[int]
    roles: dict[str, int]
    text: str


def _encode(template_text: str, row: dict[str, str], tokenizer, where: str) -> _Encoded:
    """Fill a template, tokenize it and locate each role's last token (BOS prepended)."""
    try:
        pieces = fill(parse_template(template_text), row)
    except KeyError as exc:
        raise CircuitSpecError(f"{where}: the row has no slot {exc.args[0]!r} (row: {row})") from None
    text, spans = "", {}
    for piece, role in pieces:
        if role is not None:
            spans[role] = (len(text), len(text) + len(piece))
        text += piece
    ids, offsets = tokenizer.encode(text)
    _refuse_unknown(ids, offsets, text, tokenizer, where)
    roles: dict[str, int] = {}
    for role, (lo, hi) in spans.items():
        hits = [i for i, (a, b) in enumerate(offsets) if a < hi and b > lo]
        if not hits:
            raise CircuitSpecError(f"{where}: role '{role}' covers no token in {text!r}")
        roles[role] = hits[-1]
    if tokenizer.bos_id is not None:
        ids = [tokenizer.bos_id, *ids]
        roles = {r: p + 1 for r, p in roles.items()}
    if getattr(tokenizer, "sep_id", None) is not None:  # encoders: [CLS] text [SEP]
        ids = [*ids, tokenizer.sep_id]
    return _Encoded(ids, roles, text)


def _refuse_unknown(ids: list[int], offsets: list[tuple[int, int]], text: str, tokenizer, where: str) -> None:
    """A word the tokenizer does not know (it became the unknown token) is bad input."""
    unk = getattr(tokenizer, "unk_id", None)
    if unk is not None and unk in ids:
        start, end = offsets[ids.index(unk)]
        raise CircuitSpecError(
            f"{where}: word {text[start:end]!r} is not in the tokenizer's vocabulary (it would become "
            f"the unknown token) in {text!r}"
        )


def _answer(pattern: str, row: dict[str, str], tokenizer, where: str, what: str) -> int:
    try:
        text = "".join(piece for piece, _ in fill(parse_template(pattern), row))
    except KeyError as exc:
        raise CircuitSpecError(f"{where}: {what} answer needs slot {exc.args[0]!r} the row lacks") from None
    ids, offsets = tokenizer.encode(text)
    _refuse_unknown(ids, offsets, text, tokenizer, f"{where}, {what} answer")
    if len(ids) != 1:
        raise CircuitSpecError(
            f"{where}: {what} answer {text!r} is {len(ids)} tokens, answers must be exactly one token"
        )
    return ids[0]


def _corrupt_row(row: dict[str, str], other: dict[str, str] | None, corruption) -> dict[str, str]:
    """The row a corrupted twin is filled from: ``shuffle`` slots from ``other``, then ``set``."""
    out = dict(row)
    for slot in corruption.shuffle:
        assert other is not None
        out[slot] = other[slot]
    for slot, pattern in corruption.set.items():
        out[slot] = "".join(piece for piece, _ in fill(parse_template(pattern), row))
    return out


@dataclass
class _Pair:
    """One prompt and its corrupted twin, encoded, with both answer pairs."""

    clean: _Encoded
    twin: _Encoded
    good: int
    bad: int
    twin_good: int
    twin_bad: int


def _encode_pair(template, corruption, row: dict[str, str], other, tokenizer, where: str) -> _Pair:
    """Encode ``row`` through ``template`` and its corruption (``other`` is a shuffle partner's row)."""
    enc = _encode(template.text, row, tokenizer, where)
    if template.desired is None or template.undesired is None:  # embedding metrics only
        good = bad = NO_ANSWER
    else:
        good = _answer(template.desired, row, tokenizer, where, "desired")
        bad = _answer(template.undesired, row, tokenizer, where, "undesired")
    if corruption is None:
        return _Pair(enc, enc, good, bad, good, bad)
    twin_row = _corrupt_row(row, other, corruption)
    twin = _encode(template.text, twin_row, tokenizer, where + " (corrupted)")
    if len(twin.ids) != len(enc.ids):
        raise CircuitSpecError(
            f"{where}: corrupted prompt {twin.text!r} is {len(twin.ids)} tokens but the clean "
            f"prompt {enc.text!r} is {len(enc.ids)} (they must tokenize to equal lengths)"
        )
    twin_good = (
        _answer(corruption.desired, twin_row, tokenizer, where, "corrupted desired")
        if corruption.desired
        else good
    )
    twin_bad = (
        _answer(corruption.undesired, twin_row, tokenizer, where, "corrupted undesired")
        if corruption.undesired
        else bad
    )
    return _Pair(enc, twin, good, bad, twin_good, twin_bad)


def _padded(encodings: list[_Encoded], pad_id: int) -> torch.Tensor:
    """Right-padded ``[n, longest]`` token ids."""
    tokens = torch.full((len(encodings), max(len(e.ids) for e in encodings)), pad_id, dtype=torch.long)
    for i, enc in enumerate(encodings):
        tokens[i, : len(enc.ids)] = torch.tensor(enc.ids)
    return tokens


def _sample_rows(rows: Sequence[dict], n: int | None, seed: int) -> list[dict[str, str]]:
    """Every row as strings, or ``n`` of them drawn with ``seed`` (kept in file order); a
    :class:`DataRow` keeps where it was written."""
    rows = [
        r.copy_with({k: str(v) for k, v in r.items()})
        if isinstance(r, DataRow)
        else {k: str(v) for k, v in r.items()}
        for r in rows
    ]
    if not rows:
        raise CircuitSpecError("no data rows")
    rng = np.random.default_rng(seed)
    if n is not None and n < len(rows):
        rows = [rows[i] for i in sorted(rng.choice(len(rows), size=n, replace=False))]
    return rows


def _encode_all(data, templates, rows, tokenizer, seed: int) -> tuple[list, list[_Encoded]]:
    """``(pair, row, template id)`` for templates × rows, and the references when templates give one."""
    encoded, references = [], []
    all_rows = rows
    for t_index, template in enumerate(templates):
        rows = [row for row in all_rows if template.selects(row)]
        if not rows:
            where = _where_words(template.where)
            raise CircuitSpecError(f"template '{template.id}': no data row has {where}")
        corruption = template.corrupt or data.corrupt
        partner = None
        if corruption is not None and corruption.shuffle:
            if len(rows) < 2:
                raise CircuitSpecError(
                    f"template '{template.id}': 'shuffle' corruption needs at least 2 rows"
                )
            partner = derangement(len(rows), seed + 7919 * (t_index + 1))
        for r_index, row in enumerate(rows):
            place = row.where if isinstance(row, DataRow) and row.where else f"{r_index}"
            where = f"template '{template.id}', row {place}"
            other = rows[int(partner[r_index])] if partner is not None else None
            pair = _encode_pair(template, corruption, row, other, tokenizer, where)
            if data.max_length is not None and len(pair.clean.ids) > data.max_length:
                raise CircuitSpecError(
                    f"{where}: prompt is {len(pair.clean.ids)} tokens, over max_length {data.max_length}"
                )
            encoded.append((pair, row, template.id))
            if template.reference is not None:
                references.append(_encode(template.reference, row, tokenizer, where + " (reference)"))
    return encoded, references


def _where_words(where: dict[str, str]) -> str:
    """``category = anger, length = short``: a template's ``where:`` for a message."""
    return ", ".join(f"{field} = {value}" for field, value in where.items())


def build_prompt_set(
    data,
    rows: Sequence[dict],
    tokenizer,
    template_ids: list[str] | None = None,
    seed: int = 0,
    n: int | None = None,
) -> PromptSet:
    """Templates (``template_ids`` or all) × rows (``n`` sampled with ``seed``, else all) → PromptSet.

    Raises a one-line :class:`CircuitSpecError` naming the template and row when a corrupted twin
    tokenizes to a different length than its clean prompt or an answer is not a single token.
    """
    templates = [t for t in data.templates if template_ids is None or t.id in template_ids]
    if not templates:
        raise CircuitSpecError(f"no template selected (asked for {template_ids})")
    encoded, references = _encode_all(data, templates, _sample_rows(rows, n, seed), tokenizer, seed)
    pairs: list[_Pair] = [pair for pair, _, _ in encoded]
    clean = [p.clean for p in pairs]
    shared_roles = set.intersection(*(set(e.roles) for e in clean))
    role_positions = {
        role: torch.tensor([e.roles[role] for e in clean], dtype=torch.long) for role in sorted(shared_roles)
    }

    def as_tensor(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long)

    if references and len(references) != len(clean):
        raise CircuitSpecError("either every selected template has a 'reference' or none does")
    return PromptSet(
        tokens=_padded(clean, tokenizer.pad_id),
        corrupt_tokens=_padded([p.twin for p in pairs], tokenizer.pad_id),
        lengths=as_tensor([len(e.ids) for e in clean]),
        role_positions=role_positions,
        desired=as_tensor([p.good for p in pairs]),
        undesired=as_tensor([p.bad for p in pairs]),
        corrupt_desired=as_tensor([p.twin_good for p in pairs]),
        corrupt_undesired=as_tensor([p.twin_bad for p in pairs]),
        rows=[row for _, row, _ in encoded],
        template_ids=[tid for _, _, tid in encoded],
        texts=[e.text for e in clean],
        corrupt_texts=[p.twin.text for p in pairs],
        pad_id=tokenizer.pad_id,
        reference_tokens=_padded(references, tokenizer.pad_id) if references else None,
        reference_texts=[r.text for r in references],
        decode=getattr(tokenizer, "decode", None),
    )
