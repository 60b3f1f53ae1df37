"""View aggregation: FastSurfer's weighted sum of the per-view class probabilities.

``P = 0.4 P_axial + 0.4 P_coronal + 0.2 E(P_sagittal)``, where ``E`` expands the 51 sagittal
classes to the 79-class space (a merged class's probability goes to both of its hemispheres,
FastSurfer ``map_prediction_sagittal2full``); the label of a voxel is the FreeSurfer id of
``argmax_c P``. Views that are absent are left out of the sum (the argmax does not depend on
normalisation). Shape letters: C classes, X/Y/Z volume axes.
"""

from __future__ import annotations

import numpy as np
import torch

from harness.data.labels import classes_to_labels, lut_for_view, sagittal_to_full_index
from harness.errors import InputError

#: FastSurfer's view weights.
VIEW_WEIGHTS = {"axial": 0.4, "coronal": 0.4, "sagittal": 0.2}


def expand_sagittal(probabilities):
    """Sagittal probabilities (51, ...) -> 79-class probabilities (79, ...)."""
    index = sagittal_to_full_index()
    if probabilities.shape[0] != len(lut_for_view("sagittal")):
        raise InputError(
            f"sagittal probabilities must have {len(lut_for_view('sagittal'))} classes on axis 0, "
            f"got {probabilities.shape[0]}"
        )
    if isinstance(probabilities, torch.Tensor):
        return probabilities[torch.as_tensor(index, device=probabilities.device)]
    return np.asarray(probabilities)[index]


def aggregate_probabilities(views: dict, weights: dict | None = None):
    """Weighted sum of per-view probabilities (C, X, Y, Z) in the 79-class space."""
    weights = VIEW_WEIGHTS if weights is None else weights
    if not views:
        raise InputError("views must contain at least one of axial, coronal, sagittal, got none")
    unknown = sorted(set(views) - set(VIEW_WEIGHTS))
    if unknown:
        raise InputError(f"views must be among {list(VIEW_WEIGHTS)}, got {unknown}")
    total, shape = None, None
    for view, probabilities in views.items():
        full = expand_sagittal(probabilities) if view == "sagittal" else probabilities
        if full.shape[0] != len(lut_for_view("axial")):
            raise InputError(
                f"{view} probabilities must have {len(lut_for_view(view))} classes on axis 0, "
                f"got {probabilities.shape[0]}"
            )
        if shape is not None and tuple(full.shape) != shape:
            raise InputError(
                f"all views must have the same volume shape, got {tuple(full.shape)} vs {shape}"
            )
        shape = tuple(full.shape)
        term = weights[view] * full
        total = term if total is None else total + term
    return total


def aggregate_views(views: dict, weights: dict | None = None) -> np.ndarray:
    """FreeSurfer label ids from per-view class probabilities.

    Parameters
    ----------
    views : dict
        ``{"axial": P, "coronal": P, "sagittal": P}`` (any non-empty subset); ``P`` are
        probabilities of shape (C, X, Y, Z) in volume orientation, numpy or torch, with C = 79
        (axial, coronal) or 51 (sagittal).
    weights : dict, optional
        View weights; default :data:`VIEW_WEIGHTS` (0.4, 0.4, 0.2).

    Returns
    -------
    ndarray of int64 (X, Y, Z)
        FreeSurfer ids in the 79-class convention (lateral right cortex still merged into left;
        see :func:`harness.data.labels.split_cortex_by_hemisphere`).
    """
    total = aggregate_probabilities(views, weights)
    if isinstance(total, torch.Tensor):
        classes = total.argmax(dim=0).cpu().numpy()
    else:
        classes = np.argmax(total, axis=0)
    return classes_to_labels(classes, "axial")
