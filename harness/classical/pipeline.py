"""One subject through the atlas-registration pipeline, under a chosen arithmetic.

intensity normalisation -> affine + deformable registration of the template to the subject
(:mod:`harness.classical.register`) -> the atlas labels looked up by nearest neighbour at the
subject's voxels mapped into the atlas. The labels come from the 1 mm label atlas the template was
built from (:class:`LabelSource`), so a correct registration is not limited by the template's
coarse grid. Every floating-point operation of the first two steps and of the mapping into the
atlas runs under :class:`harness.perturb.StochasticArithmetic` with the given mode and seed; the
lookup itself (a copy of integer ids) has nothing to perturb.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from harness.classical import transforms as T
from harness.classical.register import (
    RegistrationConfig,
    normalize_intensity,
    register,
    warp_labels,
)
from harness.perturb import Mode, StochasticArithmetic


@dataclass
class LabelSource:
    """Labels to transfer: ``indices`` (D', H', W') int64 into ``ids`` (FreeSurfer ids), and
    ``to_source`` (1, 3, 4), the map from the template's normalised coordinates to the label
    grid's."""

    indices: torch.Tensor
    ids: np.ndarray
    to_source: torch.Tensor

    @classmethod
    def from_labels(cls, labels: np.ndarray, to_source: torch.Tensor | None = None) -> LabelSource:
        """From a label map of FreeSurfer ids (``to_source`` default: the identity)."""
        ids, inverse = np.unique(np.asarray(labels), return_inverse=True)
        indices = torch.from_numpy(inverse.reshape(labels.shape).astype(np.int64))
        return cls(
            indices, ids.astype(np.int32), T.identity_theta() if to_source is None else to_source
        )


def segment(
    image: np.ndarray,
    template_image: np.ndarray,
    source: LabelSource,
    config: RegistrationConfig | None = None,
    *,
    mode: Mode | str = Mode.IEEE,
    seed: int = 0,
) -> np.ndarray:
    """Label map (int32 FreeSurfer ids, ``image``'s grid) of one subject.

    ``image`` and ``template_image`` are 3D arrays of one shape (any intensity scale).
    """
    fixed = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    moving = torch.from_numpy(np.ascontiguousarray(template_image, dtype=np.float32))[None, None]
    with StochasticArithmetic(mode, seed=seed):
        result = register(normalize_intensity(fixed), normalize_intensity(moving), config)
        points = T.apply_affine(source.to_source, result.points)
    return source.ids[warp_labels(source.indices, points).numpy()]
