"""The template a cohort is registered from: the label atlas (:mod:`harness.data.atlas`) on the
cohort's grid, with the generative model's mean anatomy and mean intensities.

It is :func:`harness.data.synth.synthesize_subject` for a subject with no pose change (identity
rotation and scaling, no translation), no random deformation, the base intensity of every tissue
with no spread, no bias field and no noise, aged 20 and in the control group (so the age model
changes nothing): the population's mean brain, as an atlas-registration pipeline's template is.
The grid is the cohort's: cubic, isotropic, conformed LIA, of its size and voxel size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import InputError

#: the template's subject: aged 20, control (no atrophy)
TEMPLATE_AGE = 20.0


@dataclass
class Template:
    """Template T1 (float32, uint8 scale), label ids (int32, FreeSurfer ids) and their affine."""

    image: np.ndarray
    labels: np.ndarray
    affine: np.ndarray


def grid_of(shape, affine) -> tuple[int, float]:
    """Grid size and voxel size (mm) of a cubic isotropic volume, else :class:`InputError`."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or len(set(shape)) != 1:
        raise InputError(f"images must be cubic 3D volumes (conformed), got shape {shape}")
    sizes = np.linalg.norm(np.asarray(affine, dtype=float)[:3, :3], axis=0)
    if not np.allclose(sizes, sizes[0], rtol=1e-3):
        raise InputError(f"voxels must be isotropic (conformed), got sizes {np.round(sizes, 4)} mm")
    return shape[0], float(sizes[0])


def build_template(grid: int, voxel_size: float, *, cache_dir=None) -> Template:
    """The atlas's mean anatomy on a ``grid``^3 LIA grid of ``voxel_size`` mm (a few seconds)."""
    from harness.data.atlas import load_atlas
    from harness.data.synth import BASE_INTENSITY, GenerativeModel, SubjectDraw, synthesize_subject

    model = GenerativeModel(rotation_deg=0.0, scaling=0.0, deformation_mm=0.0, bias_std=0.0)
    draw = SubjectDraw(
        age=TEMPLATE_AGE, group="control", sex="F", matrix=np.eye(3), translation=np.zeros(3),
        intensity_means=dict(BASE_INTENSITY), intensity_stds=dict.fromkeys(BASE_INTENSITY, 0.0),
        noise_std=0.0, rng_state=np.random.default_rng(0).bit_generator.state,
    )  # fmt: skip
    image, labels, affine = synthesize_subject(
        load_atlas(cache_dir), draw, grid=grid, voxel_size=voxel_size, model=model
    )
    return Template(image=image.astype(np.float32), labels=labels.astype(np.int32), affine=affine)


def to_label_space(labels: np.ndarray, cohort_labels: np.ndarray) -> np.ndarray:
    """Template ids outside the cohort's label table become background (0)."""
    known = np.isin(labels, cohort_labels)
    return np.where(known, labels, 0).astype(np.int32)
