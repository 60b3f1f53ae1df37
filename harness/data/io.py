"""Reading, writing and validating NIfTI / MGZ volumes with nibabel.

Every check raises :class:`harness.errors.InputError` naming the file, the rule and the value, so a
bad subject fails at the boundary instead of deep inside training.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from harness.errors import InputError

SUFFIXES = (".nii", ".nii.gz", ".mgz")


def _check_suffix(path: Path, name: str) -> None:
    if not any(path.name.endswith(s) for s in SUFFIXES):
        raise InputError(f"{name} must end in one of {list(SUFFIXES)}, got {path.name!r}")


def load_volume(path: str | os.PathLike, *, name: str = "path"):
    """Load a 3D volume.

    Parameters
    ----------
    path : path-like
        ``.nii``, ``.nii.gz`` or ``.mgz`` file.
    name : str
        Parameter name used in error messages.

    Returns
    -------
    data : ndarray
        Voxel array with its on-disk dtype (scaling applied by nibabel if the header asks for it).
    affine : ndarray (4, 4)
        Voxel -> world (RAS mm) transform.
    header : nibabel header

    Raises
    ------
    InputError
        Missing/unreadable file, not 3D (a trailing singleton axis is dropped), NaN or Inf voxels.
    """
    import nibabel as nib

    path = Path(path)
    _check_suffix(path, name)
    if not path.is_file():
        raise InputError(f"{name} must be an existing file, got {str(path)!r} (not found)")
    try:
        image = nib.load(str(path))
        data = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(
            f"{name} must be a readable NIfTI/MGZ file, got {str(path)!r}: {exc}"
        ) from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{name} must be a 3D volume, got shape {data.shape} in {str(path)!r}")
    check_finite(data, name=f"{name} ({path.name})")
    return data, np.asarray(image.affine, dtype=np.float64), image.header


def save_volume(path: str | os.PathLike, data: np.ndarray, affine: np.ndarray, header=None) -> Path:
    """Write ``data`` with ``affine`` to ``.nii``/``.nii.gz`` (NIfTI-1) or ``.mgz`` atomically."""
    import nibabel as nib

    from harness.runs import atomic_write_bytes

    path = Path(path)
    _check_suffix(path, "path")
    data = np.asarray(data)
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise InputError(f"affine must have shape (4, 4), got {affine.shape}")
    if path.name.endswith(".mgz"):
        image = nib.MGHImage(data, affine)
    else:
        if not isinstance(header, nib.Nifti1Header):
            header = None
        image = nib.Nifti1Image(data, affine, header=header)
        image.header.set_data_dtype(data.dtype)
        image.set_qform(affine, code=1)
        image.set_sform(affine, code=1)
    # Serialise in memory, gzip for .nii.gz/.mgz (mtime=0: same data => same bytes), rename atomically.
    if path.name.endswith((".nii.gz", ".mgz")):
        import gzip

        payload = gzip.compress(image.to_bytes(), compresslevel=6, mtime=0)
    else:
        payload = image.to_bytes()
    return atomic_write_bytes(path, payload)


def check_finite(data: np.ndarray, *, name: str = "volume") -> None:
    """Raise :class:`InputError` if a floating-point volume has NaN or Inf voxels."""
    if np.issubdtype(data.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise InputError(f"{name} must contain only finite values, got {bad} NaN/Inf voxels")


def check_label_map(labels: np.ndarray, *, name: str = "labels") -> np.ndarray:
    """Validate a label map: integer-valued, non-negative, not empty (all background).

    Returns
    -------
    ndarray of int32
    """
    check_finite(labels, name=name)
    if np.issubdtype(labels.dtype, np.floating):
        if not np.array_equal(labels, np.round(labels)):
            raise InputError(f"{name} must be integer-valued, got non-integer values")
    if labels.size and labels.min() < 0:
        raise InputError(f"{name} must be non-negative label ids, got minimum {labels.min()}")
    if not np.any(labels):
        raise InputError(f"{name} must contain at least one non-background label, got all zeros")
    return labels.astype(np.int32)


def check_pair(
    image_shape, image_affine, label_shape, label_affine, *, atol: float = 1e-3, name: str = ""
) -> None:
    """Raise :class:`InputError` unless an image and its label map share shape and affine."""
    prefix = f"{name}: " if name else ""
    if tuple(image_shape) != tuple(label_shape):
        raise InputError(
            f"{prefix}label map shape must equal image shape, got {tuple(label_shape)} "
            f"vs {tuple(image_shape)}"
        )
    if not np.allclose(image_affine, label_affine, atol=atol):
        diff = float(np.abs(np.asarray(image_affine) - np.asarray(label_affine)).max())
        raise InputError(
            f"{prefix}label map affine must equal image affine (tolerance {atol}), "
            f"got max difference {diff:.4g}"
        )


def load_pair(image_path, label_path):
    """Load an image and its label map and validate them together.

    Returns
    -------
    image : ndarray, labels : ndarray of int32, affine : ndarray (4, 4)
    """
    image, affine, _ = load_volume(image_path, name="image")
    labels, label_affine, _ = load_volume(label_path, name="labels")
    check_pair(image.shape, affine, labels.shape, label_affine, name=Path(image_path).name)
    return image, check_label_map(labels, name=f"labels ({Path(label_path).name})"), affine
