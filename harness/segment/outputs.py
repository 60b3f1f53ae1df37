"""Outputs a neuroimager can use: label maps back in the input's space, volume tables, BIDS
derivatives.

The conform (:func:`harness.data.conform.conform`) resamples the input onto a cubic LIA grid; its
inverse here resamples a conformed label map by nearest neighbour onto the input's own grid
(shape and affine recorded at import, :data:`harness.runs.catalogue.SOURCE_GEOMETRY`). Voxels of
the input outside the conformed field of view get label 0.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.runs import catalogue


class OutputFormat(Enum):
    """File format of the label maps in the input's space."""

    NIFTI = "nifti"
    MGZ = "mgz"

    def seg_artifact(self):
        return catalogue.NATIVE_SEG_MGZ if self is OutputFormat.MGZ else catalogue.NATIVE_SEG_NIFTI

    def entropy_artifact(self):
        return (
            catalogue.NATIVE_ENTROPY_MGZ if self is OutputFormat.MGZ
            else catalogue.NATIVE_ENTROPY_NIFTI
        )  # fmt: skip


def to_native(
    volume: np.ndarray, conformed_affine: np.ndarray, shape, affine: np.ndarray
) -> np.ndarray:
    """Nearest-neighbour resampling of a conformed volume onto the input grid ``(shape,
    affine)`` (the inverse of the conform for label maps; 0 outside the conformed grid)."""
    from harness.data.conform import resample_to

    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise InputError(f"volume must be 3D, got shape {volume.shape}")
    return resample_to(volume, np.asarray(conformed_affine), np.asarray(affine), shape, order=0)


def write_volume(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """Write a volume as NIfTI or MGZ (by the path's suffix), atomically."""
    from harness.data.io import save_volume

    return save_volume(path, data, affine)


def volume_table(samples: dict[str, np.ndarray], labels, voxel_mm3: float, baseline: str):
    """aseg.stats-like regional volumes of one subject.

    Parameters
    ----------
    samples : dict
        Member name -> label map (conformed grid); ``baseline`` is the IEEE one.
    labels : pandas.DataFrame
        ``label``, ``name``, ``kind`` rows (background excluded here).
    voxel_mm3 : float
        Volume of one conformed voxel.

    Returns
    -------
    pandas.DataFrame
        ``label name kind voxels volume_mm3`` from the baseline; with perturbed samples also
        ``n_samples volume_mean volume_sd volume_min volume_max sig_digits sig_bits``
        (significant digits of the samples' volumes against the baseline's, relative error,
        :func:`harness.metrics.significant_digits`).
    """
    import pandas as pd

    from harness.metrics import significant_digits

    table = labels[labels["kind"] != "background"].reset_index(drop=True)
    ids = table["label"].to_numpy()

    def counts(seg):
        found, n = np.unique(seg, return_counts=True)
        lookup = dict(zip(found.tolist(), n.tolist(), strict=True))
        return np.array([lookup.get(int(i), 0) for i in ids], dtype=np.float64)

    base = counts(samples[baseline])
    out = table[["label", "name", "kind"]].assign(voxels=base.astype(np.int64),
                                                   volume_mm3=base * voxel_mm3)  # fmt: skip
    perturbed = [counts(seg) * voxel_mm3 for name, seg in samples.items() if name != baseline]
    if perturbed:
        stack = np.stack(perturbed)
        out = out.assign(n_samples=len(perturbed), volume_mean=stack.mean(axis=0),
                         volume_sd=stack.std(axis=0, ddof=1) if len(perturbed) > 1 else np.nan,
                         volume_min=stack.min(axis=0), volume_max=stack.max(axis=0))  # fmt: skip
        if len(perturbed) > 1:
            reference = base * voxel_mm3
            with np.errstate(divide="ignore", invalid="ignore"):
                digits = significant_digits(stack, reference, basis=10)
                bits = significant_digits(stack, reference, basis=2)
            out = out.assign(sig_digits=digits, sig_bits=bits)
    return pd.DataFrame(out)


def write_bids_derivatives(run_dir: Path, subject: str, files: dict[str, Path], source: dict):
    """Copy the native-space NIfTI label maps into ``derivatives/harness/`` (BIDS derivatives)
    and write its ``dataset_description.json``."""
    import shutil

    from harness import __version__
    from harness.runs import atomic_write_json

    description = catalogue.BIDS_DESCRIPTION.path(run_dir)
    atomic_write_json(description, {
        "Name": "harness segment", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "harness", "Version": __version__,
                         "Description": "FastSurferCNN view aggregation, optionally under "
                                        "stochastic arithmetic"}],
        "SourceDatasets": [{"URL": "file://" + str(Path(source.get("t1", "")).parent)}],
    })  # fmt: skip
    written = []
    for desc, path in files.items():
        if not path.name.endswith(".nii.gz"):
            continue
        target = catalogue.BIDS_DSEG.path(run_dir, subject=subject, desc=desc)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written.append(target)
    return written


def geometry_or_conformed(source: dict | None, conformed_affine, shape) -> tuple:
    """(shape, affine) of the input, or the conformed grid itself when no input was recorded
    (a synthetic cohort is already conformed)."""
    if source is None:
        return tuple(int(n) for n in shape), np.asarray(conformed_affine)
    return tuple(source["shape"]), np.asarray(source["affine"], dtype=np.float64)
