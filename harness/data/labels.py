"""FreeSurfer label ids, names, kinds and the FastSurfer look-up tables (LUTs).

Label ids follow FreeSurfer's ``FreeSurferColorLUT.txt``: ``aseg`` ids below 1000 and ``aparc``
(Desikan-Killiany-Tourville, DKT) cortical ids ``1000 + k`` (left) and ``2000 + k`` (right).

FastSurfer (Henschel et al. 2020) trains its axial and coronal networks on 79 classes and its sagittal
network on 51: a sagittal slice cannot tell left from right, so the sagittal LUT merges the two
hemispheres. In the 79-class space the right-hemisphere cortical parcels that never touch the midline
are also merged into their left twin (FastSurfer splits them back by hemisphere after view
aggregation); only the 14 medial right parcels keep their own class.
"""

from __future__ import annotations

import numpy as np

from harness.errors import InputError

#: aseg ids -> names (the subset FastSurfer segments, plus the cortex ribbon ids 3/42).
ASEG_NAMES: dict[int, str] = {
    0: "Unknown",
    2: "Left-Cerebral-White-Matter",
    3: "Left-Cerebral-Cortex",
    4: "Left-Lateral-Ventricle",
    5: "Left-Inf-Lat-Vent",
    7: "Left-Cerebellum-White-Matter",
    8: "Left-Cerebellum-Cortex",
    10: "Left-Thalamus",
    11: "Left-Caudate",
    12: "Left-Putamen",
    13: "Left-Pallidum",
    14: "3rd-Ventricle",
    15: "4th-Ventricle",
    16: "Brain-Stem",
    17: "Left-Hippocampus",
    18: "Left-Amygdala",
    24: "CSF",
    26: "Left-Accumbens-area",
    28: "Left-VentralDC",
    31: "Left-choroid-plexus",
    41: "Right-Cerebral-White-Matter",
    42: "Right-Cerebral-Cortex",
    43: "Right-Lateral-Ventricle",
    44: "Right-Inf-Lat-Vent",
    46: "Right-Cerebellum-White-Matter",
    47: "Right-Cerebellum-Cortex",
    49: "Right-Thalamus",
    50: "Right-Caudate",
    51: "Right-Putamen",
    52: "Right-Pallidum",
    53: "Right-Hippocampus",
    54: "Right-Amygdala",
    58: "Right-Accumbens-area",
    60: "Right-VentralDC",
    63: "Right-choroid-plexus",
    77: "WM-hypointensities",
}

#: DKT cortical parcel index (id - 1000 or id - 2000) -> parcel name.
DKT_PARCELS: dict[int, str] = {
    2: "caudalanteriorcingulate",
    3: "caudalmiddlefrontal",
    5: "cuneus",
    6: "entorhinal",
    7: "fusiform",
    8: "inferiorparietal",
    9: "inferiortemporal",
    10: "isthmuscingulate",
    11: "lateraloccipital",
    12: "lateralorbitofrontal",
    13: "lingual",
    14: "medialorbitofrontal",
    15: "middletemporal",
    16: "parahippocampal",
    17: "paracentral",
    18: "parsopercularis",
    19: "parsorbitalis",
    20: "parstriangularis",
    21: "pericalcarine",
    22: "postcentral",
    23: "posteriorcingulate",
    24: "precentral",
    25: "precuneus",
    26: "rostralanteriorcingulate",
    27: "rostralmiddlefrontal",
    28: "superiorfrontal",
    29: "superiorparietal",
    30: "superiortemporal",
    31: "supramarginal",
    34: "transversetemporal",
    35: "insula",
}

#: left aseg id -> right aseg id (FastSurfer's sagittal merge maps left onto right).
LEFT_TO_RIGHT_ASEG: dict[int, int] = {
    2: 41, 3: 42, 4: 43, 5: 44, 7: 46, 8: 47, 10: 49, 11: 50,
    12: 51, 13: 52, 17: 53, 18: 54, 26: 58, 28: 60, 31: 63,
}  # fmt: skip

