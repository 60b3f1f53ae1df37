"""The field-standard reference: the same template registered to the same subjects with
SimpleITK (ITK's registration framework), unperturbed.

Per subject: an affine transform (centred initialiser on the image centres, Mattes mutual
information with :data:`MI_BINS` bins on every voxel, regular-step gradient descent, shrink
factors 2 then 1 with smoothing sigmas 1 and 0, at most :data:`AFFINE_ITERATIONS` iterations),
then the template resampled by it, histogram-matched to the subject and registered by ITK's
fast symmetric-forces demons (:data:`DEMONS_ITERATIONS` iterations, Gaussian smoothing of the
field with standard deviation :data:`DEMONS_SIGMA`), the displacement composed before the affine.
The composite transform is sampled at every subject voxel and the labels are looked up, by
nearest neighbour, in the same 1 mm atlas the torch pipeline reads
(:mod:`harness.classical.pipeline`). Images are given to ITK in voxel coordinates scaled by the
voxel size (origin 0, identity direction), the same frame for subject and template, as in the
torch pipeline. One ITK thread per filter.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import MissingDependencyError
from harness.runs import RunDir, RunKind, catalogue

AFFINE_ITERATIONS = 200
MI_BINS = 32
DEMONS_ITERATIONS = 50
DEMONS_SIGMA = 1.5
HISTOGRAM_LEVELS = 256
MATCH_POINTS = 7


def _sitk():
    try:
        import SimpleITK as sitk
    except ImportError:
        raise MissingDependencyError(
            "the SimpleITK reference needs SimpleITK: pip install 'harness[classical]'"
        ) from None
    return sitk


def settings() -> dict:
    """The reference's settings, as recorded in its manifest."""
    return {"tool": "SimpleITK", "version": _sitk().Version_VersionString(),
            "affine_iterations": AFFINE_ITERATIONS, "affine_metric": f"mattes-mi-{MI_BINS}",
            "affine_shrink": [2, 1], "affine_smoothing_sigmas": [1, 0],
            "deformable": "fast-symmetric-forces-demons", "demons_iterations": DEMONS_ITERATIONS,
            "demons_sigma": DEMONS_SIGMA, "histogram_matching": [HISTOGRAM_LEVELS, MATCH_POINTS],
            "threads": 1}  # fmt: skip


def _image(sitk, array: np.ndarray, voxel: float):
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
    image.SetSpacing((voxel,) * 3)
    return image


def _method(sitk):
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=MI_BINS)
    method.SetMetricSamplingStrategy(method.NONE)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetShrinkFactorsPerLevel([2, 1])
    method.SetSmoothingSigmasPerLevel([1, 0])
    method.SetNumberOfThreads(1)
    return method


