"""Trajectory figures: normalised singular values per group over training, with 95% bands."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from harness.introspect.stats import normalise

QUANTITY_TITLES = {
    "grad": "gradient  σ/N_g",
    "act": "inputs  σ/√N_g",
    "adj": "adjoints  σ/√N_g",
}


def _band(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of a 95% t-interval (0 for a single value)."""
    from scipy.stats import t

    mean = float(values.mean())
    if len(values) < 2:
        return mean, 0.0
    return mean, float(t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


def plot_trajectories(frame, out_dir: str | os.PathLike, indices=(0, 1, 2)) -> list[Path]:
    """One PNG per layer: a panel per quantity, mean normalised sigma_i per epoch and group.

    The band is the 95% confidence interval of the mean over the epoch's probed steps.
    Returns the written paths (``out_dir/<layer>.png``).
    """
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    from harness.plotting import new_figure
    from harness.runs import atomic_path

    frame = normalise(frame)
    out_dir = Path(out_dir)
    paths = []
    groups = sorted(frame["group"].astype(str).unique())
    colours = matplotlib.colormaps["tab10"]
    styles = ["-", "--", ":", "-."]
    for layer, sub in frame.groupby("layer", sort=True):
        quantities = [q for q in ("grad", "act", "adj") if q in set(sub["quantity"])]
        fig, axes = new_figure((4.2 * len(quantities), 3.4), 1, len(quantities), squeeze=False)
        for ax, quantity in zip(axes[0], quantities, strict=True):
            q_rows = sub[sub["quantity"] == quantity]
            for g_index, group in enumerate(groups):
                for s_index, index in enumerate(indices):
                    rows = q_rows[(q_rows["group"] == group) & (q_rows["index"] == index)]
                    if rows.empty:
                        continue
                    epochs, means, halves = [], [], []
                    for epoch, e_rows in rows.groupby("epoch"):
                        mean, half = _band(e_rows["normalised"].to_numpy(float))
                        epochs.append(epoch)
                        means.append(mean)
                        halves.append(half)
                    means, halves = np.array(means), np.array(halves)
                    colour = colours(g_index % 10)
                    ax.plot(epochs, means, styles[s_index % 4], color=colour, marker="o", ms=3,
                            label=f"{group} σ{index + 1}")  # fmt: skip
                    ax.fill_between(epochs, means - halves, means + halves, color=colour,
                                    alpha=0.2, linewidth=0)  # fmt: skip
            ax.set_title(QUANTITY_TITLES.get(quantity, quantity), fontsize=9)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_yscale("log")
            ax.tick_params(labelsize=7)
        axes[0][0].legend(fontsize=6, ncol=len(groups))
        fig.suptitle(f"{layer}: mean per epoch, 95% CI over steps", fontsize=10)
        fig.tight_layout()
        path = out_dir / f"{layer.replace('/', '_')}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        paths.append(path)
    return paths