_ASEG_SEGMENTED = (0, 2, 4, 5, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 24, 26, 28, 31,
                   41, 43, 44, 46, 47, 49, 50, 51, 52, 53, 54, 58, 60, 63, 77)  # fmt: skip
#: right cortical parcels (medial wall) that keep their own class in the 79-class space.
MEDIAL_RIGHT_PARCELS = (2, 5, 10, 12, 13, 14, 16, 17, 21, 22, 23, 24, 25, 28)

#: FastSurfer's 79-class LUT for the axial and coronal views (class index -> FreeSurfer id).
LUT_FULL: tuple[int, ...] = (
    _ASEG_SEGMENTED
    + tuple(1000 + k for k in DKT_PARCELS)
    + tuple(2000 + k for k in MEDIAL_RIGHT_PARCELS)
)
#: FastSurfer's 51-class LUT for the sagittal view (hemispheres merged).
LUT_SAGITTAL: tuple[int, ...] = (
    0,
    14,
    15,
    16,
    24,
    41,
    43,
    44,
    46,
    47,
    49,
    50,
    51,
    52,
    53,
    54,
    58,
    60,
    63,
    77,
) + tuple(1000 + k for k in DKT_PARCELS)


def label_name(label: int) -> str:
    """FreeSurfer name of a label id (``ctx-lh-<parcel>`` / ``ctx-rh-<parcel>`` for cortex)."""
    label = int(label)
    if label in ASEG_NAMES:
        return ASEG_NAMES[label]
    hemi, parcel = divmod(label, 1000)
    if hemi in (1, 2) and parcel in DKT_PARCELS:
        return f"ctx-{'lh' if hemi == 1 else 'rh'}-{DKT_PARCELS[parcel]}"
    raise InputError(f"label must be a known FreeSurfer id, got {label}")


def label_kind(label: int) -> str:
    """Tissue kind of a label: ``cortical``, ``subcortical``, ``wm``, ``csf`` or ``background``."""
    label = int(label)
    if label == 0:
        return "background"
    if 1000 <= label < 3000 or label in (3, 42):
        return "cortical"
    if label in (2, 41, 7, 46, 77):
        return "wm"
    if label in (4, 5, 14, 15, 24, 31, 43, 44, 63):
        return "csf"
    return "subcortical"


def lut_for_view(view: str) -> np.ndarray:
    """FastSurfer LUT (class index -> FreeSurfer id) for ``axial``, ``coronal`` or ``sagittal``."""
    if view == "sagittal":
        return np.asarray(LUT_SAGITTAL, dtype=np.int64)
    if view in ("axial", "coronal"):
        return np.asarray(LUT_FULL, dtype=np.int64)
    raise InputError(f"view must be one of ['axial', 'coronal', 'sagittal'], got {view!r}")


def merge_lateral_cortex(labels: np.ndarray) -> np.ndarray:
    """Map right cortical parcels off the medial wall onto their left id (79-class convention)."""
    out = np.array(labels, dtype=np.int64, copy=True)
    right = (out >= 2000) & (out < 3000) & ~np.isin(out - 2000, MEDIAL_RIGHT_PARCELS)
    out[right] -= 1000
    return out


def merge_hemispheres(labels: np.ndarray) -> np.ndarray:
    """FastSurfer's sagittal merge: left aseg ids -> right ids, right cortex ids -> left ids."""
    out = np.array(labels, dtype=np.int64, copy=True)
    lut = np.arange(max(int(out.max(initial=0)), 3000) + 1)
    for left, right in LEFT_TO_RIGHT_ASEG.items():
        lut[left] = right
    lut[2000:3000] -= 1000
    return lut[out]


