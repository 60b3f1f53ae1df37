"""Offline demonstrations of :class:`harness.introspect.SpectralProbe`: small models trained with
per-group spectra recorded (the experiment behind ``harness introspect``).

* ``digits``: scikit-learn's bundled 8x8 digits (no download), an MLP classifier, groups
  ``even`` / ``odd`` digit.
* ``volumes``: a cohort's regional volumes (voxel counts of each label map x voxel volume,
  z-scored) -> an MLP regressing (standardised) age; groups from ``participants.tsv``
  (synthetic cohorts: ``control`` / ``atrophy``, whose atrophy is built into the images).
* ``images``: the cohort's T1 images average-pooled to ``image_size``^3 -> a small 3D CNN
  regressing age; same groups.

Every run writes ``spectra.parquet`` (appended per epoch), ``stats.tsv``, ``figures/*.png`` and
``manifest.json`` into its run directory, keeps ``checkpoint.pt`` after each epoch and resumes
from it. ``shuffle_groups`` permutes the group labels within every batch (a fresh permutation per
step, from its own seeded generator): the spectra then compare random halves of the same batches,
which is the null hypothesis. (A single permutation of a finite cohort would leave chance
differences in composition — age, say — that a long run could rightly detect.)
"""

from __future__ import annotations

import enum
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness.errors import InputError, check_positive
from harness.train.trainer import resolve_device


class Demo(enum.Enum):
    DIGITS = "digits"
    VOLUMES = "volumes"
    IMAGES = "images"


