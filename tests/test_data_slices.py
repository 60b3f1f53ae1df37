import numpy as np
import pytest
import torch

from harness.data.labels import (
    LUT_FULL,
    LUT_SAGITTAL,
    classes_to_labels,
    label_kind,
    label_name,
    labels_to_classes,
    merge_hemispheres,
    sagittal_to_full_index,
    split_cortex_by_hemisphere,
)
from harness.data.slices import ThickSliceDataset, stack_slices, thick_slice, view_axis
from harness.errors import InputError

# FastSurfer's map_prediction_sagittal2full index list for 79 classes (published source).
FASTSURFER_SAG2FULL = [0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 1, 2, 3, 14, 15, 4, 16, 17, 18, 5, 6, 7,
                       8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
                       27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45,
                       46, 47, 48, 49, 50, 20, 22, 27, 29, 30, 31, 33, 34, 38, 39, 40, 41, 42, 45]  # fmt: skip


def test_lut_sizes_match_fastsurfer():
    assert len(LUT_FULL) == 79 and len(set(LUT_FULL)) == 79
    assert len(LUT_SAGITTAL) == 51


def test_sagittal_to_full_matches_fastsurfer():
    np.testing.assert_array_equal(sagittal_to_full_index(), FASTSURFER_SAG2FULL)


def test_label_mapping_and_hemisphere_merge():
    ids = np.array([0, 2, 41, 17, 53, 1028, 2028, 2030, 16])
    full = labels_to_classes(ids, "axial")
    assert full[0] == 0 and full[1] != full[2]
    # a lateral right parcel (superiortemporal) shares its left twin's class; a medial one does not
    assert full[7] == labels_to_classes(np.array([1030]), "axial")[0]
    assert full[6] != full[5]
    sag = labels_to_classes(ids, "sagittal")
    assert sag[1] == sag[2] and sag[3] == sag[4] and sag[5] == sag[6]
    assert classes_to_labels(sag, "sagittal").tolist() == [0, 41, 41, 53, 53, 1028, 1028, 1030, 16]
    np.testing.assert_array_equal(merge_hemispheres(np.array([4, 43, 2005])), [43, 43, 1005])
    with pytest.raises(InputError, match="not in it"):
        labels_to_classes(np.array([3]), "coronal")  # cortex ribbon id is not a FastSurfer class
    with pytest.raises(InputError, match="view"):
        labels_to_classes(ids, "oblique")


def test_label_names_and_kinds():
    assert label_name(17) == "Left-Hippocampus"
    assert label_name(2024) == "ctx-rh-precentral"
    assert [label_kind(i) for i in (0, 1024, 41, 43, 17)] == [
        "background", "cortical", "wm", "csf", "subcortical"]  # fmt: skip
    with pytest.raises(InputError):
        label_name(9999)


def test_split_cortex_by_hemisphere():
    labels = np.zeros((6, 1, 1), np.int64)
    labels[:, 0, 0] = [2, 1030, 1030, 1030, 1030, 41]
    assert split_cortex_by_hemisphere(labels)[:, 0, 0].tolist() == [2, 1030, 1030, 2030, 2030, 41]


def test_split_keeps_medial_parcels_that_have_their_own_right_class():
    # 1010 (isthmus cingulate) is medial: 2010 is a class of its own, so a left 1010 next to
    # right WM is still a left prediction; 1030 (superior temporal) is merged and is split
    labels = np.zeros((4, 1, 1), np.int64)
    labels[:, 0, 0] = [1010, 1030, 2010, 41]
    assert split_cortex_by_hemisphere(labels)[:, 0, 0].tolist() == [1010, 2030, 2010, 41]


