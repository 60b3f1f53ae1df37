"""Figures of a brain-age run (PNG, drawn with :mod:`harness.plotting`: no pyplot)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.plotting import new_figure, png_bytes

STYLES = {"ensemble": "-", "gaussian": "--"}


def plot_mae_vs_k(summary: pd.DataFrame, path: str | Path) -> Path:
    """MAE against ensemble size k, one colour per regressor, with 95% CI bands.

    Solid lines: ensemble augmentation; dashed: Gaussian-noise control; the k = 0 point is the
    unaugmented baseline regressor, drawn as the start of both curves.
    """
    import matplotlib

    fig, ax = new_figure(figsize=(7, 4.5))
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (reg, group) in enumerate(summary.groupby("regressor", sort=False)):
        colour = colours[i % len(colours)]
        base = group[group["augmentation"] == "none"]
        if len(base) == len(group):  # no augmentation (one table, or a baseline): a point at k=0
            ax.errorbar(
                base["k"], base["mae_mean"], color=colour, marker="o", ls="none", label=reg,
                yerr=[base["mae_mean"] - base["mae_ci_low"], base["mae_ci_high"] - base["mae_mean"]],
            )  # fmt: skip
            continue
        for aug, style in STYLES.items():
            part = pd.concat([base, group[group["augmentation"] == aug]]).sort_values("k")
            if len(part) <= len(base):
                continue
            label = f"{reg} ({aug})"
            ax.plot(part["k"], part["mae_mean"], style, color=colour, marker="o", ms=3, label=label)
            ax.fill_between(
                part["k"], part["mae_ci_low"], part["mae_ci_high"], color=colour, alpha=0.12
            )
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("ensemble size k (extra training rows per subject)")
    ax.set_ylabel("test MAE (years)")
    ax.set_title("Brain-age MAE vs augmentation size (mean, 95% CI over splits)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_predicted_vs_true(predictions: pd.DataFrame, path: str | Path) -> Path:
    """Predicted against true age per regressor: unaugmented vs the largest ensemble size."""
    regressors = list(dict.fromkeys(predictions["regressor"]))
    fig, axes = new_figure((4 * len(regressors), 4), 1, len(regressors), squeeze=False)
    lo, hi = predictions["age"].min(), predictions["age"].max()
    for ax, reg in zip(axes[0], regressors, strict=True):
        rows = predictions[predictions["regressor"] == reg]
        ensemble = rows[rows["augmentation"] == "ensemble"]
        chosen = [("none", rows[rows["augmentation"] == "none"])]
        if len(ensemble):
            k = ensemble["k"].max()
            chosen.append((f"ensemble k={k}", ensemble[ensemble["k"] == k]))
        for label, part in chosen:
            ax.scatter(part["age"], part["predicted"], s=10, alpha=0.6, label=label)
        ax.plot([lo, hi], [lo, hi], "k:", lw=1)
        ax.set_title(reg)
        ax.set_xlabel("true age (years)")
        ax.set_ylabel("predicted age (years)")
        ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    from harness.runs import atomic_write_bytes

    fig.tight_layout()
    return atomic_write_bytes(path, png_bytes(fig, dpi=110))
