"""Synthetic labelled cohorts: a SynthSeg-style generative model with a known age effect.

Per subject ``i`` (random stream ``numpy.random.default_rng([seed, i])``, so a subject does not
depend on how many others are generated):

1. Covariates: ``age ~ U(age_min, age_max)``; group alternates ``control`` / ``atrophy`` (even /
   odd index, so half are each); ``sex`` uniform over F/M (no effect on the image).
2. Geometry: output voxel ``v`` -> world ``w = A_out v`` (LIA, ``grid``^3 voxels of ``voxel_size``
   mm, centred on the atlas) -> atlas point ``R w + t + u(v)``: ``R`` a random rotation
   (each angle ``U(-rotation_deg, rotation_deg)``) times per-axis scaling ``U(1 - s, 1 + s)``,
   ``t ~ U(-3, 3)`` mm, ``u`` a smooth displacement: i.i.d. ``N(0, deformation_mm^2)`` on a 4^3
   control grid, cubic-spline upsampled.
3. Labels: atlas labels at those points (nearest neighbour); atlas signed-distance maps
   (trilinear) drive the age model, with ``a = age - 20`` years and ``g = 1`` for ``atrophy``:

   * cortical thinning: a cortex voxel whose depth below the tissue/CSF surface is less than
     ``thin = cortex_mm_per_year * a + g * atrophy_cortex_mm`` becomes CSF (24);
   * hippocampal shrinkage: a hippocampus voxel less than
     ``shrink = hippocampus_mm_per_year * a + g * atrophy_hippocampus_mm`` deep becomes
     inferior lateral ventricle (5/44);
   * ventricular enlargement: white matter, caudate, thalamus or ventral DC within
     ``grow = ventricle_mm_per_year * a + g * atrophy_ventricle_mm`` of a lateral ventricle
     becomes ventricle (4 left, 43 right).
4. Intensities: label ``l`` draws ``mean_l * (1 + N(0, 0.05^2)) + N(0, 3^2)`` (base means in
   :data:`BASE_INTENSITY`) and ``std_l ~ U(2, 6)``; voxel value ``N(mean_l, std_l^2)``; Gaussian
   blur of 0.5 voxel (partial volume); multiplicative bias ``exp(b)`` with ``b`` i.i.d.
   ``N(0, bias_std^2)`` on a 3^3 grid, cubic-spline upsampled; additive noise
   ``N(0, sigma^2)``, ``sigma ~ U(1, 4)``; negative values clipped; FastSurfer uint8 rescale.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from harness.data.atlas import Atlas
from harness.data.conform import conformed_affine, robust_rescale
from harness.errors import InputError, check_positive

#: mean T1 intensity per tissue, on FreeSurfer's normalised scale (white matter = 110).
BASE_INTENSITY: dict[str, float] = {
    "wm": 110.0, "cortex": 75.0, "csf": 30.0, "thalamus": 95.0, "caudate": 80.0,
    "putamen": 85.0, "pallidum": 100.0, "hippocampus": 72.0, "amygdala": 74.0,
    "accumbens": 80.0, "ventraldc": 95.0, "brainstem": 100.0, "cerebellum_cortex": 70.0,
    "cerebellum_wm": 100.0,
}  # fmt: skip
_TISSUE_OF = {
    2: "wm", 41: "wm", 7: "cerebellum_wm", 46: "cerebellum_wm", 8: "cerebellum_cortex",
    47: "cerebellum_cortex", 10: "thalamus", 49: "thalamus", 11: "caudate", 50: "caudate",
    12: "putamen", 51: "putamen", 13: "pallidum", 52: "pallidum", 17: "hippocampus",
    53: "hippocampus", 18: "amygdala", 54: "amygdala", 26: "accumbens", 58: "accumbens",
    28: "ventraldc", 60: "ventraldc", 16: "brainstem",
    4: "csf", 43: "csf", 5: "csf", 44: "csf", 14: "csf", 15: "csf", 24: "csf",
}  # fmt: skip
_VENTRICLE_GROWS_INTO = (2, 41, 10, 49, 11, 50, 28, 60)


@dataclass(frozen=True)
class GenerativeModel:
    """Parameters of the synthetic cohort (documented in the module docstring)."""

    age_min: float = 20.0
    age_max: float = 85.0
    cortex_mm_per_year: float = 0.015
    hippocampus_mm_per_year: float = 0.006
    ventricle_mm_per_year: float = 0.040
    atrophy_cortex_mm: float = 0.3
    atrophy_hippocampus_mm: float = 0.5
    atrophy_ventricle_mm: float = 1.0
    rotation_deg: float = 6.0
    scaling: float = 0.05
    deformation_mm: float = 2.0
    bias_std: float = 0.15

    def check(self) -> None:
        if not 0 < self.age_min < self.age_max:
            raise InputError(
                f"ages must satisfy 0 < age_min < age_max, got {self.age_min}, {self.age_max}"
            )


def default_voxel_size(grid: int) -> float:
    """Voxel size (mm) giving a 192 mm field of view, never below 1 mm (256 -> 1 mm)."""
    return max(1.0, 192.0 / grid)


def _smooth_field(rng: np.random.Generator, shape, control: int, std: float, channels: int):
    from scipy import ndimage

    coarse = rng.normal(0.0, std, size=(channels, control, control, control))
    zoom = [s / control for s in shape]
    return np.stack([ndimage.zoom(c, zoom, order=3, mode="nearest") for c in coarse])


def _rotation(angles_deg: np.ndarray) -> np.ndarray:
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass
class SubjectDraw:
    """Everything random about one subject, drawn before any image work (replayable)."""

    age: float
    group: str
    sex: str
    matrix: np.ndarray
    translation: np.ndarray
    intensity_means: dict
    intensity_stds: dict
    noise_std: float
    rng_state: dict


def draw_subject(rng: np.random.Generator, index: int, model: GenerativeModel) -> SubjectDraw:
    """Draw a subject's covariates, pose and intensity parameters."""
    age = float(rng.uniform(model.age_min, model.age_max))
    sex = str(rng.choice(["F", "M"]))
    angles = rng.uniform(-model.rotation_deg, model.rotation_deg, size=3)
    scales = rng.uniform(1 - model.scaling, 1 + model.scaling, size=3)
    translation = rng.uniform(-3.0, 3.0, size=3)
    tissues = sorted(BASE_INTENSITY)
    means = {t: BASE_INTENSITY[t] * (1 + rng.normal(0, 0.05)) + rng.normal(0, 3.0) for t in tissues}
    stds = {t: float(rng.uniform(2.0, 6.0)) for t in tissues}
    return SubjectDraw(
        age=age,
        group="atrophy" if index % 2 else "control",
        sex=sex,
        matrix=_rotation(angles) @ np.diag(scales),
        translation=translation,
        intensity_means=means,
        intensity_stds=stds,
        noise_std=float(rng.uniform(1.0, 4.0)),
        rng_state=rng.bit_generator.state,
    )


