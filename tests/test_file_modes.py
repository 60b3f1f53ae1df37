"""Output files get the mode ``open()`` would give them: 0666 minus the umask."""

import os
import stat

import pytest

from harness.runs import atomic_write_json
from harness.runs.rundir import atomic_path, current_umask


@pytest.fixture
def umask():
    def set_mask(mask):
        previous = os.umask(mask)
        restore.append(previous)

    restore = []
    yield set_mask
    for previous in restore:
        os.umask(previous)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_atomic_writes_honour_the_umask(tmp_path, umask, mask):
    umask(mask)
    assert current_umask() == mask
    written = atomic_write_json(tmp_path / "m.json", {"a": 1})
    with atomic_path(tmp_path / "x.nii.gz") as tmp:
        tmp.write_bytes(b"data")
    with open(tmp_path / "plain.txt", "w") as fh:  # the reference: what open() does
        fh.write("x")
    expected = _mode(tmp_path / "plain.txt")
    assert expected == 0o666 & ~mask
    assert _mode(written) == expected
    assert _mode(tmp_path / "x.nii.gz") == expected


def test_umask_is_read_without_changing_it(umask):
    umask(0o023)
    assert current_umask() == 0o023
    assert current_umask() == 0o023
