"""Matplotlib figures of a report, returned as PNG bytes (:mod:`harness.plotting`: no pyplot,
no files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.plotting import new_figure, png_bytes

DPI = 100


def _png(fig) -> bytes:
    return png_bytes(fig, dpi=DPI, metadata={"Software": None})


def _device_colours(devices: list[str]) -> dict[str, str]:
    cycle = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    return {d: cycle[i % len(cycle)] for i, d in enumerate(dict.fromkeys(devices))}


def horizontal_bars(
    labels: list[str], values: list[float], groups: list[str], xlabel: str, log: bool = False
) -> bytes:
    """One bar per row, coloured by group (device), with a legend."""
    from matplotlib.patches import Rectangle

    colours = _device_colours(groups)
    fig, ax = new_figure(figsize=(9, 0.8 + 0.28 * len(labels)))
    y = np.arange(len(labels))
    ax.barh(y, values, color=[colours[g] for g in groups])
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, list(colours), fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.0),
              ncol=3, frameon=False)  # fmt: skip
    fig.tight_layout()
    return _png(fig)


def region_stability(summary: pd.DataFrame, max_regions: int = 40) -> bytes:
    """Mean minimum pairwise Dice per region, one bar colour per factor (least stable first)."""
    pivot = summary.pivot_table(index="region", columns="factor", values="mean_min_dice")
    pivot = pivot.loc[pivot.min(axis=1).sort_values().index[:max_regions]]
    fig, ax = new_figure(figsize=(8, 1 + 0.22 * len(pivot) * max(1, len(pivot.columns) / 2)))
    pivot.plot.barh(ax=ax, width=0.8)
    for bar in ax.patches:  # a bar of width 0 is invisible: say its value instead
        if bar.get_width() == 0:
            ax.text(0.005, bar.get_y() + bar.get_height() / 2, "0", va="center", fontsize=6,
                    color=bar.get_facecolor())  # fmt: skip
    ax.invert_yaxis()
    ax.set_xlabel("mean minimum pairwise Dice (1 = members agree; 0 = no overlap)")
    ax.set_xlim(0, 1)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return _png(fig)


def entropy_montage(path: Path, n_slices: int = 6) -> bytes:
    """Axial slices through the part of a label-entropy map (bits) that is not zero."""
    import nibabel as nib

    data = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(f"{path.name}: expected a 3-D map, got shape {data.shape}")
    nonzero = np.flatnonzero(data.reshape(-1, data.shape[2]).max(axis=0) > 0)
    lo, hi = (nonzero[0], nonzero[-1]) if len(nonzero) else (0, data.shape[2] - 1)
    zs = np.unique(np.linspace(lo, hi, n_slices + 2)[1:-1].round().astype(int))
    vmax = float(data.max()) or 1.0
    fig, axes = new_figure((1.9 * len(zs) + 0.8, 2.4), 1, len(zs), squeeze=False)
    for ax, z in zip(axes[0], zs, strict=True):
        image = ax.imshow(np.rot90(data[:, :, z]), cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(f"z={z}", fontsize=8)
        ax.axis("off")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="entropy (bits)")
    return _png(fig)


def spectra_trajectories(spectra: pd.DataFrame) -> bytes:
    """Largest singular value (index 0) against step, one panel per quantity, a line per layer.

    Values are normalised for group size as the introspection statistics are
    (:func:`harness.introspect.stats.normalise`: grad / N_g, act and adj / sqrt(N_g)), then averaged
    over groups.
    """
    from harness.introspect.stats import normalise

    top = normalise(spectra[spectra["index"] == 0].copy())
    quantities = sorted(top["quantity"].unique())
    fig, axes = new_figure((4 * len(quantities), 3.2), 1, len(quantities), squeeze=False)
    for ax, quantity in zip(axes[0], quantities, strict=True):
        part = top[top["quantity"] == quantity]
        curves = part.groupby(["layer", "step"], as_index=False)["normalised"].mean()
        for layer, curve in curves.groupby("layer"):
            ax.plot(curve["step"], curve["normalised"], marker="o", ms=3, label=layer)
        ax.set_title(f"{quantity}: normalised sigma_1", fontsize=9)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def mae_vs_k(summary: pd.DataFrame) -> bytes:
    """Brain-age MAE against ensemble size (harness.brainage's own figure, drawn in memory)."""
    import tempfile

    from harness.brainage.plots import plot_mae_vs_k
    from harness.runs.catalogue import MAE_FIGURE

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_mae_vs_k(summary, MAE_FIGURE.path(tmp))
        return Path(path).read_bytes()