def atrophy_amounts(age: float, group: str, model: GenerativeModel) -> dict[str, float]:
    """Cortical thinning, hippocampal shrinkage and ventricular growth (mm) at ``age``."""
    years = max(age - 20.0, 0.0)
    g = 1.0 if group == "atrophy" else 0.0
    return {
        "cortex_mm": model.cortex_mm_per_year * years + g * model.atrophy_cortex_mm,
        "hippocampus_mm": model.hippocampus_mm_per_year * years + g * model.atrophy_hippocampus_mm,
        "ventricle_mm": model.ventricle_mm_per_year * years + g * model.atrophy_ventricle_mm,
    }


def apply_atrophy(labels, sd_tissue, sd_hippocampus, sd_ventricles, left, amounts) -> np.ndarray:
    """Pure label edit of the age model (arrays of equal shape; ``left`` True for x < 0)."""
    out = labels.copy()
    grow = np.isin(out, _VENTRICLE_GROWS_INTO) & (sd_ventricles > -amounts["ventricle_mm"])
    out[grow] = np.where(left[grow], 4, 43)
    shrink = np.isin(out, (17, 53)) & (sd_hippocampus < amounts["hippocampus_mm"])
    out[shrink] = np.where(out[shrink] == 17, 5, 44)
    thin = (out >= 1000) & (sd_tissue < amounts["cortex_mm"])
    out[thin] = 24
    return out


