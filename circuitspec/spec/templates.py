"""Prompt templates with named token roles.

A template is text with two kinds of marked spans::

    "{s_ori}: This movie is {w_ori}. {s_con}: This movie is"
    "{label:Positive}: good. {s_con:Negative}:"

``{slot}`` is filled from a data row and names the role ``slot``; ``{role:literal}`` is fixed
text that names the role ``role``. A role's token position is the *last* token of its span.
The role ``end`` (the last real token of the prompt) always exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BUILTIN_ROLES", "Segment", "TemplateSyntaxError", "fill", "parse_template"]

BUILTIN_ROLES = ("end",)
_MARK = re.compile(r"\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<literal>[^{}]*))?\}")


class TemplateSyntaxError(ValueError):
    """Unbalanced braces, a role named twice, or a reserved role name."""


@dataclass(frozen=True)
class Segment:
    """A piece of a template: plain text (``role`` None), a slot, or a literal with a role."""

    text: str  # literal text, or the slot name for slots
    role: str | None = None
    is_slot: bool = False


def parse_template(text: str) -> list[Segment]:
    """Split a template into segments; raises :class:`TemplateSyntaxError`."""
    segments: list[Segment] = []
    seen: set[str] = set()
    pos = 0
    for m in _MARK.finditer(text):
        plain = text[pos : m.start()]
        if "{" in plain or "}" in plain:
            raise TemplateSyntaxError(f"unbalanced or malformed brace in template near '{plain}'")
        if plain:
            segments.append(Segment(plain))
        name = m["name"]
        if name in BUILTIN_ROLES:
            raise TemplateSyntaxError(f"role '{name}' is built in and cannot be marked in a template")
        if name in seen:
            raise TemplateSyntaxError(f"role '{name}' is marked twice in one template")
        seen.add(name)
        if m["literal"] is None:
            segments.append(Segment(name, role=name, is_slot=True))
        else:
            if not m["literal"]:
                raise TemplateSyntaxError(f"role '{name}' marks empty text")
            segments.append(Segment(m["literal"], role=name))
        pos = m.end()
    tail = text[pos:]
    if "{" in tail or "}" in tail:
        raise TemplateSyntaxError(f"unbalanced or malformed brace in template near '{tail}'")
    if tail:
        segments.append(Segment(tail))
    if not segments:
        raise TemplateSyntaxError("template is empty")
    return segments


def roles_of(text: str) -> list[str]:
    """The roles a template defines, builtin ``end`` included."""
    return [s.role for s in parse_template(text) if s.role] + list(BUILTIN_ROLES)


def slots_of(text: str) -> list[str]:
    """The slots a template (or an answer pattern) reads from a data row."""
    return [s.text for s in parse_template(text) if s.is_slot]


def fill(segments: list[Segment], row: dict[str, str]) -> list[tuple[str, str | None]]:
    """Fill slots from ``row``; returns ``(text, role)`` pieces whose concatenation is the prompt."""
    out: list[tuple[str, str | None]] = []
    for seg in segments:
        if seg.is_slot:
            if seg.text not in row:
                raise KeyError(seg.text)
            out.append((str(row[seg.text]), seg.role))
        else:
            out.append((seg.text, seg.role))
    return out
