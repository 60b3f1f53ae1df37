"""Learning-rate schedules relative to the run, the ``small`` preset, and a learning test."""

import numpy as np
import pytest
import torch

from harness.errors import InputError
from harness.train import TrainConfig, ViewTrainer
from harness.train.schedule import Schedule, cosine_factor, milestone_factor
from harness.train.trainer import build_scheduler


def _rates(config: TrainConfig) -> list[float]:
    """Learning rate of every epoch of a run of ``config`` (scheduler stepped per epoch)."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=config.lr)
    scheduler = build_scheduler(optimizer, config)
    rates = []
    for _ in range(config.epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_milestones_step_at_the_fraction_of_the_run():
    config = TrainConfig(preset="small", epochs=15, lr=0.01)
    assert config.schedule is Schedule.MILESTONES and config.gamma == 0.1
    rates = _rates(config)
    np.testing.assert_allclose(rates[:10], 0.01)
    np.testing.assert_allclose(rates[10:], 0.001)
    # the same fractions mean the same thing for a run three times longer
    rates = _rates(TrainConfig(preset="small", epochs=45, milestones=(0.5, 0.8), lr=1.0))
    np.testing.assert_allclose(rates, [1.0] * 22 + [0.1] * 14 + [0.01] * 9)


def test_cosine_matches_torch_warm_restarts():
    epochs, cycles, ratio, lr = 12, 3, 0.05, 0.02
    rates = _rates(
        TrainConfig(preset="small", epochs=epochs, lr=lr, schedule="cosine", cycles=cycles,
                    min_lr_ratio=ratio)
    )  # fmt: skip
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    oracle = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=epochs // cycles, eta_min=ratio * lr
    )
    expected = []
    for _ in range(epochs):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        oracle.step()
    np.testing.assert_allclose(rates, expected, rtol=1e-12)
    assert cosine_factor(0, epochs, cycles, ratio) == 1.0


def test_v1_stays_torch_steplr_for_full_and_tiny():
    for preset in ("full", "tiny"):
        config = TrainConfig(preset=preset, epochs=12)
        assert config.schedule is Schedule.V1 and config.gamma == 0.3
        np.testing.assert_allclose(
            _rates(config), [0.01] * 5 + [0.003] * 5 + [0.0009] * 2, rtol=1e-12
        )
        scheduler = build_scheduler(torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))]), config)
        assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)


def test_milestone_factor_counts_passed_milestones():
    assert milestone_factor(0, 10, (0.5,), 0.1) == 1.0
    assert milestone_factor(5, 10, (0.5,), 0.1) == pytest.approx(0.1)
    assert milestone_factor(9, 10, (0.2, 0.5), 0.5) == 0.25


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"schedule": "exp"}, "schedule must be one of"),
        ({"milestones": (0.8, 0.5)}, "milestones must be strictly increasing"),
        ({"milestones": (1.0,)}, "milestones must be strictly increasing"),
        ({"schedule": "cosine", "cycles": 20, "epochs": 10}, "cycles must be <= epochs"),
        ({"min_lr_ratio": 1.0}, "min_lr_ratio must be in [0, 1)"),
        ({"cycles": 0}, "cycles must be a positive integer"),
    ],
)
def test_bad_schedule_settings_name_the_parameter(fields, needle):
    with pytest.raises(InputError, match=needle.replace("[", r"\[").replace(")", r"\)")):
        TrainConfig(**({"preset": "small"} | fields))


def test_config_round_trips_through_its_record():
    config = TrainConfig(preset="small", epochs=9, schedule="cosine", cycles=3)
    again = TrainConfig.from_dict(config.to_dict())
    assert again == config and again.to_dict() == config.to_dict()
    assert config.to_dict()["schedule"] == "cosine"


def _dice(model, image, label, view="axial") -> tuple[float, float]:
    """Mean Dice to truth over every region present, and over the large ones (>= 1% of the
    labelled voxels: white matter, ventricles, cerebellum, deep grey matter, big parcels)."""
    from harness.metrics import dice_per_label
    from harness.train import predict_labels

    seg, _ = predict_labels({view: model}, image)
    labels, counts = np.unique(label[label > 0], return_counts=True)
    dice = dice_per_label(seg, label, labels)
    large = counts >= 0.01 * counts.sum()
    return float(np.nanmean(dice)), float(np.nanmean(dice[large]))


def test_small_preset_learns_to_segment(tiny_cohort, tmp_path):
    """A learning test: 10 epochs of the small preset on 3 subjects of a 24^3 cohort lift the
    Dice to truth of a held-out subject from chance (untrained: ~0.001) to a segmentation
    (measured 0.39 over all 91 regions, 0.69 over the 19 large ones)."""
    from harness.data.io import load_pair

    pairs = [
        load_pair(tiny_cohort / f"sub-000{i}/anat/sub-000{i}_T1w.nii.gz",
                  tiny_cohort / f"sub-000{i}/anat/sub-000{i}_dseg.nii.gz")[:2]
        for i in range(1, 5)
    ]  # fmt: skip
    images, labels = [p[0] for p in pairs], [p[1] for p in pairs]
    config = TrainConfig(preset="small", epochs=10, batch_size=4, lr=0.01)
    trainer = ViewTrainer(
        config, "axial", images[:3], labels[:3], tmp_path / "ck.pt", progress=False
    )
    before = _dice(trainer.model, images[3], labels[3])
    trainer.fit()
    after = _dice(trainer.model, images[3], labels[3])
    assert max(before) < 0.05, before
    assert after[0] > 0.25 and after[1] > 0.5, after
