import tempfile
from pathlib import Path

import numpy as np
import pytest

from harness.data.atlas import load_atlas
from harness.data.synth import GenerativeModel, draw_subject, generate_cohort, synthesize_subject
from harness.errors import InputError

# A persistent temp cache: the atlas (about 6 s to build) is built once per machine, not per test.
CACHE = Path(tempfile.gettempdir()) / "harness-test-cache"


@pytest.fixture(scope="module")
def atlas():
    return load_atlas(CACHE)


def test_atlas_has_freesurfer_structures(atlas):
    present = set(np.unique(atlas.labels).tolist())
    aseg = {2, 41, 4, 43, 7, 46, 8, 47, 10, 49, 11, 50, 12, 51, 13, 52, 14, 15, 16, 17, 53,
            18, 54, 24, 26, 58, 28, 60}  # fmt: skip
    assert aseg <= present
    cortical = {i for i in present if i >= 1000}
    assert (
        len([i for i in cortical if i < 2000]) == 31
        and len([i for i in cortical if i >= 2000]) == 31
    )
    volumes_ml = {i: np.count_nonzero(atlas.labels == i) / 1000 for i in (17, 53, 4, 43, 2, 41)}
    assert 3 < volumes_ml[17] < 12 and 3 < volumes_ml[53] < 12  # hippocampus: a few ml
    assert 4 < volumes_ml[4] < 40 and 200 < volumes_ml[2] < 400


def test_same_seed_same_files(tmp_path):
    a = generate_cohort(2, tmp_path / "a", seed=5, grid=24, cache_dir=CACHE, progress=False)
    b = generate_cohort(2, tmp_path / "b", seed=5, grid=24, cache_dir=CACHE, progress=False)
    c = generate_cohort(2, tmp_path / "c", seed=6, grid=24, cache_dir=CACHE, progress=False)
    for sa, sb, sc in zip(a.subjects, b.subjects, c.subjects, strict=True):
        assert sa.t1.read_bytes() == sb.t1.read_bytes()
        assert sa.dseg.read_bytes() == sb.dseg.read_bytes()
        assert sa.t1.read_bytes() != sc.t1.read_bytes()
    assert (tmp_path / "a" / "participants.tsv").read_text() == (
        tmp_path / "b" / "participants.tsv"
    ).read_text()
    assert a.groups == ["atrophy", "control"] or a.groups == ["control", "atrophy"]
    assert ((20 <= a.ages) & (a.ages <= 85)).all()
    assert set(a.labels["kind"]) == {"background", "cortical", "subcortical", "wm", "csf"}


def _volumes(labels):
    return {
        "hippocampus": np.isin(labels, (17, 53)).sum(),
        "cortex": (labels >= 1000).sum(),
        "ventricles": np.isin(labels, (4, 43)).sum(),
    }


def test_age_and_group_drive_atrophy(atlas):
    draw = draw_subject(np.random.default_rng([0, 2]), 2, GenerativeModel())
    vols = {}
    for age, group in [(25, "control"), (55, "control"), (85, "control"), (85, "atrophy")]:
        _, labels, _ = synthesize_subject(atlas, draw, grid=48, age=age, group=group)
        vols[(age, group)] = _volumes(labels)
    young, mid, old, sick = (
        vols[(25, "control")],
        vols[(55, "control")],
        vols[(85, "control")],
        vols[(85, "atrophy")],
    )
    for key in ("hippocampus", "cortex"):
        assert young[key] > mid[key] > old[key] > sick[key], key
    assert young["ventricles"] < mid["ventricles"] < old["ventricles"] < sick["ventricles"]
    assert old["ventricles"] > 1.3 * young["ventricles"]


def test_image_is_conformed_uint8_with_tissue_contrast(atlas):
    draw = draw_subject(np.random.default_rng([1, 1]), 1, GenerativeModel())
    image, labels, affine = synthesize_subject(atlas, draw, grid=32)
    assert image.dtype == np.uint8 and labels.dtype == np.int16 and image.shape == (32, 32, 32)
    assert np.allclose(np.abs(affine[:3, :3]).sum(0), 6.0)  # 192 mm / 32
    wm = image[np.isin(labels, (2, 41))].mean()
    gm = image[labels >= 1000].mean()
    csf = image[np.isin(labels, (4, 43))].mean()
    assert wm > gm > csf


def test_bad_parameters(tmp_path):
    with pytest.raises(InputError, match="n_subjects"):
        generate_cohort(0, tmp_path, cache_dir=CACHE)
    with pytest.raises(InputError, match="grid"):
        generate_cohort(1, tmp_path, grid=8, cache_dir=CACHE)
    with pytest.raises(InputError, match="age_min"):
        generate_cohort(
            1, tmp_path, grid=24, model=GenerativeModel(age_min=50, age_max=40), cache_dir=CACHE
        )