@dataclass(frozen=True)
class IntrospectConfig:
    """Settings of one demo run (stored in the manifest; a resumed run must match them)."""

    demo: Demo
    epochs: int = 5
    top_k: int = 10
    every: int = 1
    shuffle_groups: bool = False
    seed: int = 0
    device: str = "cpu"
    batch_size: int | None = None  # default per demo: digits 64, volumes/images 16
    steps_per_epoch: int | None = None  # default: digits one pass, volumes/images 20 batches
    lr: float = 1e-3
    subjects: int = 60  # synthesized cohort (volumes/images without a cohort)
    grid: int = 24
    image_size: int = 16
    alpha: float = 0.05
    cohort: str | None = None

    def check(self) -> None:
        for name in ("epochs", "top_k", "every", "subjects", "grid", "image_size", "lr"):
            check_positive(name, getattr(self, name))
        for name in ("batch_size", "steps_per_epoch"):
            if getattr(self, name) is not None:
                check_positive(name, getattr(self, name))
        if self.batch_size is not None and self.batch_size < 2:
            raise InputError(f"batch_size must be at least 2, got {self.batch_size}")
        if self.device not in ("cpu", "cuda"):
            raise InputError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        resolve_device(self.device)  # cuda without a CUDA device: MissingDependencyError
        if not 0 < self.alpha < 1:
            raise InputError(f"alpha must be in (0, 1), got {self.alpha!r}")

    @property
    def batch(self) -> int:
        return self.batch_size or (64 if self.demo is Demo.DIGITS else 16)

    def steps(self, n: int) -> int:
        """Steps per epoch: one pass over ``n`` samples or :attr:`random_batches` batches."""
        return self.random_batches or -(-n // self.batch)

    @property
    def random_batches(self) -> int | None:
        """Steps per epoch when batches are drawn at random (cohort demos: 20 by default)."""
        if self.steps_per_epoch is None and self.demo is not Demo.DIGITS:
            return 20
        return self.steps_per_epoch

    def to_dict(self) -> dict:
        return asdict(self) | {"demo": self.demo.value}


@dataclass
class DemoData:
    """Inputs, targets and per-sample group codes of one demo."""

    x: torch.Tensor
    y: torch.Tensor
    groups: np.ndarray  # int codes, one per sample
    group_names: list[str]
    task: str  # "classify" | "regress"
    info: dict = field(default_factory=dict)


def digits_data() -> DemoData:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    return DemoData(x, y, digits.target % 2, ["even", "odd"], "classify", {"samples": len(y)})


def _group_codes(cohort) -> tuple[np.ndarray, list[str]]:
    names = sorted(set(cohort.groups))
    if len(names) < 2:
        raise InputError(
            f"the cohort's participants.tsv must have at least two groups, got {names}"
        )
    return np.array([names.index(g) for g in cohort.groups]), names


def _standard_age(cohort) -> tuple[torch.Tensor, dict]:
    ages = cohort.ages
    std = ages.std() or 1.0
    return torch.tensor((ages - ages.mean()) / std, dtype=torch.float32)[:, None], {
        "age_mean": float(ages.mean()),
        "age_std": float(std),
    }


def regional_volumes(cohort) -> tuple[np.ndarray, list[int]]:
    """(subjects, regions) volumes in mm^3 of every non-zero label present in the cohort."""
    from harness.data.io import load_volume

    counts, spacing = [], []
    for subject in cohort.subjects:
        if subject.dseg is None:
            raise InputError(f"subject {subject.participant_id} has no _dseg label map")
        labels, affine, _ = load_volume(subject.dseg, name="dseg")
        counts.append(np.bincount(np.asarray(labels, dtype=np.int64).ravel()))
        spacing.append(abs(np.linalg.det(affine[:3, :3])))
    width = max(len(c) for c in counts)
    table = np.stack([np.pad(c, (0, width - len(c))) for c in counts]).astype(float)
    present = [int(i) for i in np.flatnonzero(table.sum(0)) if i != 0]
    return table[:, present] * np.array(spacing)[:, None], present


def volumes_data(cohort) -> DemoData:
    volumes, labels = regional_volumes(cohort)
    std = volumes.std(0)
    std[std == 0] = 1.0
    x = torch.tensor((volumes - volumes.mean(0)) / std, dtype=torch.float32)
    y, info = _standard_age(cohort)
    codes, names = _group_codes(cohort)
    return DemoData(x, y, codes, names, "regress", info | {"regions": len(labels)})


def images_data(cohort, size: int) -> DemoData:
    import torch.nn.functional as F

    from harness.data.io import load_volume

    images = []
    for subject in cohort.subjects:
        data, _, _ = load_volume(subject.t1, name="t1")
        volume = torch.tensor(np.asarray(data, dtype=np.float32))[None, None]
        images.append(F.adaptive_avg_pool3d(volume, size)[0] / 255.0)
    y, info = _standard_age(cohort)
    codes, names = _group_codes(cohort)
    return DemoData(torch.stack(images), y, codes, names, "regress", info | {"size": size})


def build_model(demo: Demo, data: DemoData) -> nn.Module:
    if demo is Demo.DIGITS:
        return nn.Sequential(
            nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)
        )
    if demo is Demo.VOLUMES:
        features = data.x.shape[1]
        return nn.Sequential(
            nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1)
        )
    return nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(4, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(2),
        nn.Flatten(), nn.Linear(64, 1),
    )  # fmt: skip


def _cohort(config: IntrospectConfig, out: Path):
    from harness.data.cohort import load_cohort

    if config.cohort:
        return load_cohort(config.cohort)
    from harness.data.synth import generate_cohort
    from harness.runs import RunDir

    path = out / "cohort"
    if RunDir(path).is_complete():
        return load_cohort(path)
    return generate_cohort(config.subjects, path, config.seed, grid=config.grid)


def load_demo_data(config: IntrospectConfig, out: Path) -> DemoData:
    if config.demo is Demo.DIGITS:
        return digits_data()
    cohort = _cohort(config, out)
    if len(cohort) < config.batch:
        raise InputError(
            f"the cohort needs at least one batch of subjects ({config.batch}), got {len(cohort)}"
        )
    if config.demo is Demo.VOLUMES:
        return volumes_data(cohort)
    return images_data(cohort, config.image_size)


def _loss(task: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if task == "classify":
        return nn.functional.cross_entropy(output, target)
    return nn.functional.mse_loss(output, target)


def _generator(*keys: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence(keys).generate_state(1)[0]))


