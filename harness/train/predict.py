"""Whole-volume inference: slice-by-slice prediction per view, view aggregation, label maps.

Shape letters: C classes, D slices, X/Y/Z volume axes (conformed LIA).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from harness.data.labels import split_cortex_by_hemisphere
from harness.data.slices import ThickSliceDataset, stack_slices
from harness.models.aggregate import VIEW_WEIGHTS, expand_sagittal
from harness.runs import atomic_path
from harness.runs.catalogue import PREDICTION, PROBABILITIES


@torch.no_grad()
def predict_view(
    model: torch.nn.Module, image: np.ndarray, view: str, *, batch_size: int = 16, device="cpu"
) -> torch.Tensor:
    """Class probabilities (C, X, Y, Z) of one volume by one view's network (eval mode)."""
    model.eval()
    dataset = ThickSliceDataset([image], None, view)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    out = None
    for batch in loader:
        probabilities = torch.softmax(model(batch["image"].to(device)), dim=1)
        if out is None:  # one preallocated (D, C, H, W) buffer instead of a list + cat
            out = torch.empty(
                (len(dataset), *probabilities.shape[1:]), dtype=torch.float32, device=device
            )
        first = int(batch["slice"][0])
        out[first : first + len(probabilities)] = probabilities
    return stack_slices(out, view)


def predict_labels(
    models: dict, image: np.ndarray, *, batch_size: int = 16, device="cpu", split_cortex=True
):
    """FreeSurfer label map (X, Y, Z) and aggregated probabilities (79, X, Y, Z) of one volume.

    Parameters
    ----------
    models : dict
        ``{view: trained network}`` for any non-empty subset of the three views.
    split_cortex : bool
        Restore right-hemisphere ids of merged lateral cortical parcels
        (:func:`harness.data.labels.split_cortex_by_hemisphere`).
    """
    from harness.data.labels import classes_to_labels

    total = None
    for view, model in models.items():
        probabilities = predict_view(model, image, view, batch_size=batch_size, device=device)
        if view == "sagittal":
            probabilities = expand_sagittal(probabilities)
        if total is None:
            total = probabilities.mul_(VIEW_WEIGHTS[view])
        else:
            total.add_(probabilities, alpha=VIEW_WEIGHTS[view])
        del probabilities
    total.div_(sum(VIEW_WEIGHTS[v] for v in models))
    labels = classes_to_labels(total.argmax(dim=0).cpu().numpy(), "axial")
    if split_cortex:
        labels = split_cortex_by_hemisphere(labels)
    return labels.astype(np.int32), total


def write_prediction(
    run_dir: Path, subject: str, labels: np.ndarray, affine, probabilities=None
) -> Path:
    """Write the run's ``predictions/<subject>_seg.nii.gz`` (and ``<subject>_prob.npy`` float16
    when given) atomically."""
    import nibabel as nib

    path = PREDICTION.path(run_dir, subject=subject)
    if probabilities is not None:
        with atomic_path(PROBABILITIES.path(run_dir, subject=subject)) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, probabilities.cpu().numpy().astype(np.float16), allow_pickle=False)
    with atomic_path(path) as tmp:
        nib.save(nib.Nifti1Image(labels.astype(np.int32), np.asarray(affine)), str(tmp))
    return path
