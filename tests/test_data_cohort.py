import numpy as np
import pytest

from harness.data.cohort import dseg_path, load_cohort, t1_path
from harness.data.io import save_volume
from harness.errors import InputError


def _write_cohort(root, ages=("30", "70.5"), with_labels=True):
    rows = ["participant_id\tage\tsex\tgroup"]
    for i, age in enumerate(ages, start=1):
        pid = f"sub-{i:04d}"
        rows.append(f"{pid}\t{age}\tF\tcontrol")
        save_volume(t1_path(root, pid), np.full((4, 4, 4), 100, np.uint8), np.eye(4))
        labels = np.zeros((4, 4, 4), np.int16)
        labels[1:3, 1:3, 1:3] = 17
        save_volume(dseg_path(root, pid), labels, np.eye(4))
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    if with_labels:
        (root / "labels.tsv").write_text(
            "label\tname\tkind\n0\tUnknown\tbackground\n17\tLeft-Hippocampus\tsubcortical\n"
        )
    return root


def test_load_valid_cohort(tmp_path):
    cohort = load_cohort(_write_cohort(tmp_path), check_volumes=True)
    assert cohort.ids == ["sub-0001", "sub-0002"]
    np.testing.assert_allclose(cohort.ages, [30.0, 70.5])
    assert cohort.groups == ["control", "control"]
    assert cohort.extra["volumes"][0]["labels"] == 1
    assert cohort.labels["label"].tolist() == [0, 17]
    assert cohort.subject("sub-0002").t1.exists()


def test_missing_table_and_columns(tmp_path):
    with pytest.raises(InputError, match="participants.tsv"):
        load_cohort(tmp_path)
    (tmp_path / "participants.tsv").write_text("participant_id\tsex\nsub-01\tF\n")
    with pytest.raises(InputError, match=r"missing \['age'\]"):
        load_cohort(tmp_path)


@pytest.mark.parametrize(
    "age, message",
    [("abc", "must be a number"), ("nan", "finite"), ("-3", "finite"), ("", "number")],
)
def test_bad_ages(tmp_path, age, message):
    _write_cohort(tmp_path, ages=("30", age))
    with pytest.raises(InputError, match=message):
        load_cohort(tmp_path)


def test_missing_files(tmp_path):
    _write_cohort(tmp_path)
    dseg_path(tmp_path, "sub-0002").unlink()
    with pytest.raises(InputError, match="label map"):
        load_cohort(tmp_path)
    assert load_cohort(tmp_path, require_labels=False).subjects[1].dseg is None
    t1_path(tmp_path, "sub-0001").unlink()
    with pytest.raises(InputError, match="T1 image"):
        load_cohort(tmp_path, require_labels=False)


def test_duplicates_bad_ids_and_label_table(tmp_path):
    _write_cohort(tmp_path)
    (tmp_path / "labels.tsv").write_text("label\tname\tkind\n17\tx\tbone\n")
    with pytest.raises(InputError, match="kind"):
        load_cohort(tmp_path)
    (tmp_path / "labels.tsv").unlink()
    (tmp_path / "participants.tsv").write_text("participant_id\tage\nsub-0001\t3\nsub-0001\t4\n")
    with pytest.raises(InputError, match="unique"):
        load_cohort(tmp_path)
    (tmp_path / "participants.tsv").write_text("participant_id\tage\nsubject1\t3\n")
    with pytest.raises(InputError, match="sub-"):
        load_cohort(tmp_path)


def test_check_volumes_finds_mismatch(tmp_path):
    _write_cohort(tmp_path)
    save_volume(dseg_path(tmp_path, "sub-0002"), np.ones((4, 4, 5), np.int16), np.eye(4))
    load_cohort(tmp_path)  # files exist: fine without volume checks
    with pytest.raises(InputError, match="sub-0002.*shape"):
        load_cohort(tmp_path, check_volumes=True)
