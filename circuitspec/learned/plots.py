"""A saved intervention's parameters as a heatmap (the paper's Fig. 3): one panel per site, layers across,
roles down, colour = α (activation scalars) or the vector / probe norm (steering vectors, dynamic
scalars), so where the intervention acts can be read at a glance. Torch-free.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .store import LearnedFile

__all__ = ["plot_scalars"]


def plot_scalars(stored: LearnedFile, path: str | Path, title: str = "") -> None:
    """Write the heatmap of ``stored``'s parameters to ``path`` (its suffix picks the format)."""
    from matplotlib.figure import Figure

    locations = stored.locations
    theta = stored.theta if stored.theta.ndim == 1 else np.linalg.norm(stored.theta, axis=-1)
    sites = sorted({loc.site for loc in locations})
    layers = sorted({loc.layer for loc in locations})
    roles = list(dict.fromkeys(loc.role or "every position" for loc in locations))
    bound = float(np.abs(theta).max()) or 1.0
    signed = stored.theta.ndim == 1
    fig = Figure(figsize=(max(6.0, 0.28 * len(layers) * len(sites) + 2.0), 0.45 * len(roles) + 1.8))
    axes = fig.subplots(1, len(sites), squeeze=False)[0]
    image = None
    for ax, site in zip(axes, sites, strict=True):
        grid = np.full((len(roles), len(layers)), np.nan)
        for loc, value in zip(locations, theta, strict=True):
            if loc.site == site:
                grid[roles.index(loc.role or "every position"), layers.index(loc.layer)] = value
        cmap, low = ("RdBu_r", -bound) if signed else ("viridis", 0.0)
        image = ax.imshow(grid, cmap=cmap, vmin=low, vmax=bound, aspect="auto")
        ax.set_title(site, fontsize=9)
        ax.set_xticks(range(len(layers)), [str(layer) for layer in layers], fontsize=6)
        ax.set_yticks(range(len(roles)), roles, fontsize=7)
        ax.set_xlabel("layer", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="α" if signed else "‖θ‖", shrink=0.8)
    fig.suptitle(title or f"{stored.provenance.method} on {stored.provenance.model}", fontsize=9)
    fig.savefig(str(path))