def labels_to_classes(labels: np.ndarray, view: str, *, lut=None) -> np.ndarray:
    """Map FreeSurfer ids to contiguous class indices ``0..C-1`` for a view.

    Parameters
    ----------
    labels : ndarray of int
        FreeSurfer label ids (any shape).
    view : {"axial", "coronal", "sagittal"}
        The sagittal view merges hemispheres first; the others merge lateral right cortex.
    lut : array-like of int, optional
        Custom LUT (class index -> id) used after the view's merge; default FastSurfer's LUT.

    Returns
    -------
    ndarray of int64
        Class indices. Ids absent from the LUT raise :class:`InputError`.
    """
    lut = lut_for_view(view) if lut is None else np.asarray(lut, dtype=np.int64)
    merged = merge_hemispheres(labels) if view == "sagittal" else merge_lateral_cortex(labels)
    inverse = np.full(max(int(lut.max()), int(merged.max(initial=0))) + 1, -1, dtype=np.int64)
    inverse[lut] = np.arange(len(lut))
    classes = inverse[merged]
    if (classes < 0).any():
        missing = sorted(set(np.unique(merged[classes < 0]).tolist()))
        raise InputError(f"labels must all be in the {view} LUT, got ids not in it: {missing[:10]}")
    return classes


def classes_to_labels(classes: np.ndarray, view: str, *, lut=None) -> np.ndarray:
    """Inverse of :func:`labels_to_classes` (merged ids stay merged)."""
    lut = lut_for_view(view) if lut is None else np.asarray(lut, dtype=np.int64)
    classes = np.asarray(classes)
    if classes.size and (classes.min() < 0 or classes.max() >= len(lut)):
        raise InputError(
            f"classes must lie in [0, {len(lut) - 1}], got {classes.min()}..{classes.max()}"
        )
    return lut[classes]


def split_cortex_by_hemisphere(labels: np.ndarray) -> np.ndarray:
    """Undo the lateral-cortex merge: a left cortical id whose nearest cerebral WM is right -> 2xxx.

    FastSurfer splits merged cortical parcels after view aggregation using the hemisphere of the
    surrounding white matter; here the nearest voxel labelled 2 or 41 (Euclidean) decides. Only
    the merged (lateral) parcels are split: the 14 medial parcels of
    :data:`MEDIAL_RIGHT_PARCELS` have their own right-hemisphere class, so their left id is
    already a left-hemisphere prediction and stays as it is. Hence
    ``split(merge_lateral_cortex(truth)) == truth`` wherever every cortical voxel's nearest
    cerebral white matter is in its own hemisphere.
    """
    from scipy import ndimage

    out = np.array(labels, dtype=np.int64, copy=True)
    wm = np.isin(out, (2, 41))
    left_ctx = (out >= 1000) & (out < 2000) & ~np.isin(out - 1000, MEDIAL_RIGHT_PARCELS)
    if not wm.any() or not left_ctx.any():
        return out
    _, nearest = ndimage.distance_transform_edt(~wm, return_indices=True)
    nearest_wm = out[tuple(nearest)]
    out[left_ctx & (nearest_wm == 41)] += 1000
    return out


def sagittal_to_full_index(full_lut=None, sagittal_lut=None) -> np.ndarray:
    """For each full-LUT class, the sagittal class it was merged into (length 79 by default).

    Used to expand sagittal probabilities ``(N, 51, H, W)[:, index]`` to the 79-class space before
    view aggregation (FastSurfer ``map_prediction_sagittal2full``), derived here from the LUTs.
    """
    full = np.asarray(LUT_FULL if full_lut is None else full_lut, dtype=np.int64)
    sagittal = lut_for_view("sagittal") if sagittal_lut is None else np.asarray(sagittal_lut)
    return labels_to_classes(full, "sagittal", lut=sagittal)


