"""``harness introspect``: happy and error paths, resume after a crash, and the must-show demo."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from harness.experiments.introspect_demo import Demo, IntrospectConfig, run_demo
from harness.introspect import COLUMNS, SpectralProbe
from harness.runs.audit import audit

CACHE = Path(tempfile.gettempdir()) / "harness-test-cache"  # atlas cache shared with data tests
DIGITS = ["--demo", "digits", "--batch-size", "32", "--steps-per-epoch", "4", "--top-k", "3"]


def test_cli_digits_happy_path(run_cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = run_cli("introspect", *DIGITS, "--epochs", "2", "--out", out)
    assert code == 0, stderr
    assert "spectra rows" in stdout
    spectra = pd.read_parquet(out / "spectra.parquet")
    assert list(spectra.columns) == COLUMNS
    assert set(spectra["group"]) == {"even", "odd"} and set(spectra["epoch"]) == {0, 1}
    assert set(spectra["quantity"]) == {"grad", "act", "adj"}
    assert spectra.groupby(["step", "layer", "group", "quantity"]).size().max() == 3  # top-k
    stats = pd.read_csv(out / "stats.tsv", sep="\t")
    assert {"t_q", "u_q", "hedges_g", "rank_biserial"} <= set(stats.columns)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["epochs_done"] == 2
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "0.weight.png", "2.weight.png", "4.weight.png"
    ]  # fmt: skip
    assert [str(f) for f in audit(out)] == []  # every file declared in the catalogue
    # same options again: the complete run is reported, not redone
    assert run_cli("introspect", *DIGITS, "--epochs", "2", "--out", out)[0] == 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--epochs", "0"], "epochs must be positive"),
        (["--every", "-1"], "every must be positive"),
        (["--batch-size", "1"], "batch_size must be at least 2"),
        (["--cohort", "somewhere"], "--cohort applies only"),
    ],
)
def test_cli_bad_input(run_cli, tmp_path, args, message):
    code, _, stderr = run_cli("introspect", *DIGITS, "--out", tmp_path / "run", *args)
    assert code == 2 and message in stderr and "Traceback" not in stderr


def test_cli_refuses_other_configuration_and_missing_cohort(run_cli, tmp_path):
    out = tmp_path / "run"
    assert run_cli("introspect", *DIGITS, "--epochs", "1", "--out", out)[0] == 0
    code, _, stderr = run_cli("introspect", *DIGITS, "--epochs", "2", "--out", out)
    assert code == 2 and "different configuration" in stderr
    code, _, stderr = run_cli(
        "introspect", "--demo", "volumes", "--cohort", tmp_path / "nope", "--out", tmp_path / "v"
    )
    assert code == 2 and "error:" in stderr


def test_resume_after_crash_reproduces_the_uninterrupted_run(tmp_path, monkeypatch):
    config = IntrospectConfig(Demo.DIGITS, epochs=2, batch_size=32, steps_per_epoch=4, top_k=2)
    run_demo(config, tmp_path / "whole", progress=False)
    original = SpectralProbe.step

    def crash(self, epoch=0, step=None):
        if epoch == 1 and step == 6:  # mid-epoch 1: epoch 0 is stored, epoch 1 half done
            raise KeyboardInterrupt
        return original(self, epoch, step)

    monkeypatch.setattr(SpectralProbe, "step", crash)
    with pytest.raises(KeyboardInterrupt):
        run_demo(config, tmp_path / "crashed", progress=False)
    stored = pd.read_parquet(tmp_path / "crashed" / "spectra.parquet")
    assert set(stored["epoch"]) == {0}
    monkeypatch.setattr(SpectralProbe, "step", original)
    run_demo(config, tmp_path / "crashed", progress=False)
    whole = pd.read_parquet(tmp_path / "whole" / "spectra.parquet")
    resumed = pd.read_parquet(tmp_path / "crashed" / "spectra.parquet")
    pd.testing.assert_frame_equal(whole, resumed)  # bitwise: same values after resuming
    manifest = json.loads((tmp_path / "crashed" / "manifest.json").read_text())
    assert manifest["attempts"] == 2 and manifest["status"] == "complete"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from harness.data.synth import generate_cohort

    path = tmp_path_factory.mktemp("cohort")
    generate_cohort(48, path, seed=0, grid=24, cache_dir=CACHE, progress=False)
    return path


def test_volumes_demo_finds_built_in_difference_and_none_when_shuffled(cohort, tmp_path):
    """The must-show run: atrophy vs control differ in the synthetic cohort by construction.

    3 epochs x 20 random batches of 16 (seed 0). With true labels the FDR-controlled tests find
    differences; with labels permuted within every batch the groups are random halves of the
    same batches (the null), and BH at q = 0.05 keeps P(any discovery) <= 0.05.
    """
    summaries = {}
    for shuffle in (False, True):
        config = IntrospectConfig(Demo.VOLUMES, epochs=3, shuffle_groups=shuffle,
                                  cohort=str(cohort))  # fmt: skip
        summaries[shuffle] = run_demo(config, tmp_path / str(shuffle), progress=False)
    assert summaries[False]["groups"] == ["atrophy", "control"]
    assert summaries[False]["t_discoveries"] >= 1 and summaries[False]["u_discoveries"] >= 1
    assert summaries[True]["t_discoveries"] == 0 and summaries[True]["u_discoveries"] == 0
