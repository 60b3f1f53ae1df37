"""A training run directory: train every view, predict the held-out subjects, record it all.

Layout of ``OUT`` (a :class:`harness.runs.RunDir`, kind ``train``; declared in
:mod:`harness.runs.catalogue`)::

    OUT/manifest.json                   config (with the cohort's absolute path, the training and
                                        prediction subjects, seeds), status, history, timings
    OUT/history.tsv                     view  epoch  loss  dice_loss  ce_loss  lr  steps  seconds
    OUT/checkpoints/<view>.pt           last finished epoch of each view (atomic; resume point)
    OUT/predictions/<subject>_seg.nii.gz  FreeSurfer label ids on the cohort image's grid
    OUT/predictions/<subject>_prob.npy    float16 (79, X, Y, Z) aggregated probabilities (optional)

A complete run with the same configuration is never recomputed; an interrupted one resumes from
its checkpoints and skips predictions already written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.runs import RunDir, RunKind
from harness.runs.catalogue import CHECKPOINT, HISTORY, PREDICTION, PROBABILITIES
from harness.runs.writable import check_writable_dir
from harness.train.config import TrainConfig
from harness.train.trainer import ViewTrainer

PREDICT_CHOICES = ("held-out", "all")


def select_subjects(ids: Sequence[str], train_subjects, predict: str | Sequence[str]):
    """Training and prediction subject ids.

    ``train_subjects``: an int K (the first K participants), a list of ids, or None (half of the
    cohort, at least one, leaving at least one out). ``predict``: ``"held-out"`` (every subject not
    used for training), ``"all"``, or a list of ids.
    """
    ids = list(ids)
    if train_subjects is None:
        train_subjects = max(1, len(ids) // 2)
    if isinstance(train_subjects, int) and not isinstance(train_subjects, bool):
        if not 1 <= train_subjects <= len(ids):
            raise InputError(
                f"train_subjects must be in [1, {len(ids)}] (the cohort size), got {train_subjects}"
            )
        train = ids[:train_subjects]
    else:
        train = list(train_subjects)
        unknown = [s for s in train if s not in ids]
        if unknown or not train:
            raise InputError(f"train_subjects must be cohort ids, got unknown {unknown or 'none'}")
    if isinstance(predict, str):
        if predict not in PREDICT_CHOICES:
            raise InputError(
                f"predict must be one of {list(PREDICT_CHOICES)} or ids, got {predict!r}"
            )
        targets = ids if predict == "all" else [s for s in ids if s not in train]
        if not targets:
            raise InputError(
                f"no held-out subject left to predict: all {len(ids)} are used for training; "
                "lower train_subjects or predict 'all'"
            )
    else:
        targets = list(predict)
        unknown = [s for s in targets if s not in ids]
        if unknown:
            raise InputError(f"predict subjects must be cohort ids, got unknown {unknown}")
    return train, targets


def _load_training(cohort, subjects: list[str]):
    from harness.data.io import load_pair

    images, labels = [], []
    for sid in subjects:
        subject = cohort.subject(sid)
        if subject.dseg is None:
            raise InputError(f"training subject {sid} must have a _dseg label map, found none")
        image, label, _ = load_pair(subject.t1, subject.dseg)
        _check_uint8(image, sid)
        images.append(image)
        labels.append(label)
    return images, labels


def _check_targets(cohort, subjects: list[str]) -> None:
    """Load every prediction subject's T1 once: readable, finite, conformed uint8."""
    from harness.data.io import load_volume

    for sid in subjects:
        image, _, _ = load_volume(cohort.subject(sid).t1, name=f"{sid} T1")
        _check_uint8(image, sid)


def _check_uint8(image: np.ndarray, sid: str) -> None:
    if image.dtype != np.uint8:
        raise InputError(
            f"T1 of {sid} must be conformed uint8 (0..255) as FastSurfer expects, got dtype "
            f"{image.dtype}; conform it first (harness.data.conform)"
        )


