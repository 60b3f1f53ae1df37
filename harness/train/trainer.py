"""Train one FastSurferCNN view: Adam + StepLR, optional stochastic arithmetic, atomic per-epoch
checkpoints and bitwise-exact resume.

Reproducibility: the model is initialised from the seed plan's ``init`` seed
(:func:`harness.perturb.seeds.torch_seed`: the caller's generator state is restored after), the
data order comes from a generator seeded with ``data`` and the crop augmentation from one seeded
with ``augment``; nothing draws from or reseeds the global generators. A checkpoint holds the
model, optimizer, scheduler, both generators, the epoch and the history; perturbation streams
restart from :meth:`TrainConfig.epoch_seed` every epoch. A run
killed after epoch ``e`` and resumed therefore replays epochs ``e+1..`` exactly as an
uninterrupted run does (same device, same library versions).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from harness.errors import HarnessError, InputError, MissingDependencyError
from harness.models import FastSurferCNN, FastSurferLoss, fastsurfer_config
from harness.perturb.seeds import torch_seed
from harness.runs.checkpoints import load_checkpoint, save_checkpoint
from harness.train.config import Engine, TrainConfig
from harness.train.data import WeightedSliceDataset
from harness.train.schedule import Schedule, cosine_factor, milestone_factor

CHECKPOINT_SCHEMA = 1


class NonFiniteLossError(HarnessError, FloatingPointError):
    """The training loss became NaN or infinite."""


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda``; ``cuda`` without a CUDA device is an error, not a silent fallback."""
    if name == "cuda" and not torch.cuda.is_available():
        raise MissingDependencyError("device 'cuda' was requested but torch sees no CUDA device")
    return torch.device(name)


def build_model(config: TrainConfig, view: str) -> torch.nn.Module:
    """The view's network, initialised from ``config.seeds.init`` (and instrumented when the
    engine is ``kernel``)."""
    with torch_seed(config.seeds.init):
        model = FastSurferCNN(**fastsurfer_config(view, config.preset))
    if config.engine is Engine.KERNEL:
        from harness.kernels import instrument_model

        model = instrument_model(model, config.mode, config.epoch_seed(1), inplace=True)
    return model


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """The run's learning-rate scheduler, stepped once per epoch.

    v1 stays torch's ``StepLR`` (the published recipe, unchanged); the run-relative schedules are
    a ``LambdaLR`` over :mod:`harness.train.schedule`'s factors.
    """
    if config.schedule is Schedule.V1:
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=config.step_size, gamma=config.gamma
        )
    if config.schedule is Schedule.MILESTONES:
        factor = functools.partial(
            milestone_factor, epochs=config.epochs, milestones=config.milestones,
            gamma=config.gamma,
        )  # fmt: skip
    else:
        factor = functools.partial(
            cosine_factor, epochs=config.epochs, cycles=config.cycles,
            min_lr_ratio=config.min_lr_ratio,
        )  # fmt: skip
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def crop_padding(shape) -> int:
    """v1's 8-pixel crop padding on 256-voxel slices, scaled to smaller grids (at least 1 pixel).

    At 256 voxels the shift is 3% of the field of view; keeping 8 pixels on a 32-voxel test grid
    would shift by 25% and keep the tiny networks from learning.
    """
    return max(1, round(8 * max(shape) / 256))