def run_demo(config: IntrospectConfig, out: str | os.PathLike, progress: bool = True) -> dict:
    """Train the demo's model with a :class:`SpectralProbe`; write and return the run's summary.

    A run directory holding an unfinished run with the same configuration is resumed from its
    last completed epoch; one with a different configuration is refused.
    """
    from harness.runs import RunDir, RunKind

    config.check()
    out = Path(out)
    run = RunDir(out, kind=RunKind.INTROSPECT)
    settings = config.to_dict()
    if previous := run.completed_with(settings, "an introspect run"):
        return previous["summary"]
    run.start("introspect", settings)
    with run.failure_recorded():  # failed, with the error; the next call resumes
        data = load_demo_data(config, out)
        _train(config, data, out, run, progress)
        summary = _analyse(config, data, out)
    run.finish(summary=summary)
    return summary


def _train(config: IntrospectConfig, data: DemoData, out: Path, run, progress: bool) -> None:
    from tqdm import tqdm

    from harness.introspect.probe import SpectralProbe
    from harness.introspect.table import SpectraTable
    from harness.perturb.seeds import torch_seed
    from harness.runs.catalogue import INTROSPECT_CHECKPOINT, SPECTRA
    from harness.runs.checkpoints import load_checkpoint, save_checkpoint

    device = resolve_device(config.device)
    with torch_seed(config.seed):
        model = build_model(config.demo, data).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    checkpoint = INTROSPECT_CHECKPOINT.path(out)
    start = 0
    if checkpoint.exists():
        state = load_checkpoint(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["epochs_done"])
    table = SpectraTable(SPECTRA.path(out))
    table.truncate(start)
    n = len(data.y)
    steps = config.steps(n)
    x, y = data.x.to(device), data.y.to(device)
    names = dict(enumerate(data.group_names))
    probe = SpectralProbe(model, top_k=config.top_k, every=config.every, group_names=names,
                          run=config.demo.value)  # fmt: skip
    probe.resume_at(start * steps)
    with probe:
        for epoch in range(start, config.epochs):
            sampler = _generator(config.seed, epoch)
            order = torch.randperm(n, generator=sampler)
            shuffler = _generator(config.seed, epoch, 1)
            losses = []
            bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}",
                       disable=not progress, leave=False)  # fmt: skip
            for step in bar:
                if config.random_batches:  # random batches, each without repeats
                    index = torch.randperm(n, generator=sampler)[: config.batch]
                else:
                    index = order[step * config.batch : (step + 1) * config.batch]
                labels = torch.as_tensor(data.groups[index.numpy()])
                if config.shuffle_groups:
                    labels = labels[torch.randperm(len(labels), generator=shuffler)]
                probe.set_groups(labels)
                optimizer.zero_grad()
                loss = _loss(data.task, model(x[index.to(device)]), y[index.to(device)])
                loss.backward()
                probe.step(epoch, epoch * steps + step)
                optimizer.step()
                losses.append(float(loss.detach()))
            table.append(probe.pop_table())
            save_checkpoint(checkpoint, {"model": model.state_dict(),
                            "optimizer": optimizer.state_dict(), "epochs_done": epoch + 1})  # fmt: skip
            history = run.manifest().get("loss_per_epoch", {})
            history[str(epoch)] = float(np.mean(losses))
            run.update(epochs_done=epoch + 1, loss_per_epoch=history)


def _analyse(config: IntrospectConfig, data: DemoData, out: Path) -> dict:
    from harness.introspect.plots import plot_trajectories
    from harness.introspect.probe import SpectralProbe
    from harness.introspect.stats import compare_groups, summarise
    from harness.introspect.table import read_spectra
    from harness.runs import atomic_write_table
    from harness.runs.catalogue import INTROSPECT_STATS, SPECTRA, SPECTRA_FIGURE

    spectra = read_spectra(SPECTRA.path(out))
    stats = compare_groups(spectra, alpha=config.alpha)
    caveats = SpectralProbe(build_model(config.demo, data)).caveats()
    atomic_write_table(INTROSPECT_STATS.path(out), stats)
    figures = plot_trajectories(spectra, out / SPECTRA_FIGURE.parent)
    return summarise(stats) | {
        "caveats": caveats,
        "rows": len(spectra),
        "layers": sorted(spectra["layer"].unique()),
        "groups": data.group_names,
        "figures": [str(p.relative_to(out)) for p in figures],
        "data": data.info,
    }
