"""Checkpoints hold only tensors and plain data; a planted pickle is refused, never run."""

import os

import pytest
import torch

from harness.errors import InputError
from harness.runs.checkpoints import load_checkpoint, save_checkpoint


class Exploit:
    """Unpickling this calls ``os.system`` (what a hostile checkpoint would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _plant(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": Exploit(marker), "epoch": 1}, path)


def test_roundtrip_of_tensors_and_plain_data(tmp_path):
    generator = torch.Generator().manual_seed(3)
    state = {"w": torch.ones(2), "epoch": 4, "history": [{"loss": 0.5}],
             "rng": generator.get_state(), "name": "axial"}  # fmt: skip
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.pt", state))
    assert loaded["epoch"] == 4 and loaded["history"] == [{"loss": 0.5}]
    assert torch.equal(loaded["rng"], generator.get_state())


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    _plant(tmp_path / "c.pt", marker)
    refused = r"refusing to load checkpoint .*c\.pt.*weights_only=True: .*GLOBAL posix.system"
    with pytest.raises(InputError, match=refused):
        load_checkpoint(tmp_path / "c.pt")
    assert not marker.exists()


def test_training_resume_refuses_a_planted_checkpoint(run_cli, tiny_cohort, tmp_path):
    out, marker = tmp_path / "run", tmp_path / "pwned"
    _plant(out / "checkpoints" / "axial.pt", marker)
    code, _, err = run_cli("train", "--cohort", tiny_cohort, "--out", out, "--epochs", "1",
                           "--preset", "tiny", "--batch-size", "4", "--quiet")  # fmt: skip
    assert code == 2 and "refusing to load checkpoint" in err and "Traceback" not in err
    assert not marker.exists()


def test_not_a_torch_file(tmp_path):
    (tmp_path / "c.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable torch file"):
        load_checkpoint(tmp_path / "c.pt")