class ViewTrainer:
    """Train (or resume) the network of one view.

    Parameters
    ----------
    config : TrainConfig
    view : str
    images, labels : sequences of ndarray (X, Y, Z)
        Training subjects' conformed T1 volumes and label maps.
    checkpoint : Path
        File rewritten atomically after every epoch.
    progress : bool
        Show tqdm bars.
    on_epoch_end : callable(view, epoch, history_row), optional
        Called after each epoch's checkpoint is on disk (tests use it to inject a crash).
    """

    def __init__(
        self,
        config: TrainConfig,
        view: str,
        images,
        labels,
        checkpoint: Path,
        *,
        progress: bool = True,
        on_epoch_end: Callable | None = None,
    ):
        self.config, self.view, self.checkpoint = config, view, Path(checkpoint)
        self.device = resolve_device(config.device)
        self.progress, self.on_epoch_end = progress, on_epoch_end
        self.data_generator = config.seeds.generator("data")
        self.augment_generator = config.seeds.generator("augment")
        self.dataset = WeightedSliceDataset(
            images, labels, view, generator=self.augment_generator if config.augment else None,
            pad=crop_padding(images[0].shape),
        )  # fmt: skip
        depth = fastsurfer_config(view, config.preset)["depth"]
        h, w = self.dataset.base.images[0].shape[-2:]  # (D, H, W); no sample drawn
        if h % 2**depth or w % 2**depth:
            raise InputError(
                f"slice size must be divisible by 2**depth = {2**depth} for preset "
                f"{config.preset!r}, got {h}x{w} in view {view}"
            )
        self.model = build_model(config, view).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.scheduler = build_scheduler(self.optimizer, config)
        self.loss_fn = FastSurferLoss()
        self.epoch = 0
        self.history: list[dict] = []
        if self.checkpoint.exists():
            self._load()

    # -- checkpoints --------------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "schema_version": CHECKPOINT_SCHEMA,
            "view": self.view,
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "history": self.history,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "data_generator": self.data_generator.get_state(),
            "augment_generator": self.augment_generator.get_state(),
        }

    def save(self) -> None:
        """Write the checkpoint atomically (a crash leaves the previous one intact)."""
        save_checkpoint(self.checkpoint, self._state())

    def _load(self) -> None:
        state = load_checkpoint(self.checkpoint, map_location=self.device)
        if state.get("config") != self.config.to_dict() or state.get("view") != self.view:
            raise InputError(
                f"checkpoint {self.checkpoint} was written by a different configuration; "
                "use a new output directory or delete it"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.data_generator.set_state(state["data_generator"])
        self.augment_generator.set_state(state["augment_generator"])
        self.epoch, self.history = state["epoch"], state["history"]

    @property
    def done(self) -> bool:
        return self.epoch >= self.config.epochs

    # -- training -----------------------------------------------------------------------------
    def _perturbation(self, epoch: int):
        config = self.config
        if config.engine is Engine.OP:
            from harness.perturb import StochasticArithmetic

            return StochasticArithmetic(
                mode=config.mode, precision=config.precision, seed=config.epoch_seed(epoch)
            )
        if config.engine is Engine.KERNEL:
            from harness.kernels import reseed

            reseed(self.model, config.epoch_seed(epoch))
        return contextlib.nullcontext()

    def _step(self, batch: dict, perturbation) -> tuple[float, float, float]:
        image = batch["image"].to(self.device)
        label = batch["label"].to(self.device)
        weight = batch["weight"].to(self.device)
        with perturbation:
            logits = self.model(image)
            loss, dice, ce = self.loss_fn(logits, label, weight)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return loss.item(), dice.item(), ce.item()

    def train_epoch(self) -> dict:
        """Run one epoch, checkpoint, and return its history row."""
        epoch = self.epoch + 1
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.config.batch_size,
            shuffle=True,
            generator=self.data_generator,
            num_workers=0,
        )
        self.model.train()
        perturbation = self._perturbation(epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        sums, steps, start = np.zeros(3), 0, time.perf_counter()
        bar = tqdm(
            loader, desc=f"{self.view} epoch {epoch}", unit="batch", leave=False,
            disable=not self.progress,
        )  # fmt: skip
        for batch in bar:
            values = self._step(batch, perturbation)
            if not all(math.isfinite(v) for v in values):
                raise NonFiniteLossError(
                    f"training loss became non-finite (loss={values[0]}, dice={values[1]}, "
                    f"ce={values[2]}) in view {self.view}, epoch {epoch}, step {steps + 1}; "
                    "try a smaller --lr"
                )
            sums += values
            steps += 1
            bar.set_postfix(loss=f"{values[0]:.4f}")
        self.scheduler.step()
        self.epoch = epoch
        row = {
            "view": self.view,
            "epoch": epoch,
            "loss": sums[0] / steps,
            "dice_loss": sums[1] / steps,
            "ce_loss": sums[2] / steps,
            "lr": lr,
            "steps": steps,
            "seconds": time.perf_counter() - start,
        }
        self.history.append(row)
        self.save()
        if self.on_epoch_end is not None:
            self.on_epoch_end(self.view, epoch, row)
        return row

    def fit(self) -> torch.nn.Module:
        """Train the remaining epochs (none if the checkpoint is final) and return the model."""
        from harness.perturb.seeds import deterministic_algorithms

        remaining = range(self.epoch + 1, self.config.epochs + 1)
        # CUDA: deterministic cuDNN algorithms (same seed => same run); ops without a
        # deterministic kernel only warn
        deterministic = (
            deterministic_algorithms(True, warn_only=True)
            if self.device.type == "cuda"
            else contextlib.nullcontext()
        )
        with deterministic:
            for _ in tqdm(
                remaining, desc=f"train {self.view}", unit="epoch", disable=not self.progress
            ):
                self.train_epoch()
        return self.model
