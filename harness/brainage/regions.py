"""FreeSurfer structure names: which table columns are brain regions, and what the others are.

Column names follow what FreeSurfer 5.3-7.x and FastSurfer write:

* ``asegstats2table`` (and aseg.stats ``StructName``): ``Left-Lateral-Ventricle``,
  ``Left-Thalamus-Proper`` (before 7.0) / ``Left-Thalamus`` (7.x), ``CC_Anterior``, ... plus
  whole-brain measures (``BrainSegVol``, ``CortexVol``, ...), ``EstimatedTotalIntraCranialVol``
  and ratios (``BrainSegVol-to-eTIV``, ``MaskVol-to-eTIV``);
* ``aparcstats2table``: ``<hemi>_<region>_<measure>`` for the Desikan-Killiany (``aparc``),
  DKT (``aparc.DKTatlas``) and Destrieux (``aparc.a2009s``) parcellations, e.g.
  ``lh_bankssts_volume``, ``rh_G_and_S_frontomargin_thickness``, plus ``lh_MeanThickness_thickness``,
  ``lh_WhiteSurfArea_area``, ``BrainSegVolNotVent`` and ``eTIV``.

:func:`classify_column` sorts a column name into a :class:`ColumnRole`; only
:attr:`ColumnRole.REGION` columns are features unless a user declares others.
"""

from __future__ import annotations

import re
from enum import Enum


class ColumnRole(Enum):
    """What a numeric table column is."""

    REGION = "FreeSurfer region"
    GLOBAL = "whole-brain measure"
    ICV = "intracranial volume"
    RATIO = "ratio"
    OTHER = "not a FreeSurfer region name"


_ASEG_BILATERAL = (
    "Lateral-Ventricle", "Inf-Lat-Vent", "Cerebellum-White-Matter", "Cerebellum-Cortex",
    "Thalamus-Proper", "Thalamus", "Caudate", "Putamen", "Pallidum", "Hippocampus", "Amygdala",
    "Accumbens-area", "VentralDC", "vessel", "choroid-plexus", "Cerebral-White-Matter",
    "Cerebral-Cortex", "WM-hypointensities", "non-WM-hypointensities",
)  # fmt: skip
_ASEG_MIDLINE = (
    "3rd-Ventricle", "4th-Ventricle", "5th-Ventricle", "Brain-Stem", "CSF", "WM-hypointensities",
    "non-WM-hypointensities", "Optic-Chiasm", "CC_Posterior", "CC_Mid_Posterior", "CC_Central",
    "CC_Mid_Anterior", "CC_Anterior",
)  # fmt: skip
#: aseg structures (aseg.stats StructName / asegstats2table columns), FreeSurfer 5.3-7.x
ASEG_STRUCTURES = frozenset(
    (*_ASEG_MIDLINE, *(f"{side}-{s}" for side in ("Left", "Right") for s in _ASEG_BILATERAL))
)

#: Desikan-Killiany cortical regions (``aparc``; DKT uses a subset), FreeSurfer 5.3-7.x
DK_REGIONS = frozenset(
    (
        "bankssts", "caudalanteriorcingulate", "caudalmiddlefrontal", "cuneus", "entorhinal",
        "fusiform", "inferiorparietal", "inferiortemporal", "isthmuscingulate", "lateraloccipital",
        "lateralorbitofrontal", "lingual", "medialorbitofrontal", "middletemporal",
        "parahippocampal", "paracentral", "parsopercularis", "parsorbitalis", "parstriangularis",
        "pericalcarine", "postcentral", "posteriorcingulate", "precentral", "precuneus",
        "rostralanteriorcingulate", "rostralmiddlefrontal", "superiorfrontal", "superiorparietal",
        "superiortemporal", "supramarginal", "frontalpole", "temporalpole", "transversetemporal",
        "insula",
    )
)  # fmt: skip

#: Destrieux (``aparc.a2009s``) region names all start with one of these
_DESTRIEUX = re.compile(r"^(G|S|G_and_S|Pole|Lat_Fis)[_-][A-Za-z0-9_.-]+$")

#: per-hemisphere surface measures of aparcstats2table (``--meas``)
APARC_MEASURES = (
    "volume", "thickness", "thicknessstd", "area", "meancurv", "gauscurv", "foldind", "curvind",
)  # fmt: skip
_APARC = re.compile(r"^(lh|rh)[_.](?P<region>.+)[_.](?P<measure>" + "|".join(APARC_MEASURES) + ")$")

#: intracranial-volume columns, in the order :func:`icv_column` prefers them
ICV_COLUMNS = ("EstimatedTotalIntraCranialVol", "eTIV", "ICV", "TIV", "eICV")

#: whole-brain measures written by asegstats2table / aparcstats2table (not regions)
GLOBAL_MEASURES = frozenset(
    (
        "BrainSegVol", "BrainSegVolNotVent", "BrainSegVolNotVentSurf", "VentricleChoroidVol",
        "lhCortexVol", "rhCortexVol", "CortexVol", "lhCorticalWhiteMatterVol",
        "rhCorticalWhiteMatterVol", "CorticalWhiteMatterVol", "lhCerebralWhiteMatterVol",
        "rhCerebralWhiteMatterVol", "CerebralWhiteMatterVol", "SubCortGrayVol", "TotalGrayVol",
        "SupraTentorialVol", "SupraTentorialVolNotVent", "SupraTentorialVolNotVentVox", "MaskVol",
        "lhSurfaceHoles", "rhSurfaceHoles", "SurfaceHoles",
    )
)  # fmt: skip
_GLOBAL_APARC = re.compile(r"^(lh|rh)[_.](MeanThickness|WhiteSurfArea)[_.][a-z]+$")
_RATIO = re.compile(r"(ratio|-to-)", re.IGNORECASE)


def _aparc_region(name: str) -> str | None:
    match = _APARC.match(name)
    return match.group("region") if match else None


def classify_column(name: str) -> ColumnRole:
    """Role of a column named ``name`` (see the module docstring for the spellings).

    Examples
    --------
    >>> classify_column("Left-Thalamus").value, classify_column("lh_bankssts_volume").value
    ('FreeSurfer region', 'FreeSurfer region')
    >>> classify_column("BrainSegVol-to-eTIV"), classify_column("age")
    (<ColumnRole.RATIO: 'ratio'>, <ColumnRole.OTHER: 'not a FreeSurfer region name'>)
    """
    name = str(name).strip()
    if _RATIO.search(name):
        return ColumnRole.RATIO
    if name in ICV_COLUMNS:
        return ColumnRole.ICV
    if name in GLOBAL_MEASURES or _GLOBAL_APARC.match(name):
        return ColumnRole.GLOBAL
    if name in ASEG_STRUCTURES:
        return ColumnRole.REGION
    region = _aparc_region(name)
    if region is not None and (region in DK_REGIONS or _DESTRIEUX.match(region)):
        return ColumnRole.REGION
    return ColumnRole.OTHER


def icv_column(columns) -> str | None:
    """The first column of ``columns`` named like an intracranial volume, else None."""
    present = set(map(str, columns))
    return next((name for name in ICV_COLUMNS if name in present), None)