#: FreeSurfer ids that FastSurfer v1 folds into a segmented class before training
#: (``map_aparc_aseg2label``): hypointensities, vessels, 5th ventricle, optic chiasm,
#: undetermined, and the cortex ribbon left over outside the parcels.
FOLDED_IDS: dict[int, int] = {
    78: 77, 79: 77, 80: 77, 81: 77, 82: 77,  # (non-)WM hypointensities -> WM-hypointensities
    30: 2, 62: 41,  # vessels -> cerebral white matter
    72: 24,  # 5th ventricle -> CSF
    85: 0,  # optic chiasm -> background
    29: 0, 61: 0,  # undetermined -> background
    3: 0, 42: 0,  # cortex ribbon outside every parcel -> background
}  # fmt: skip
#: corpus callosum segments (FreeSurfer's aseg), folded into the nearest cerebral white matter
CORPUS_CALLOSUM = (251, 252, 253, 254, 255)


def _nearest_of(labels: np.ndarray, target: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Labels of the nearest ``sources`` voxel for every ``target`` voxel (Euclidean)."""
    from scipy import ndimage

    _, nearest = ndimage.distance_transform_edt(~sources, return_indices=True)
    return labels[tuple(index[target] for index in nearest)]


def clean_freesurfer_labels(labels: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Map a FreeSurfer ``aparc.DKTatlas+aseg`` (or ``aparc+aseg``) label map onto the ids
    FastSurfer segments (the 79-class space before the lateral-cortex merge).

    Rules, in order (FastSurfer v1's label preparation): the ids of :data:`FOLDED_IDS` are
    folded into their class; corpus callosum segments (251-255) become the nearest cerebral
    white matter (2 or 41); cortical parcels without a FastSurfer class (``ctx-*-unknown``
    1000/2000 and the Desikan-only parcels such as bankssts, frontal and temporal pole) take the
    nearest parcel of their own hemisphere. Any other id outside the segmented set raises.

    Returns
    -------
    cleaned : ndarray of int32
    remapped : dict
        Voxels changed per original id.

    Raises
    ------
    InputError
        Ids that no rule maps (named, at most ten).
    """
    out = np.array(labels, dtype=np.int64, copy=True)
    remapped: dict[int, int] = {}
    ids, counts = np.unique(out, return_counts=True)
    for label, count in zip(ids.tolist(), counts.tolist(), strict=True):
        if label in FOLDED_IDS:
            remapped[label] = count
    table = np.arange(max(int(out.max(initial=0)), 3000) + 1)
    for source, target in FOLDED_IDS.items():
        table[source] = target
    out = table[out]
    callosum = np.isin(out, CORPUS_CALLOSUM)
    if callosum.any():
        remapped.update({k: int((out == k).sum()) for k in CORPUS_CALLOSUM if (out == k).any()})
        wm = np.isin(out, (2, 41))
        if not wm.any():
            raise InputError(
                "labels must contain cerebral white matter (2/41) to place the corpus "
                "callosum (251-255), got none"
            )
        out[callosum] = _nearest_of(out, callosum, wm)
    parcels = set(DKT_PARCELS)
    for hemi in (1000, 2000):
        in_hemi = (out >= hemi) & (out < hemi + 1000)
        orphan = in_hemi & ~np.isin(out - hemi, list(parcels))
        if not orphan.any():
            continue
        remapped.update({int(k): int((out == k).sum()) for k in np.unique(out[orphan])})
        known = in_hemi & ~orphan
        if not known.any():
            raise InputError(
                f"labels must contain DKT parcels of hemisphere {hemi}, got only "
                f"ids without a FastSurfer class"
            )
        out[orphan] = _nearest_of(out, orphan, known)
    allowed = np.asarray(
        sorted(set(_ASEG_SEGMENTED) | set(LUT_FULL) | {2000 + k for k in DKT_PARCELS})
    )
    unknown = np.setdiff1d(np.unique(out), allowed)
    if unknown.size:
        raise InputError(
            f"labels must be FreeSurfer aparc+aseg ids, got ids no rule maps: "
            f"{unknown[:10].tolist()}"
        )
    return out.astype(np.int32), remapped
