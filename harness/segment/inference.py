"""Whole-volume inference that holds one probability volume, not one per view.

:func:`harness.train.predict.predict_labels` keeps each view's (C, X, Y, Z) probabilities before
summing them: about 5.3 GB per view at 256^3 with 79 classes. Here each batch of slices is
weighted and added into the single aggregated volume as soon as it is computed, in the same view
order and with the same operations (``total += w * P``, then ``/ sum(w)``), so the labels equal
:func:`~harness.train.predict.predict_labels`'s bit for bit under IEEE arithmetic.

Shape letters: C classes, N slices of a batch, H/W in-plane, X/Y/Z volume axes (conformed LIA).
"""

from __future__ import annotations

import numpy as np
import torch

from harness.data.labels import classes_to_labels, split_cortex_by_hemisphere
from harness.data.slices import ThickSliceDataset, stack_slices, view_axis
from harness.models.aggregate import VIEW_WEIGHTS, expand_sagittal

FULL_CLASSES = 79


@torch.no_grad()
def aggregate_probabilities_streaming(
    models: dict, image: np.ndarray, *, batch_size: int = 16, device="cpu"
) -> torch.Tensor:
    """View-weighted class probabilities (79, X, Y, Z), accumulated batch by batch."""
    total = torch.zeros((FULL_CLASSES, *image.shape), dtype=torch.float32, device=device)
    for view in ("axial", "coronal", "sagittal"):
        if view not in models:
            continue
        model = models[view].eval()
        axis = view_axis(view)
        dataset = ThickSliceDataset([image], None, view)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
        for batch in loader:
            probabilities = torch.softmax(model(batch["image"].to(device)), dim=1)
            if view == "sagittal":
                probabilities = expand_sagittal(probabilities.transpose(0, 1)).transpose(0, 1)
            first = int(batch["slice"][0])
            target = total.narrow(axis + 1, first, len(probabilities))
            target.add_(stack_slices(probabilities, view), alpha=VIEW_WEIGHTS[view])
    return total.div_(sum(VIEW_WEIGHTS[v] for v in models))


def predict_labels_streaming(
    models: dict, image: np.ndarray, *, batch_size: int = 16, device="cpu", split_cortex=True
) -> np.ndarray:
    """FreeSurfer label map (X, Y, Z), int32, of one conformed volume (see module docstring)."""
    total = aggregate_probabilities_streaming(models, image, batch_size=batch_size, device=device)
    labels = classes_to_labels(total.argmax(dim=0).cpu().numpy(), "axial")
    del total
    if split_cortex:
        labels = split_cortex_by_hemisphere(labels)
    return labels.astype(np.int32)