def register_sitk(fixed: np.ndarray, moving: np.ndarray, voxel: float) -> np.ndarray:
    """Subject (``fixed``) voxel -> template (``moving``) array index, (D, H, W, 3) float64."""
    sitk = _sitk()
    f, m = _image(sitk, fixed, voxel), _image(sitk, moving, voxel)
    initial = sitk.CenteredTransformInitializer(
        f, m, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    method = _method(sitk)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-4, numberOfIterations=AFFINE_ITERATIONS
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(initial, inPlace=False)
    affine = method.Execute(f, m)
    moved = sitk.Resample(m, f, affine, sitk.sitkLinear, 0.0)
    moved = sitk.HistogramMatching(moved, f, HISTOGRAM_LEVELS, MATCH_POINTS, True)
    demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
    demons.SetNumberOfIterations(DEMONS_ITERATIONS)
    demons.SetStandardDeviations(DEMONS_SIGMA)
    demons.SetNumberOfThreads(1)
    field = demons.Execute(f, moved)
    warp = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    composite = sitk.CompositeTransform([affine, warp])  # the last added is applied first
    full = sitk.TransformToDisplacementField(
        composite, sitk.sitkVectorFloat64, f.GetSize(), f.GetOrigin(), f.GetSpacing(),
        f.GetDirection(),
    )  # fmt: skip
    disp = sitk.GetArrayFromImage(full)[..., ::-1] / voxel  # ITK (x, y, z) = array (k, j, i)
    index = np.stack(np.meshgrid(*(np.arange(n) for n in fixed.shape), indexing="ij"), axis=-1)
    return index + disp


def lookup_atlas(index: np.ndarray, template_affine: np.ndarray, atlas) -> np.ndarray:
    """Atlas labels (nearest neighbour, 0 outside) at template array indices (..., 3)."""
    to_atlas = np.linalg.inv(atlas.affine) @ np.asarray(template_affine, dtype=np.float64)
    points = index @ to_atlas[:3, :3].T + to_atlas[:3, 3]
    voxel = np.rint(points).astype(np.int64)
    inside = np.all((voxel >= 0) & (voxel < np.array(atlas.labels.shape)), axis=-1)
    out = np.zeros(index.shape[:-1], dtype=np.int32)
    v = voxel[inside]
    out[inside] = atlas.labels[v[:, 0], v[:, 1], v[:, 2]]
    return out


def run_reference(cohort, out, *, subjects=None, progress: bool = True):
    """Register the template to every chosen subject with SimpleITK; returns the run path and
    the median over regions of the mean Dice to truth per tissue kind."""
    from tqdm.auto import tqdm

    from harness.classical.run import load_subjects
    from harness.classical.template import build_template, grid_of, to_label_space
    from harness.data.atlas import load_atlas
    from harness.data.cohort import load_cohort
    from harness.data.io import save_volume

    _sitk()
    cohort = Path(cohort)
    loaded = load_cohort(cohort)
    data = load_subjects(loaded, subjects)
    table = loaded.labels[loaded.labels["kind"] != "background"]
    run = RunDir(out, kind=RunKind.CLASSICAL_REFERENCE)
    config = {"cohort": str(cohort), "subjects": [d.subject for d in data]} | settings()
    run.completed_with(config, "a reference run")
    run.start("harness classical reference", config)
    with run.failure_recorded():
        grid, voxel = grid_of(data[0].image.shape, data[0].affine)
        template, atlas = build_template(grid, voxel), load_atlas()
        save_volume(run.file(catalogue.CLASSICAL_TEMPLATE_T1), template.image.astype(np.uint8),
                    template.affine)  # fmt: skip
        save_volume(run.file(catalogue.CLASSICAL_TEMPLATE_DSEG),
                    template.labels.astype(np.int16), template.affine)  # fmt: skip
        times, dice = [], []
        for d in tqdm(data, desc="simpleitk", unit="subject", disable=not progress):
            start = time.perf_counter()
            index = register_sitk(d.image, template.image, voxel)
            seg = to_label_space(
                lookup_atlas(index, template.affine, atlas), table["label"].to_numpy()
            )
            times.append(
                {"subject": d.subject, "seconds": time.perf_counter() - start, "threads": 1}
            )
            save_volume(catalogue.PREDICTION.path(run.path, subject=d.subject), seg, d.affine)
            if d.truth is not None:
                dice.append(_dice_rows(d.subject, seg, d.truth, table))
        run.write_table(catalogue.REGISTRATION_TIMES, pd.DataFrame(times))
        frame = pd.concat(dice, ignore_index=True) if dice else pd.DataFrame(
            columns=list(catalogue.REFERENCE_DICE.columns))  # fmt: skip
        run.write_table(catalogue.REFERENCE_DICE, frame)
        summary = _summary(frame)
        run.finish(median_dice_to_truth=summary)
    return run.path, summary


def _dice_rows(subject, seg, truth, table) -> pd.DataFrame:
    from harness.metrics import dice_per_label

    d = dice_per_label(seg, truth, table["label"].to_numpy())
    return pd.DataFrame({"subject": subject, "label": table["label"].to_numpy(),
                         "region": table["name"].to_numpy(), "kind": table["kind"].to_numpy(),
                         "dice": d})  # fmt: skip


def _summary(frame: pd.DataFrame) -> dict:
    if frame.empty:
        return {}
    means = frame.groupby(["label", "kind"], as_index=False)["dice"].mean()
    out = {"all": float(means["dice"].median())}
    out |= {k: float(g["dice"].median()) for k, g in means.groupby("kind")}
    return {k: round(v, 4) for k, v in out.items()}
