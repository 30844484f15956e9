"""Compare saved learned interventions (ActivScalar, SteerVec, DynScalar) as the activation-scaling paper's
Table 2 and Fig. 2 do: a markdown table of parameter counts, |θ| > 0.01 counts and E₀ / F / flipped on
train, held-out test and the other template, and an effectiveness-faithfulness plot per method.

Reads only what ``circuitspec learn`` stored in each file's provenance (the scores it measured) and the
parameters themselves (the counts), so it needs no model and no torch::

    .venv/bin/python scripts/activation_scaling_compare.py hypotheses/learned/smollm2_ccc.*.safetensors \\
        steervec.*.safetensors dynscalar.safetensors --plot docs/figures/activation_scaling_methods.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from circuitspec.learned.store import LearnedFile, load

SETS = ("train", "test", "template")
NAMES = {"activ_scalar": "ActivScalar", "steer_vec": "SteerVec", "dyn_scalar": "DynScalar"}
STYLE = {"activ_scalar": ("o", "tab:blue"), "steer_vec": ("s", "tab:red"), "dyn_scalar": ("^", "tab:green")}


def row(path: Path, stored: LearnedFile) -> str:
    """One table row: the method, its λs, steps and learning rates, parameter counts and scores per set."""
    prov, theta = stored.provenance, stored.theta
    c = prov.config
    lr = f"{c['lr']:g}" + (f"→{c['lr_end']:g}" if c.get("lr_end") is not None else "")
    count = int((np.abs(theta) > 0.01).sum())
    cells = [
        f"{prov.scores[s]['effectiveness']:.2f} / {prov.scores[s]['faithfulness']:.2f} / "
        f"{prov.scores[s]['flipped']:.0%}"
        if s in prov.scores
        else "-"
        for s in SETS
    ]
    return (
        f"| {NAMES.get(prov.method, prov.method)} | {c['lambda_f']:g} | {c['lambda_m']:g} | {c['margin']:g} "
        f"| {c['steps']} | {lr} | {theta.size} | {count} ({count / theta.size:.0%}) | "
        + " | ".join(cells)
        + f" | `{path.name}` |"
    )


def table(files: list[tuple[Path, LearnedFile]]) -> str:
    """The markdown table, one row per file."""
    head = (
        "| method | λ_F | λ_M | m | steps | lr | parameters | \\|θ\\| > 0.01 | train E₀ / F / flipped "
        "| test E₀ / F / flipped | other template E₀ / F / flipped | file |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    return "\n".join([head, *(row(path, stored) for path, stored in files)])


def plot(files: list[tuple[Path, LearnedFile]], path: Path, title: str) -> None:
    """E₀ against F on the test prompts (filled) and the training prompts (hollow), one marker per
    method, each point labelled with its λ_F, λ_M."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    seen: set[str] = set()
    for _, stored in files:
        prov = stored.provenance
        marker, colour = STYLE.get(prov.method, ("x", "tab:gray"))
        for name, fill in (("train", "none"), ("test", colour)):
            if name not in prov.scores:
                continue
            s = prov.scores[name]
            label = f"{NAMES.get(prov.method, prov.method)} ({name})"
            ax.scatter(
                s["faithfulness"], s["effectiveness"], marker=marker, edgecolors=colour, facecolors=fill,
                label=None if label in seen else label,
            )  # fmt: skip
            seen.add(label)
            if name == "test":
                text = f"λF {prov.config['lambda_f']:g}, λM {prov.config['lambda_m']:g}"
                ax.annotate(text, (s["faithfulness"], s["effectiveness"]), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")  # fmt: skip
    ax.set_xlabel("faithfulness F = −mean[KL(run⁺‖clean) + KL(run⁻‖clean)] (nats; 0 best)")
    ax.set_ylabel("effectiveness E₀ (logits; 0 best)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="saved .safetensors files from circuitspec learn")
    parser.add_argument("--plot", type=Path, help="write the effectiveness-faithfulness plot here")
    parser.add_argument("--title", default="SmolLM2-135M country-capital: learned interventions")
    args = parser.parse_args()
    files = [(path, load(path)) for path in args.files]
    print(table(files))
    if args.plot is not None:
        plot(files, args.plot, args.title)


if __name__ == "__main__":
    main()
