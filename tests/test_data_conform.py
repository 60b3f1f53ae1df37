import nibabel as nib
import numpy as np
import pytest

from harness.data.conform import conform, conformed_affine, is_conformed, robust_rescale
from harness.errors import InputError


def _ras_volume():
    """A 40x30x20 RAS volume (1.5 mm) with one bright box at a known world position."""
    affine = np.diag([1.5, 1.5, 1.5, 1.0])
    affine[:3, 3] = [-30.0, -22.5, -15.0]
    data = np.zeros((40, 30, 20), np.float32)
    data[30:34, 10:14, 5:9] = 1000.0  # world x in [15, 21), y in [-7.5, -1.5), z in [-7.5, -1.5)
    data[5:8, 5:8, 5:8] = 400.0
    return data, affine


def test_conform_grid_orientation_dtype():
    data, affine = _ras_volume()
    out, out_affine = conform(data, affine, size=32, voxel_size=2.0)
    assert out.shape == (32, 32, 32) and out.dtype == np.uint8
    assert nib.aff2axcodes(out_affine) == ("L", "I", "A")
    np.testing.assert_allclose(np.abs(np.diag(out_affine[:3, :3]) @ np.ones(3)), 2.0)
    assert is_conformed(out.shape, out_affine, size=32, voxel_size=2.0)
    assert not is_conformed(data.shape, affine, size=32, voxel_size=2.0)
    ras, ras_affine = conform(data, affine, size=32, voxel_size=2.0, orientation="RAS")
    assert nib.aff2axcodes(ras_affine) == ("R", "A", "S")


def test_bright_box_lands_at_its_world_position():
    data, affine = _ras_volume()
    out, out_affine = conform(data, affine, size=48, voxel_size=1.0)
    peak = np.argwhere(out == out.max()).mean(axis=0)
    world = (out_affine @ np.append(peak, 1.0))[:3]
    np.testing.assert_allclose(world, [18.0, -4.5, -4.5], atol=1.0)
    assert out.max() == 255


def test_centre_voxel_maps_to_input_centre():
    data, affine = _ras_volume()
    _, out_affine = conform(data, affine, size=16)
    centre_in = (affine @ np.array([20.0, 15.0, 10.0, 1.0]))[:3]
    np.testing.assert_allclose((out_affine @ np.array([8.0, 8.0, 8.0, 1.0]))[:3], centre_in)


def test_labels_use_nearest_neighbour():
    data, affine = _ras_volume()
    labels = np.where(data == 1000, 17, np.where(data == 400, 1035, 0)).astype(np.int16)
    out, _ = conform(labels, affine, size=40, voxel_size=1.3, labels=True)
    assert out.dtype == np.int32
    assert set(np.unique(out).tolist()) == {0, 17, 1035}


def test_robust_rescale_clips_outliers():
    values = np.concatenate([np.zeros(10), np.linspace(1, 100, 9990), [1e6] * 5]).astype(np.float32)
    scaled = robust_rescale(values, 0.0, 0.999)
    assert scaled.min() == 0 and scaled.max() == 255
    assert np.isclose(scaled[10 + 9990 // 2], 255 * values[10 + 9990 // 2] / 100, rtol=0.02)
    with pytest.raises(InputError, match="constant"):
        robust_rescale(np.full(10, 3.0))
    with pytest.raises(InputError, match="quantiles"):
        robust_rescale(values, 0.5, 0.2)


def test_bad_parameters():
    data, affine = _ras_volume()
    with pytest.raises(InputError, match="orientation"):
        conform(data, affine, size=8, orientation="XYZ")
    with pytest.raises(InputError, match="3D"):
        conform(data[..., None], affine, size=8)
    with pytest.raises(InputError, match="size"):
        conformed_affine(np.zeros(3), size=0)
