"""The ``behaviour`` claim: does the model do the task? The metric of the clean prompts, per prompt.

No intervention and no extra pass: the metric (logit difference of the desired over the undesired
answer, by default) is read from the shared clean run. ``mean`` is the mean logit difference;
``success_rate`` the accuracy (share of prompts with a positive value). Other claims ``require`` it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitspec.engine.context import RunContext
from circuitspec.measurement import Measurement

from .measuring import MeasurementBuilder, to_numpy

__all__ = ["measure"]


def measure(ctx: RunContext, claim: Any, graph: Any, seed: int) -> Measurement:
    """``value`` = ``clean`` = the metric on each clean prompt; the mean per template as a note."""
    b = MeasurementBuilder(ctx, claim, seed)
    clean_logits, _ = ctx.clean()
    value = to_numpy(ctx.metric(clean_logits, ctx.prompts))
    b.arrays(value=value, clean=value)
    template_ids = np.array(ctx.prompts.template_ids)
    per_template = {
        template: {
            "mean": float(value[template_ids == template].mean()),
            "success_rate": float((value[template_ids == template] > 0).mean()),
            "n": int((template_ids == template).sum()),
        }
        for template in dict.fromkeys(ctx.prompts.template_ids)
    }
    b.note(per_template=per_template)
    return b.build()
