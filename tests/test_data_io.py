import numpy as np
import pytest

from harness.data.io import check_label_map, check_pair, load_pair, load_volume, save_volume
from harness.errors import InputError


def _affine(shift=0.0):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-10.0 + shift, -12.0, 5.0]
    return affine


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".mgz"])
def test_roundtrip_keeps_data_dtype_and_affine(tmp_path, suffix):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 255, size=(5, 6, 7)).astype(np.uint8)
    path = save_volume(tmp_path / f"vol{suffix}", data, _affine())
    loaded, affine, header = load_volume(path)
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, data)
    np.testing.assert_allclose(affine, _affine())
    assert tuple(header.get_zooms()[:3]) == (2.0, 2.0, 2.0)


def test_gzip_output_is_byte_identical_across_writes(tmp_path):
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    a = save_volume(tmp_path / "a.nii.gz", data, _affine()).read_bytes()
    b = save_volume(tmp_path / "b.nii.gz", data, _affine()).read_bytes()
    assert a == b


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="existing file"):
        load_volume(tmp_path / "nope.nii.gz")


def test_unreadable_file(tmp_path):
    path = tmp_path / "bad.nii.gz"
    path.write_bytes(b"this is not a nifti file")
    with pytest.raises(InputError, match="readable"):
        load_volume(path)


def test_wrong_suffix(tmp_path):
    with pytest.raises(InputError, match="must end in"):
        load_volume(tmp_path / "x.png")


def test_nan_and_inf_are_rejected(tmp_path):
    data = np.zeros((4, 4, 4), dtype=np.float32)
    data[1, 2, 3] = np.nan
    data[0, 0, 0] = np.inf
    save_volume(tmp_path / "nan.nii", data, _affine())
    with pytest.raises(InputError, match="2 NaN/Inf"):
        load_volume(tmp_path / "nan.nii")


def test_four_d_is_rejected_but_singleton_dropped(tmp_path):
    save_volume(tmp_path / "four.nii", np.zeros((3, 3, 3, 2), np.float32), _affine())
    with pytest.raises(InputError, match="3D"):
        load_volume(tmp_path / "four.nii")
    save_volume(tmp_path / "one.nii", np.ones((3, 3, 3, 1), np.float32), _affine())
    assert load_volume(tmp_path / "one.nii")[0].shape == (3, 3, 3)


def test_pair_shape_and_affine_mismatch():
    with pytest.raises(InputError, match="shape must equal"):
        check_pair((4, 4, 4), _affine(), (4, 4, 5), _affine())
    with pytest.raises(InputError, match="affine must equal"):
        check_pair((4, 4, 4), _affine(), (4, 4, 4), _affine(shift=1.0))
    check_pair((4, 4, 4), _affine(), (4, 4, 4), _affine(shift=1e-5))


def test_label_map_rules():
    with pytest.raises(InputError, match="all zeros"):
        check_label_map(np.zeros((3, 3, 3), np.int16))
    with pytest.raises(InputError, match="integer-valued"):
        check_label_map(np.full((3, 3, 3), 1.5, np.float32))
    with pytest.raises(InputError, match="non-negative"):
        check_label_map(np.full((3, 3, 3), -1, np.int16))
    assert check_label_map(np.full((2, 2, 2), 17.0)).dtype == np.int32


def test_load_pair_validates_together(tmp_path):
    image = np.ones((4, 4, 4), np.uint8)
    labels = np.zeros((4, 4, 4), np.int16)
    save_volume(tmp_path / "t1.nii.gz", image, _affine())
    save_volume(tmp_path / "empty.nii.gz", labels, _affine())
    with pytest.raises(InputError, match="all zeros"):
        load_pair(tmp_path / "t1.nii.gz", tmp_path / "empty.nii.gz")
    labels[1, 1, 1] = 17
    save_volume(tmp_path / "seg.nii.gz", labels, _affine(shift=2.0))
    with pytest.raises(InputError, match="affine"):
        load_pair(tmp_path / "t1.nii.gz", tmp_path / "seg.nii.gz")
    save_volume(tmp_path / "seg.nii.gz", labels, _affine())
    _, loaded, _ = load_pair(tmp_path / "t1.nii.gz", tmp_path / "seg.nii.gz")
    assert loaded[1, 1, 1] == 17
