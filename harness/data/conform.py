"""Conforming volumes to FastSurfer's input grid.

FastSurfer (like FreeSurfer's ``mri_convert --conform``) feeds its networks cubic volumes of 256^3
isotropic 1 mm voxels in **LIA** orientation (axis 0 -> Left, axis 1 -> Inferior, axis 2 ->
Anterior) with uint8 intensities. :func:`conform` reproduces this for any grid size ``S`` and voxel
size, so the CPU default can use small grids (64^3, 96^3). ``RAS`` orientation is offered too.

Intensity scaling (FastSurfer ``getscale``/``scalecrop``), on the source voxels before resampling::

    lo = quantile(x, f_low)                    # f_low = 0     -> the minimum
    hi = quantile(x[x > lo], f_high)           # f_high = 0.999 of the voxels above lo
    y  = clip((x - lo) * 255 / (hi - lo), 0, 255)

then trilinear resampling and ``rint`` to uint8. Label maps are resampled by nearest neighbour.
The output voxel ``S/2`` (per axis) sits on the world point of the input's voxel ``shape/2``.
"""

from __future__ import annotations

import numpy as np

from harness.errors import InputError, check_choice, check_positive

ORIENTATIONS = ("LIA", "RAS")
_AXIS_VECTORS = {
    "R": (1, 0, 0), "L": (-1, 0, 0), "A": (0, 1, 0),
    "P": (0, -1, 0), "S": (0, 0, 1), "I": (0, 0, -1),
}  # fmt: skip


def conformed_affine(
    centre: np.ndarray, size: int = 256, voxel_size: float = 1.0, orientation: str = "LIA"
) -> np.ndarray:
    """Affine of an ``size``^3 grid of ``voxel_size`` mm voxels whose voxel ``size/2`` is ``centre``."""
    check_choice("orientation", orientation, ORIENTATIONS)
    check_positive("size", size)
    check_positive("voxel_size", voxel_size)
    rotation = np.array([_AXIS_VECTORS[c] for c in orientation], dtype=np.float64).T * voxel_size
    affine = np.eye(4)
    affine[:3, :3] = rotation
    affine[:3, 3] = np.asarray(centre, dtype=np.float64) - rotation @ np.full(3, size / 2.0)
    return affine


def volume_centre(shape, affine: np.ndarray) -> np.ndarray:
    """World coordinate of voxel ``shape/2`` (FreeSurfer's ``c_ras``)."""
    return (np.asarray(affine) @ np.append(np.asarray(shape[:3], dtype=np.float64) / 2.0, 1.0))[:3]


def robust_rescale(data: np.ndarray, f_low: float = 0.0, f_high: float = 0.999) -> np.ndarray:
    """Map intensities to [0, 255] between robust quantiles (float32; see module docstring)."""
    if not 0.0 <= f_low < f_high <= 1.0:
        raise InputError(f"quantiles must satisfy 0 <= f_low < f_high <= 1, got {f_low}, {f_high}")
    data = np.asarray(data, dtype=np.float32)
    lo = float(np.quantile(data, f_low)) if f_low > 0 else float(data.min())
    above = data[data > lo]
    if above.size == 0:
        raise InputError("image must not be constant, got a single intensity value")
    hi = float(np.quantile(above, f_high))
    if hi <= lo:
        hi = float(above.max())
    return np.clip((data - lo) * (255.0 / (hi - lo)), 0.0, 255.0)


def resample_to(
    data: np.ndarray, affine: np.ndarray, target_affine: np.ndarray, shape, *, order: int
) -> np.ndarray:
    """Resample ``data`` onto the grid ``(target_affine, shape)``; zero outside the source."""
    from scipy import ndimage

    transform = np.linalg.inv(affine) @ target_affine
    return ndimage.affine_transform(
        data,
        transform[:3, :3],
        offset=transform[:3, 3],
        output_shape=tuple(int(s) for s in shape),
        order=order,
        mode="constant",
        cval=0,
        prefilter=False,
    )


def conform(
    data: np.ndarray,
    affine: np.ndarray,
    *,
    size: int = 256,
    voxel_size: float = 1.0,
    orientation: str = "LIA",
    labels: bool = False,
    f_low: float = 0.0,
    f_high: float = 0.999,
):
    """Conform an image (uint8, rescaled) or a label map (nearest neighbour) to ``size``^3.

    Parameters
    ----------
    data : ndarray (3D)
    affine : ndarray (4, 4)
    size : int
        Output grid edge in voxels (FastSurfer: 256).
    voxel_size : float
        Output voxel edge in mm (FastSurfer: 1).
    orientation : {"LIA", "RAS"}
    labels : bool
        True for label maps: nearest neighbour, integer dtype kept, no rescaling.
    f_low, f_high : float
        Quantiles of the intensity rescale (images only).

    Returns
    -------
    out : ndarray (size, size, size)
        uint8 for images, int32 for labels.
    out_affine : ndarray (4, 4)
    """
    data = np.asarray(data)
    if data.ndim != 3:
        raise InputError(f"data must be 3D, got shape {data.shape}")
    target = conformed_affine(volume_centre(data.shape, affine), size, voxel_size, orientation)
    shape = (size, size, size)
    if labels:
        out = resample_to(data.astype(np.int32), affine, target, shape, order=0)
        return out.astype(np.int32), target
    scaled = robust_rescale(data, f_low, f_high)
    out = resample_to(scaled, affine, target, shape, order=1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), target


def is_conformed(
    shape, affine: np.ndarray, *, size: int = 256, voxel_size: float = 1.0, orientation: str = "LIA"
) -> bool:
    """True when a volume already lies on a conformed grid (shape, spacing and axis directions)."""
    if tuple(shape[:3]) != (size, size, size):
        return False
    expected = conformed_affine(np.zeros(3), size, voxel_size, orientation)[:3, :3]
    return bool(np.allclose(np.asarray(affine)[:3, :3], expected, atol=1e-4))