def train_run(
    cohort: str | Path,
    out: str | Path,
    config: TrainConfig,
    *,
    train_subjects=None,
    predict: str | Sequence[str] = "held-out",
    save_probabilities: bool = False,
    progress: bool = True,
    on_epoch_end: Callable | None = None,
    command: str = "harness train",
    extra: dict | None = None,
) -> Path:
    """Train ``config.views`` on a cohort, predict, and write the run directory ``out``.

    Parameters
    ----------
    cohort : path
        Cohort directory (:func:`harness.data.load_cohort`).
    out : path
        Run directory; created, or resumed when it holds an unfinished run of the same config.
    config : TrainConfig
    train_subjects, predict
        See :func:`select_subjects`.
    save_probabilities : bool
        Also write ``<subject>_prob.npy`` (float16; 79 x grid^3 values per subject).
    on_epoch_end : callable(view, epoch, row), optional
        Called after each epoch's checkpoint is written.
    extra : dict, optional
        More manifest fields (the ensemble records the member spec here).

    Returns
    -------
    Path of the run directory.

    Raises
    ------
    InputError
        Bad cohort or subjects, or ``out`` holds a run of another configuration.
    NonFiniteLossError
        The loss diverged.

    Any error after the run started leaves its manifest with status ``failed`` and the error;
    calling again with the same configuration retries it (from the last checkpoint).
    """
    from harness.data.cohort import load_cohort

    cohort_obj = load_cohort(cohort, require_labels=False)
    train, targets = select_subjects(cohort_obj.ids, train_subjects, predict)
    record = config.to_dict() | {
        "cohort": str(Path(cohort).resolve()),
        "train_subjects": train,
        "predict_subjects": targets,
        "save_probabilities": bool(save_probabilities),
    }
    out = check_writable_dir(out)
    run = RunDir(out, kind=RunKind.TRAIN)
    if run.completed_with(record, "a training run"):
        return out
    _check_targets(cohort_obj, targets)  # before any work: a bad subject fails now, not later
    run.start(command, record, **(extra or {}))
    history: list[dict] = []

    def epoch_done(view, epoch, row):
        history.append(row)
        _write_history(run, history)
        if on_epoch_end is not None:
            on_epoch_end(view, epoch, row)

    with run.failure_recorded():
        images, labels = _load_training(cohort_obj, train)
        models = {}
        for view in config.views:
            trainer = ViewTrainer(
                config, view, images, labels, CHECKPOINT.path(out, view=view),
                progress=progress, on_epoch_end=epoch_done,
            )  # fmt: skip
            history[:] = [r for r in history if r["view"] != view] + trainer.history
            models[view] = trainer.fit()
        _write_history(run, history)
        _predict_all(
            cohort_obj, targets, models, config, out, save_probabilities, progress
        )
    run.finish(history=history)
    return out


def _write_history(run: RunDir, history: list[dict]) -> None:
    import pandas as pd

    run.write_table(HISTORY, pd.DataFrame(history))
    run.update(history=history)


def _predict_all(cohort, targets, models, config, out: Path, save_probabilities, progress):
    from tqdm.auto import tqdm

    from harness.data.io import load_volume
    from harness.train.predict import predict_labels, write_prediction
    from harness.train.trainer import resolve_device

    device = resolve_device(config.device)
    for sid in tqdm(targets, desc="predict", unit="subject", disable=not progress, leave=False):
        if PREDICTION.path(out, subject=sid).exists() and (
            not save_probabilities or PROBABILITIES.path(out, subject=sid).exists()
        ):
            continue
        image, affine, _ = load_volume(cohort.subject(sid).t1, name="image")
        _check_uint8(image, sid)
        labels, probabilities = predict_labels(
            models, image, batch_size=config.batch_size, device=device
        )
        write_prediction(out, sid, labels, affine, probabilities if save_probabilities else None)
