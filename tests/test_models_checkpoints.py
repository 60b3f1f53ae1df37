"""FastSurfer v1 training-state files and harness checkpoints: names, checks, round trip, and a
malicious pickle that must not run."""

import os
import pickle

import pytest
import torch

from harness.errors import InputError
from harness.models import FastSurferCNN, fastsurfer_config
from harness.models.checkpoints import (
    load_model_checkpoint,
    save_v1_checkpoint,
    to_v1_state_dict,
)
from harness.runs.checkpoints import save_checkpoint


def _model(view="axial", preset="tiny", seed=0):
    torch.manual_seed(seed)
    model = FastSurferCNN(**fastsurfer_config(view, preset))
    for module in model.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.num_batches_tracked.fill_(7)
    return model.eval()


def _v1_names(depth: int) -> set[str]:
    """FastSurfer v1's state-dict names, from its module structure (networks.py/sub_module.py)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

    def block(prefix, bns):
        names = {f"{prefix}.conv{i}.{p}" for i in range(3) for p in ("weight", "bias")}
        names |= {f"{prefix}.bn{i}.{p}" for i in bns for p in bn}
        return names | {f"{prefix}.prelu.weight"}

    names = block("encode1", range(4))
    for i in range(2, depth + 1):
        names |= block(f"encode{i}", range(1, 4))
    names |= block("bottleneck", range(1, 4))
    for i in range(1, depth + 1):
        names |= block(f"decode{i}", range(1, 4))
    return names | {"classifier.conv.weight", "classifier.conv.bias"}


def test_v1_names_of_the_published_network():
    model = FastSurferCNN(**fastsurfer_config("sagittal", "full"))
    state = to_v1_state_dict(model)
    assert set(state) == _v1_names(4)
    assert tuple(state["encode1.conv0.weight"].shape) == (64, 7, 5, 5)
    assert tuple(state["classifier.conv.weight"].shape) == (51, 64, 1, 1)


@pytest.mark.parametrize("view", ["axial", "sagittal"])
def test_v1_round_trip_gives_bitwise_equal_predictions(tmp_path, view):
    model = _model(view)
    path = save_v1_checkpoint(tmp_path / "Epoch_30_training_state.pkl", model)
    raw = torch.load(path, weights_only=True)
    assert set(raw) >= {"epoch", "model_state_dict", "optimizer_state_dict"}
    assert set(raw["model_state_dict"]) == _v1_names(model.depth)
    loaded, layout = load_model_checkpoint(path, num_classes=model.num_classes)
    assert layout == "v1" and not loaded.training
    x = torch.rand(3, 7, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_data_parallel_prefix_and_harness_checkpoint(tmp_path):
    model = _model()
    state = {"module." + k: v for k, v in to_v1_state_dict(model).items()}
    save_checkpoint(tmp_path / "dp.pkl", {"model_state_dict": state, "epoch": 30})
    save_checkpoint(tmp_path / "axial.pt", {"view": "axial", "model": model.state_dict()})
    x = torch.rand(2, 7, 16, 16, generator=torch.Generator().manual_seed(2))
    for name, layout in (("dp.pkl", "v1"), ("axial.pt", "harness")):
        loaded, found = load_model_checkpoint(tmp_path / name)
        assert found == layout
        with torch.no_grad():
            assert torch.equal(model(x), loaded(x))


def test_incomplete_wrong_shape_and_wrong_classes_are_refused(tmp_path):
    state = to_v1_state_dict(_model())
    save_checkpoint(tmp_path / "ok.pkl", {"model_state_dict": state})
    with pytest.raises(InputError, match="must have 51 classes for this view, got 79"):
        load_model_checkpoint(tmp_path / "ok.pkl", num_classes=51)
    missing = dict(state)
    del missing["decode1.bn2.running_var"]
    save_checkpoint(tmp_path / "missing.pkl", {"model_state_dict": missing})
    with pytest.raises(InputError, match=r"missing \['decode1.bn2.running_var'\]"):
        load_model_checkpoint(tmp_path / "missing.pkl")
    wrong = dict(state)
    wrong["encode2.conv1.weight"] = torch.zeros(8, 8, 5, 5)
    save_checkpoint(tmp_path / "wrong.pkl", {"model_state_dict": wrong})
    with pytest.raises(InputError, match=r"wrong shape: \['encode2.conv1.weight \(8, 8, 5, 5\)"):
        load_model_checkpoint(tmp_path / "wrong.pkl")
    save_checkpoint(tmp_path / "other.pkl", {"weights": {"fc.weight": torch.zeros(2)}})
    with pytest.raises(InputError, match="must hold a FastSurferCNN state dict"):
        load_model_checkpoint(tmp_path / "other.pkl")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["pickle", "torch"])
def test_malicious_pickle_is_refused_and_does_not_run(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "Epoch_30_training_state.pkl"
    payload = {"model_state_dict": {"encode1.conv0.weight": _Payload(marker)}}
    if writer == "pickle":  # the legacy (non-zip) format torch.load also reads
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path)
    pickle.loads(pickle.dumps(_Payload(marker), protocol=2))  # the payload does run when unpickled
    assert marker.exists()
    marker.unlink()
    with pytest.raises(InputError, match="refusing to load checkpoint") as info:
        load_model_checkpoint(path)
    assert "weights_only=True" in str(info.value) and "system" in str(info.value)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_newer_pickle_protocol_is_refused_too(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "state.pkl"
    path.write_bytes(pickle.dumps({"model_state_dict": _Payload(marker)}, protocol=4))
    with pytest.raises(InputError, match="checkpoint .* is not a readable torch file"):
        load_model_checkpoint(path)
    assert not marker.exists()
