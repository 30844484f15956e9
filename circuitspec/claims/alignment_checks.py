"""Compile-time checks of the ``alignment`` claim (torch-free): the ``fit`` templates exist and the fit
and evaluation prompts are not the same templates on the same rows."""

from __future__ import annotations

from typing import Any

__all__ = ["check_alignment", "fit_templates"]


def fit_templates(spec: Any, names: list[str]) -> list[str | None]:
    """Per name in ``fit``, the template ids it selects (an id, or every template with that tag); None
    for a name that is neither."""
    ids = [t.id for t in spec.data.templates]
    out: list[Any] = []
    for name in names:
        tagged = [t.id for t in spec.data.templates if name in t.tags]
        out.append([name] if name in ids else (tagged or None))
    return out


def check_alignment(c: Any, claim: Any, targets: Any, chains: Any, template_ids: list[str]) -> None:
    """Every ``fit`` name is a template id or tag of this file."""
    for j, (name, ids) in enumerate(zip(claim.fit, fit_templates(c.spec, claim.fit), strict=True)):
        if ids is None:
            tags = sorted({tag for t in c.spec.data.templates for tag in t.tags})
            valid = ", ".join([*(t.id for t in c.spec.data.templates), *(f"tag {t}" for t in tags)])
            message = f"fit: unknown template or tag '{name}' (valid: {valid})"
            raise c.fail(message, c.claim_loc(claim.id, "fit", j))
