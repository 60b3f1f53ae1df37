"""Figures drawn without pyplot, so that library calls never switch the user's backend.

Each figure is a :class:`matplotlib.figure.Figure` with its own Agg canvas: it renders PNG in a
notebook or a headless job alike, is never registered with pyplot (nothing to close, nothing
shown), and leaves ``matplotlib.get_backend()`` as the caller set it.
"""

from __future__ import annotations

import io


def new_figure(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, squeeze: bool = True):
    """A figure with an Agg canvas and its axes (``Figure.subplots``): ``(fig, axes)``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


def png_bytes(fig, dpi: int, **savefig_kwargs) -> bytes:
    """The figure rendered as PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, **savefig_kwargs)
    return buf.getvalue()
