"""Thick-slice 2D datasets (FastSurferCNN input) and re-stacking of 2D predictions.

A sample for slice ``i`` of a view is the image slices ``i-3 .. i+3`` along that view's axis
(edge-padded: indices clipped to the volume), shape ``(7, H, W)``, scaled from uint8 to [0, 1],
with the label slice ``i`` mapped to class indices through the view's LUT.

Slice axes of a conformed volume: LIA (FastSurfer) -> sagittal 0, axial 1, coronal 2;
RAS -> sagittal 0, coronal 1, axial 2. Shape letters: N batch, C channels/classes, H/W in-plane,
D slices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from harness.data.labels import labels_to_classes
from harness.errors import InputError, check_choice

VIEWS = ("axial", "coronal", "sagittal")
_VIEW_AXIS = {
    "LIA": {"sagittal": 0, "axial": 1, "coronal": 2},
    "RAS": {"sagittal": 0, "coronal": 1, "axial": 2},
}


def view_axis(view: str, orientation: str = "LIA") -> int:
    """Volume axis that a view slices along."""
    check_choice("view", view, VIEWS)
    check_choice("orientation", orientation, tuple(_VIEW_AXIS))
    return _VIEW_AXIS[orientation][view]


def to_view(volume: np.ndarray, view: str, orientation: str = "LIA") -> np.ndarray:
    """Move the view's slice axis first: (X, Y, Z) -> (D, H, W)."""
    return np.moveaxis(volume, view_axis(view, orientation), 0)


def thick_slice(stack: np.ndarray, index: int, half_width: int = 3) -> np.ndarray:
    """Slices ``index-half_width .. index+half_width`` of a (D, H, W) stack, edge-padded."""
    rows = np.clip(np.arange(index - half_width, index + half_width + 1), 0, stack.shape[0] - 1)
    return stack[rows]


def stack_slices(slices, view: str, orientation: str = "LIA"):
    """Put per-slice 2D predictions back into a volume.

    Parameters
    ----------
    slices : ndarray or Tensor, (D, H, W) or (D, C, H, W)
        Predictions for every slice of the view, in slice order.
    view : {"axial", "coronal", "sagittal"}

    Returns
    -------
    (X, Y, Z) or (C, X, Y, Z), same type as the input.
    """
    axis = view_axis(view, orientation)
    if slices.ndim == 3:
        return (
            np.moveaxis(slices, 0, axis)
            if isinstance(slices, np.ndarray)
            else (torch.movedim(slices, 0, axis))
        )
    if slices.ndim == 4:
        if isinstance(slices, np.ndarray):
            return np.moveaxis(np.moveaxis(slices, 1, 0), 1, axis + 1)
        return torch.movedim(torch.movedim(slices, 1, 0), 1, axis + 1)
    raise InputError(f"slices must have shape (D, H, W) or (D, C, H, W), got {tuple(slices.shape)}")


class ThickSliceDataset(Dataset):
    """2D thick-slice samples from conformed volumes, one view.

    Parameters
    ----------
    images : sequence of ndarray (X, Y, Z)
        Conformed uint8 volumes (intensities 0..255; divided by 255).
    labels : sequence of ndarray (X, Y, Z) or None
        FreeSurfer label maps, same shapes; mapped to classes with
        :func:`harness.data.labels.labels_to_classes`. None for inference-only datasets.
    view : {"axial", "coronal", "sagittal"}
    orientation : {"LIA", "RAS"}
        Orientation of the conformed volumes.
    half_width : int
        Neighbours on each side (FastSurfer: 3, giving 7 channels).
    lut : array-like of int, optional
        Custom class LUT (class index -> FreeSurfer id); default FastSurfer's LUT of the view.
    augment : bool
        Pad by ``pad`` pixels (zeros) and crop back at a random offset, image and label alike.
    pad : int
        Padding of the crop augmentation (FastSurfer: 8).
    generator : torch.Generator, optional
        Source of the crop offsets; required when ``augment`` is True (reproducible order).
    drop_blank : bool
        Skip slices whose label slice is all background (needs labels).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray] | None,
        view: str,
        *,
        orientation: str = "LIA",
        half_width: int = 3,
        lut=None,
        augment: bool = False,
        pad: int = 8,
        generator: torch.Generator | None = None,
        drop_blank: bool = False,
    ):
        check_choice("view", view, VIEWS)
        if len(images) == 0:
            raise InputError("images must contain at least one volume, got 0")
        if labels is not None and len(labels) != len(images):
            raise InputError(
                f"labels must match images in number, got {len(labels)} vs {len(images)}"
            )
        if augment and generator is None:
            raise InputError("generator must be a torch.Generator when augment=True, got None")
        if half_width < 0 or pad < 0:
            raise InputError(f"half_width and pad must be non-negative, got {half_width}, {pad}")
        self.view, self.orientation, self.half_width = view, orientation, half_width
        self.augment, self.pad, self.generator = augment, pad, generator
        self.images = [
            np.ascontiguousarray(to_view(np.asarray(v), view, orientation)) for v in images
        ]
        self.classes = None
        if labels is not None:
            self.classes = []
            for i, (image, label) in enumerate(zip(images, labels, strict=True)):
                if np.shape(image) != np.shape(label):
                    raise InputError(
                        f"labels[{i}] shape must equal images[{i}] shape, got "
                        f"{np.shape(label)} vs {np.shape(image)}"
                    )
                classes = labels_to_classes(np.asarray(label), view, lut=lut).astype(np.int64)
                self.classes.append(np.ascontiguousarray(to_view(classes, view, orientation)))
        self.index = [
            (s, d)
            for s, stack in enumerate(self.images)
            for d in range(stack.shape[0])
            if not (drop_blank and self.classes is not None and not self.classes[s][d].any())
        ]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict:
        subject, slice_index = self.index[item]
        image = torch.from_numpy(
            thick_slice(self.images[subject], slice_index, self.half_width).astype(np.float32)
            / 255.0
        )
        sample = {"image": image, "subject": subject, "slice": slice_index}
        label = None
        if self.classes is not None:
            label = torch.from_numpy(self.classes[subject][slice_index].copy())
        if self.augment:
            image, label = self._random_crop(image, label)
        sample["image"] = image
        if label is not None:
            sample["label"] = label
        return sample

    def _random_crop(self, image: torch.Tensor, label: torch.Tensor | None):
        """Zero-pad H and W by ``pad`` and crop back to (H, W) at a random offset."""
        p = self.pad
        h, w = image.shape[-2:]
        top, left = torch.randint(0, 2 * p + 1, (2,), generator=self.generator).tolist()
        padded = torch.nn.functional.pad(image, (p, p, p, p))
        image = padded[:, top : top + h, left : left + w]
        if label is not None:
            padded_label = torch.nn.functional.pad(label, (p, p, p, p))
            label = padded_label[top : top + h, left : left + w]
        return image, label