def _sample(atlas: Atlas, maps: list[np.ndarray], points: np.ndarray):
    """Atlas labels (nearest) and signed distances (trilinear) at MNI points (3, N)."""
    from scipy import ndimage

    inverse = np.linalg.inv(atlas.affine)
    coords = inverse[:3, :3] @ points + inverse[:3, 3:4]
    labels = ndimage.map_coordinates(atlas.labels, coords, order=0, mode="constant", cval=0)
    sampled = [ndimage.map_coordinates(m, coords, order=1, mode="nearest") for m in maps]
    return labels, sampled


def synthesize_subject(
    atlas: Atlas,
    draw: SubjectDraw,
    *,
    grid: int = 96,
    voxel_size: float | None = None,
    model: GenerativeModel | None = None,
    age: float | None = None,
    group: str | None = None,
):
    """Generate one subject's T1 (uint8) and label map (int16) on a conformed LIA grid.

    ``age`` / ``group`` override the drawn ones with every other random draw unchanged, which
    isolates the age model (used by the tests).

    Returns
    -------
    image : ndarray (grid, grid, grid) uint8
    labels : ndarray (grid, grid, grid) int16
    affine : ndarray (4, 4)
    """
    from scipy import ndimage

    model = model or GenerativeModel()
    voxel_size = voxel_size or default_voxel_size(grid)
    age = draw.age if age is None else age
    group = draw.group if group is None else group
    rng = np.random.default_rng()
    rng.bit_generator.state = draw.rng_state
    shape = (grid,) * 3
    affine = conformed_affine(atlas.centre(), grid, voxel_size, "LIA")
    displacement = _smooth_field(rng, shape, 4, model.deformation_mm, 3)
    log_bias = _smooth_field(rng, shape, 3, model.bias_std, 1)[0]

    atlas_maps = [
        m.astype(np.float32) for m in (atlas.sd_tissue, atlas.sd_hippocampus, atlas.sd_ventricles)
    ]
    labels = np.empty(shape, dtype=np.int16)
    maps = np.empty((3, *shape), dtype=np.float32)
    left = np.empty(shape, dtype=bool)
    slab = max(1, 2**21 // (grid * grid))  # about 2M points per slab bounds memory at 256^3
    jj, kk = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    for start in range(0, grid, slab):
        rows = np.arange(start, min(start + slab, grid))
        ii = np.repeat(rows, jj.size)
        voxels = np.stack([ii, np.tile(jj.ravel(), rows.size), np.tile(kk.ravel(), rows.size)])
        world = affine[:3, :3] @ voxels + affine[:3, 3:4]
        offsets = displacement[:, rows].reshape(3, -1)
        points = draw.matrix @ world + draw.translation[:, None] + offsets
        slab_labels, slab_maps = _sample(atlas, atlas_maps, points)
        labels[rows] = slab_labels.reshape(rows.size, grid, grid)
        maps[:, rows] = np.stack(slab_maps).reshape(3, rows.size, grid, grid)
        left[rows] = (points[0] < 0).reshape(rows.size, grid, grid)
    labels = apply_atrophy(labels, *maps, left, atrophy_amounts(age, group, model)).astype(np.int16)

    mean, std = _intensity_tables(draw)
    image = mean[labels] + std[labels] * rng.standard_normal(shape, dtype=np.float32)
    image = ndimage.gaussian_filter(image, 0.5) * np.exp(log_bias)
    image += rng.normal(0.0, draw.noise_std, size=shape).astype(np.float32)
    image = np.rint(robust_rescale(np.clip(image, 0, None))).astype(np.uint8)
    return image, labels, affine


def _intensity_tables(draw: SubjectDraw):
    mean = np.zeros(3000, dtype=np.float32)
    std = np.zeros(3000, dtype=np.float32)
    for label in range(1, 3000):
        tissue = "cortex" if label >= 1000 else _TISSUE_OF.get(label)
        if tissue:
            mean[label], std[label] = draw.intensity_means[tissue], draw.intensity_stds[tissue]
    return mean, std


def label_table(atlas: Atlas):
    """labels.tsv rows: every atlas label plus those the age model creates (5, 44)."""
    import pandas as pd

    from harness.data.labels import label_kind, label_name

    ids = sorted(set(np.unique(atlas.labels).tolist()) | {4, 5, 24, 43, 44})
    return pd.DataFrame(
        {"label": ids, "name": [label_name(i) for i in ids], "kind": [label_kind(i) for i in ids]}
    )


def generate_cohort(
    n_subjects: int,
    out_dir: str | os.PathLike,
    seed: int = 0,
    *,
    grid: int = 96,
    voxel_size: float | None = None,
    model: GenerativeModel | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
):
    """Write a synthetic cohort (layout of :mod:`harness.data.cohort`) and return it loaded.

    Parameters
    ----------
    n_subjects : int
        Number of subjects (``sub-0001`` ..).
    out_dir : path-like
        Cohort directory (created; holds ``manifest.json``).
    seed : int
        Base seed; subject ``i`` uses ``default_rng([seed, i])``. Same seed => identical files.
    grid : int
        Output grid edge (voxels); 256 gives FastSurfer's 1 mm conformed space.
    voxel_size : float, optional
        Voxel edge in mm; default :func:`default_voxel_size` (192 mm field of view, >= 1 mm).
    model : GenerativeModel, optional
    cache_dir : path-like, optional
        Where the atlas is cached (default ``$HARNESS_CACHE`` or ``~/.cache/harness``).
    progress : bool
        Show a tqdm bar across subjects.
    """
    from tqdm import tqdm

    from harness.data.atlas import load_atlas
    from harness.data.cohort import dseg_path, load_cohort, t1_path
    from harness.data.io import save_volume
    from harness.runs import RunDir, RunKind
    from harness.runs.catalogue import LABELS, PARTICIPANTS

    check_positive("n_subjects", n_subjects)
    check_positive("grid", grid)
    if grid < 16:
        raise InputError(f"grid must be at least 16 voxels, got {grid}")
    model = model or GenerativeModel()
    model.check()
    voxel_size = float(voxel_size or default_voxel_size(grid))
    check_positive("voxel_size", voxel_size)
    config = {"n_subjects": n_subjects, "seed": seed, "grid": grid, "voxel_size": voxel_size,
              "orientation": "LIA", "model": asdict(model)}  # fmt: skip
    run = RunDir(out_dir, kind=RunKind.COHORT)
    run.start("data synth", config)
    atlas = load_atlas(cache_dir)
    rows, records = [], {}
    for index in tqdm(range(1, n_subjects + 1), desc="synth", unit="subject", disable=not progress):
        draw = draw_subject(np.random.default_rng([seed, index]), index, model)
        image, labels, affine = synthesize_subject(
            atlas, draw, grid=grid, voxel_size=voxel_size, model=model
        )
        pid = f"sub-{index:04d}"
        save_volume(t1_path(run.path, pid), image, affine)
        save_volume(dseg_path(run.path, pid), labels, affine)
        rows.append(
            {"participant_id": pid, "age": round(draw.age, 2), "sex": draw.sex, "group": draw.group}
        )
        records[pid] = {
            "age": draw.age,
            "group": draw.group,
            **atrophy_amounts(draw.age, draw.group, model),
        }
    import pandas as pd

    run.write_table(PARTICIPANTS, pd.DataFrame(rows))
    run.write_table(LABELS, label_table(atlas))
    run.finish(subjects=records)
    return load_cohort(run.path)