@pytest.mark.parametrize("view", ["axial", "coronal"])
def test_ground_truth_round_trip_is_exact(tiny_cohort, view):
    """Truth -> classes -> per-slice one-hot -> re-stacked -> labels -> hemisphere split == truth."""
    from harness.data.io import load_pair
    from harness.data.slices import to_view

    for sid in ("sub-0001", "sub-0002"):
        _, truth, _ = load_pair(
            tiny_cohort / sid / "anat" / f"{sid}_T1w.nii.gz",
            tiny_cohort / sid / "anat" / f"{sid}_dseg.nii.gz",
        )
        classes = labels_to_classes(truth, view)
        one_hot = torch.nn.functional.one_hot(torch.from_numpy(to_view(classes, view)), 79)
        volume = stack_slices(one_hot.permute(0, 3, 1, 2).float(), view)
        back = classes_to_labels(volume.argmax(dim=0).numpy(), view)
        np.testing.assert_array_equal(split_cortex_by_hemisphere(back), truth)


def test_thick_slice_edge_padding():
    stack = np.arange(5)[:, None, None] * np.ones((5, 2, 3))
    assert thick_slice(stack, 0)[:, 0, 0].tolist() == [0, 0, 0, 0, 1, 2, 3]
    assert thick_slice(stack, 4)[:, 0, 0].tolist() == [1, 2, 3, 4, 4, 4, 4]
    assert thick_slice(stack, 2).shape == (7, 2, 3)


def _volume(shape=(6, 8, 10)):
    image = (np.arange(np.prod(shape)) % 256).reshape(shape).astype(np.uint8)
    labels = np.zeros(shape, np.int16)
    labels[2:4, 3:6, 4:8] = 17
    labels[2:4, 3:6, 1] = 53
    return image, labels


@pytest.mark.parametrize("view", ["axial", "coronal", "sagittal"])
def test_dataset_shapes_and_scaling(view):
    image, labels = _volume()
    ds = ThickSliceDataset([image], [labels], view)
    axis = view_axis(view)
    assert len(ds) == image.shape[axis]
    sample = ds[0]
    plane = tuple(s for a, s in enumerate(image.shape) if a != axis)
    assert sample["image"].shape == (7, *plane) and sample["image"].dtype == torch.float32
    assert sample["label"].shape == plane and sample["label"].dtype == torch.int64
    assert 0.0 <= sample["image"].min() and sample["image"].max() <= 1.0
    centre = np.take(image, 0, axis=axis) / 255.0
    np.testing.assert_allclose(sample["image"][3].numpy(), centre, rtol=1e-6)
    np.testing.assert_allclose(sample["image"][0].numpy(), centre, rtol=1e-6)  # edge padding


def test_sagittal_dataset_merges_hemispheres():
    image, labels = _volume()
    ds = ThickSliceDataset([image], [labels], "sagittal")
    classes = np.unique(np.concatenate([ds[i]["label"].numpy().ravel() for i in range(len(ds))]))
    assert len(classes) == 2  # background and the merged hippocampus


def test_drop_blank_and_errors():
    image, labels = _volume()
    assert len(ThickSliceDataset([image], [labels], "sagittal", drop_blank=True)) == 2
    with pytest.raises(InputError, match="generator"):
        ThickSliceDataset([image], [labels], "axial", augment=True)
    with pytest.raises(InputError, match="shape"):
        ThickSliceDataset([image], [labels[:-1]], "axial")


def test_random_crop_is_seeded_and_keeps_alignment():
    image, labels = _volume((4, 20, 20))
    image = np.where(labels > 0, 255, 0).astype(np.uint8)
    runs = []
    for _ in range(2):
        ds = ThickSliceDataset(
            [image], [labels], "sagittal", augment=True, generator=torch.Generator().manual_seed(3)
        )
        runs.append([ds[i] for i in range(len(ds))])
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    shifted = [s for s in runs[0] if s["label"].any()]
    for s in shifted:
        assert torch.equal(s["image"][3] > 0, s["label"] > 0)


def test_stack_slices_inverts_view():
    volume = np.random.default_rng(0).random((5, 6, 7))
    for view in ("axial", "coronal", "sagittal"):
        stacked = np.moveaxis(volume, view_axis(view), 0)
        np.testing.assert_array_equal(stack_slices(stacked, view), volume)
        probs = torch.from_numpy(np.stack([stacked, 1 - stacked], axis=1))
        out = stack_slices(probs, view)
        assert out.shape == (2, 5, 6, 7)
        np.testing.assert_array_equal(out[0].numpy(), volume)
