"""Prompts as plain data: what ``circuitspec prompts`` prints and what a report's prompt sample shows.

:func:`prompt_record` turns one prompt of a :class:`PromptSet` into plain data (text, tokens, role
positions, answers, corrupted twin); :func:`sample_prompts` takes the first prompt of each template
as ``verify`` builds it, for the report. One function serves both, so the report and the command
cannot disagree on where a role sits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from circuitspec.errors import CircuitSpecError

from .prompts import NO_ANSWER, PromptSet, build_prompt_set

__all__ = ["prompt_record", "sample_prompts", "token_roles"]

SAMPLE_TEMPLATES = 12  # a report's sample shows at most this many templates' first prompts


def _tokens(tokenizer: Any, ids: list[int]) -> list[dict[str, Any]]:
    return [{"index": i, "id": idx, "text": tokenizer.decode([idx])} for i, idx in enumerate(ids)]


def _answer(tokenizer: Any, idx: int) -> dict[str, Any] | None:
    return None if idx == NO_ANSWER else {"id": idx, "text": tokenizer.decode([idx])}


def token_roles(prompts: PromptSet, k: int) -> dict[str, int]:
    """Prompt ``k``'s role positions in token order (:func:`prompt_record` adds ``end``); a set over
    several templates keeps only their shared roles, so pass the template's own set for all of them."""
    at = {role: int(positions[k]) for role, positions in prompts.role_positions.items()}
    return dict(sorted(at.items(), key=lambda item: (item[1], item[0])))


def prompt_record(prompts: PromptSet, i: int, roles: dict[str, int], tokenizer: Any) -> dict[str, Any]:
    """One prompt of a :class:`PromptSet` as plain data (``roles``: its role positions)."""
    length = int(prompts.lengths[i])
    row = prompts.rows[i]
    record: dict[str, Any] = {
        "template": prompts.template_ids[i],
        "row": getattr(row, "where", "") or None,
        "slots": dict(row),
        "text": prompts.texts[i],
        "tokens": _tokens(tokenizer, prompts.tokens[i, :length].tolist()),
        "roles": {**roles, "end": length - 1},
        "desired": _answer(tokenizer, int(prompts.desired[i])),
        "undesired": _answer(tokenizer, int(prompts.undesired[i])),
        "corrupted": {
            "text": prompts.corrupt_texts[i],
            "tokens": _tokens(tokenizer, prompts.corrupt_tokens[i, :length].tolist()),
            "desired": _answer(tokenizer, int(prompts.corrupt_desired[i])),
            "undesired": _answer(tokenizer, int(prompts.corrupt_undesired[i])),
        },
    }
    if prompts.reference_texts and prompts.reference_tokens is not None:
        ids = prompts.reference_tokens[i].tolist()
        while ids and ids[-1] == prompts.pad_id:  # right padding
            ids.pop()
        record["reference"] = {"text": prompts.reference_texts[i], "tokens": _tokens(tokenizer, ids)}
    return record


def sample_prompts(
    data: Any, rows: Sequence[dict], tokenizer: Any, limit: int = SAMPLE_TEMPLATES
) -> list[dict[str, Any]]:
    """The first prompt of each template (up to ``limit`` templates) built as ``verify`` builds it
    (``rows``: the split's rows; ``data.n`` sampled with ``data.seed``), as :func:`prompt_record`s.

    A template whose prompts cannot be built is left out instead of raising: the sample is a view of
    the run and must never stop it (the claims on that template report the error).
    """
    records: list[dict[str, Any]] = []
    for template in list(data.templates)[:limit]:
        try:
            alone = build_prompt_set(data, rows, tokenizer, [template.id], seed=data.seed, n=data.n)
        except (CircuitSpecError, ValueError, KeyError):
            continue
        record = prompt_record(alone, 0, token_roles(alone, 0), tokenizer)
        if record["row"]:  # "file.jsonl:5", not the absolute path: reports travel between machines
            record["row"] = PurePath(str(record["row"])).name
        records.append(record)
    return records
