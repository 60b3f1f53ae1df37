"""Training samples: thick slices with their class labels and FastSurfer loss weights.

:class:`WeightedSliceDataset` wraps :class:`harness.data.ThickSliceDataset` (no augmentation) and
adds the per-pixel weight of :func:`harness.models.weight_mask`, computed once per subject on its
3D class volume, plus the v1 augmentation: zero-pad H and W by ``pad`` pixels and crop back at an
offset drawn from the augmentation generator, image, label and weight alike (padding has label 0
and weight 0). Shape letters: H/W in-plane.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from harness.data.slices import ThickSliceDataset
from harness.errors import InputError
from harness.models.loss import weight_mask


class WeightedSliceDataset(Dataset):
    """Thick-slice samples ``{"image", "label", "weight", "subject", "slice"}`` of one view.

    Parameters
    ----------
    images, labels : sequences of ndarray (X, Y, Z)
        Conformed uint8 T1 volumes and FreeSurfer label maps.
    view : {"axial", "coronal", "sagittal"}
    generator : torch.Generator, optional
        Source of the crop offsets; no augmentation when None.
    pad : int
        Crop augmentation padding (v1: 8).
    """

    def __init__(self, images, labels, view: str, *, generator=None, pad: int = 8):
        self.base = ThickSliceDataset(images, labels, view, drop_blank=True)
        if len(self.base) == 0:
            raise InputError(f"the training labels have no non-background slice in view {view}")
        self.weights = [weight_mask(classes) for classes in self.base.classes]
        self.generator, self.pad = generator, pad

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, item: int) -> dict:
        sample = self.base[item]
        weight = torch.from_numpy(
            np.ascontiguousarray(self.weights[sample["subject"]][sample["slice"]])
        )
        image, label = sample["image"], sample["label"]
        if self.generator is not None and self.pad > 0:
            image, label, weight = random_crop(image, label, weight, self.pad, self.generator)
        return sample | {"image": image, "label": label, "weight": weight}


def random_crop(image, label, weight, pad: int, generator: torch.Generator):
    """Zero-pad (C, H, W), (H, W), (H, W) by ``pad`` and crop back to (H, W) at a random offset."""
    h, w = image.shape[-2:]
    top, left = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    rows, cols = slice(top, top + h), slice(left, left + w)
    padding = (pad, pad, pad, pad)
    image = torch.nn.functional.pad(image, padding)[:, rows, cols]
    label = torch.nn.functional.pad(label, padding)[rows, cols]
    weight = torch.nn.functional.pad(weight, padding)[rows, cols]
    return image, label, weight
