"""Per-prompt metrics on logits read at each prompt's last real token.

Every metric has the signature ``metric(logits, prompts, corrupt=False) -> Tensor[n]``: ``logits``
are ``[n, vocab]`` at each prompt's last real token (what the shared runs and edited passes keep;
``[n, pos, vocab]`` is read at the last real token too); ``corrupt=True`` scores the run against the
corrupted twins' answers. ``kl`` (KL(clean ‖ run)) and ``kl_run_clean`` (KL(run ‖ clean)) need the clean
logits, so they are built by :func:`make_metric`.
:func:`answer_logit_metric` says which metrics read only the two answer logits, so a caller may
unembed those columns alone (the logit lens).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .prompts import NO_ANSWER, PromptSet

__all__ = [
    "EMBEDDING_METRICS",
    "KL_METRICS",
    "METRICS",
    "answer_logit_metric",
    "cosine_distance",
    "cosine_to_reference",
    "desired_prob",
    "distance_change",
    "final_logits",
    "kl_from_clean",
    "logit_diff",
    "make_metric",
    "normalized_recovery",
    "prob_diff",
]

Metric = Callable[..., torch.Tensor]


def final_logits(logits: torch.Tensor, prompts: PromptSet) -> torch.Tensor:
    """``[n, vocab]`` logits at each prompt's last real token (padding is never read).

    ``logits`` already ``[n, vocab]`` or ``[n, 1, vocab]`` (read only at the end) pass through.
    """
    if logits.dim() == 2:
        return logits
    if logits.shape[1] == 1:  # already read at the last token (RunContext.run(last_only=True))
        return logits[:, 0]
    ends = (prompts.lengths - 1).to(logits.device)
    return logits[torch.arange(logits.shape[0], device=logits.device), ends]


def _answers(prompts: PromptSet, corrupt: bool, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    good = prompts.corrupt_desired if corrupt else prompts.desired
    bad = prompts.corrupt_undesired if corrupt else prompts.undesired
    return good.to(device), bad.to(device)


def logit_diff(logits: torch.Tensor, prompts: PromptSet, corrupt: bool = False) -> torch.Tensor:
    """logit(desired) − logit(undesired) at the last real token."""
    last = final_logits(logits, prompts)
    good, bad = _answers(prompts, corrupt, last.device)
    rows = torch.arange(last.shape[0], device=last.device)
    return last[rows, good] - last[rows, bad]


def prob_diff(logits: torch.Tensor, prompts: PromptSet, corrupt: bool = False) -> torch.Tensor:
    """p(desired) − p(undesired) at the last real token."""
    probs = final_logits(logits, prompts).float().softmax(-1)
    good, bad = _answers(prompts, corrupt, probs.device)
    rows = torch.arange(probs.shape[0], device=probs.device)
    return probs[rows, good] - probs[rows, bad]


def desired_prob(logits: torch.Tensor, prompts: PromptSet, corrupt: bool = False) -> torch.Tensor:
    """p(desired) at the last real token."""
    probs = final_logits(logits, prompts).float().softmax(-1)
    good, _ = _answers(prompts, corrupt, probs.device)
    return probs[torch.arange(probs.shape[0], device=probs.device), good]


def kl_from_clean(clean_logits: torch.Tensor, prompts: PromptSet, run_first: bool = False) -> Metric:
    """KL(clean ‖ run) of the next-token distributions at the last real token (0 on the clean run);
    ``run_first``: KL(run ‖ clean), the direction of the activation-scaling paper's faithfulness term."""
    clean_logp = final_logits(clean_logits, prompts).float().log_softmax(-1)

    def kl(logits: torch.Tensor, prompts: PromptSet, corrupt: bool = False) -> torch.Tensor:
        run_logp = final_logits(logits, prompts).float().log_softmax(-1)
        ref = clean_logp.to(run_logp.device)
        p, q = (run_logp, ref) if run_first else (ref, run_logp)
        return (p.exp() * (p - q)).sum(-1)

    return kl


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine distance ``1 − cos(a, b)`` of ``[n, d]`` embeddings."""
    return 1.0 - torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)


def cosine_to_reference(reference: torch.Tensor) -> Metric:
    """Encoders: cos(embedding of the run, embedding of the prompt's ``reference`` text), per prompt."""

    def cosine(embeddings: torch.Tensor, prompts: PromptSet, corrupt: bool = False) -> torch.Tensor:
        return 1.0 - cosine_distance(embeddings, reference.to(embeddings.device))

    return cosine


def distance_change(reference: torch.Tensor, clean: torch.Tensor) -> Metric:
    """Encoders, Eq. 1 of the colour-head report: ``(d(ref, i) − d(ref, f)) / d(ref, i)``.

    ``d`` is cosine distance, ``ref`` the reference text's embedding, ``i`` the clean prompt's embedding
    and ``f`` the run's: 0 on the clean run, negative when the run moved away from the reference.
    """
    initial = cosine_distance(clean, reference)

    def change(embeddings: torch.Tensor, prompts: PromptSet, corrupt: bool = False) -> torch.Tensor:
        final = cosine_distance(embeddings, reference.to(embeddings.device))
        return (initial.to(final.device) - final) / initial.to(final.device)

    return change


EMBEDDING_METRICS = ("cosine", "distance_change")
KL_METRICS = ("kl", "kl_run_clean")  # KL(clean ‖ run), KL(run ‖ clean)

METRICS: dict[str, Metric] = {"logit_diff": logit_diff, "prob_diff": prob_diff, "desired_prob": desired_prob}


def make_metric(
    name: str,
    clean_logits: Callable[[], torch.Tensor],
    prompts: PromptSet,
    reference: Callable[[], torch.Tensor] | None = None,
) -> Metric:
    """The metric called ``name``; ``clean_logits`` is called only for the KL metrics and ``distance_change``.

    Embedding metrics (encoders) need ``reference``: it returns the ``[n, d]`` embeddings of each
    prompt's reference text, computed once without interventions.
    """
    if name in EMBEDDING_METRICS:
        if reference is None or prompts.reference_tokens is None:
            raise ValueError(
                f"metric '{name}' compares sentence embeddings: it needs an encoder model and a "
                "'reference' text on every template"
            )
        if name == "cosine":
            return cosine_to_reference(reference())
        return distance_change(reference(), clean_logits())
    if name in KL_METRICS:
        return kl_from_clean(clean_logits(), prompts, run_first=name == "kl_run_clean")
    if name not in METRICS:
        raise ValueError(
            f"metric '{name}' is not available for causal LMs (valid: {', '.join([*METRICS, *KL_METRICS])})"
        )
    if not prompts.has_answers:  # fails when used: attention claims never read their metric
        lacking = sorted(
            {t for t, a in zip(prompts.template_ids, prompts.desired.tolist(), strict=True) if a == NO_ANSWER}
        )
        message = (
            f"metric '{name}' compares answer logits, and these templates have no 'desired' / "
            f"'undesired' answers: {', '.join(lacking)}"
        )

        def needs_answers(*args: object, **kwargs: object) -> torch.Tensor:
            raise ValueError(message)

        return needs_answers
    return METRICS[name]


def answer_logit_metric(metric: Metric) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """For a metric that reads only the desired and undesired logits (``logit_diff``): the same metric
    on ``[n, 2]`` (desired, undesired) logits; None for any metric that needs the whole distribution."""
    if metric is logit_diff:
        return lambda answers: answers[:, 0] - answers[:, 1]
    return None


def normalized_recovery(intervened: torch.Tensor, clean: torch.Tensor, corrupt: torch.Tensor) -> torch.Tensor:
    """Per-prompt ``(intervened − corrupt) / (clean − corrupt)``: 1 = fully clean, 0 = baseline."""
    return (intervened - corrupt) / (clean - corrupt)
