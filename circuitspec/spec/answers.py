"""Which claims compare answer logits, and the check that their templates have answers (torch-free).

A template's ``desired`` / ``undesired`` answers are optional (:class:`~.schema.TemplateSpec`): a
``generation`` claim scores generated text and an ``attention`` claim reads attention probabilities,
so an instruction such as "rewrite this review with the opposite sentiment" needs no answer token.
Every other claim on a causal model compares answer logits when its metric does (``logit_diff``,
``prob_diff``, ``desired_prob``; ``kl`` and ``kl_run_clean`` compare whole distributions), and an
``attribution`` claim always does (its direction is ``W_U[:, desired] − W_U[:, undesired]``). Encoders
are left to their own metrics, which read ``reference`` texts. An ``induction`` claim reads its own
random sequences, never the templates.

The check runs where the graph compiler has resolved each claim's templates (ids and tags), so its
one-line error points at the claim's ``data`` entry that selected the template, or at the claim.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ANSWER_METRICS", "check_answers", "needs_answers"]

ANSWER_METRICS = ("logit_diff", "prob_diff", "desired_prob")
# kinds that never read a template's answers
_WITHOUT_ANSWERS = ("generation", "attention", "alignment", "induction")
_ALWAYS_ANSWERS = ("attribution",)  # direct logit attribution along the answers' unembedding difference


def needs_answers(claim: Any, causal: bool = True) -> bool:
    """Whether ``claim`` reads its templates' ``desired`` / ``undesired`` answers."""
    if not causal or claim.kind in _WITHOUT_ANSWERS or getattr(claim, "score", None) is not None:
        return False  # a text score (generation, steering with `score:`) reads generated text
    return claim.kind in _ALWAYS_ANSWERS or getattr(claim, "metric", None) in ANSWER_METRICS


def check_answers(checker: Any, claim: Any, template_ids: list[str]) -> None:
    """Raise ``checker.fail`` (one line, at the claim) when ``claim`` needs answers and one of its
    templates ``template_ids`` has none.

    ``checker`` is the graph compiler's resolver (``spec``, ``shape``, ``fail``, ``claim_loc``), as
    for the claim kinds' own checks in ``circuitspec.claims.checks``.
    """
    if not needs_answers(claim, checker.shape.causal):
        return
    templates = {t.id: t for t in checker.spec.data.templates}
    lacking = [t for t in template_ids if not templates[t].has_answers]
    if not lacking:
        return
    with_answers = [t for t in template_ids if templates[t].has_answers] or [
        t.id for t in checker.spec.data.templates if t.has_answers
    ]
    what = "direct logit attribution" if claim.kind in _ALWAYS_ANSWERS else f"metric '{claim.metric}'"
    hint = (
        f"select templates with answers in 'data' (valid: {', '.join(with_answers)})"
        if with_answers
        else "give the template 'desired' and 'undesired' answers"
    )
    raise checker.fail(
        f"claim '{claim.id}' ({claim.kind}) compares answer logits ({what}), but template "
        f"'{lacking[0]}' has no 'desired' / 'undesired' answers: {hint}",
        _where(checker, claim, templates[lacking[0]]),
    )


def _where(checker: Any, claim: Any, template: Any) -> tuple[int | str, ...]:
    """The ``data`` entry that selected ``template`` (its id or one of its tags), else the claim."""
    for j, name in enumerate(claim.data or ()):
        if name == template.id or name in template.tags:
            return checker.claim_loc(claim.id, "data", j)
    return checker.claim_loc(claim.id)
