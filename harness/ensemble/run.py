"""Train an ensemble (``harness ensemble run``): the baseline plus members differing by one factor.

Every member is a :func:`harness.train.train_run` run directory
``ENS/members/<member>/`` (manifest with its :class:`~harness.ensemble.plan.MemberSpec` and seeds,
``checkpoints/``, ``history.tsv``, ``predictions/<subject>_seg.nii.gz``) trained on the same
subjects and predicting the same subjects. How a member's spec becomes a training configuration:

- seeds: ``SeedPlan.derive(member_index, base_seed, vary)`` — seed members vary init, data order
  and augmentation; the baseline and arithmetic members use member 0's seeds;
- arithmetic: ``mode``/``engine`` of the spec (``none`` for the baseline and seed members, ``op``
  for ``mca-*``, ``kernel`` for ``kernel-*``), engine seed ``derive_seed(base_seed, "mca", k)``
  for member ``k``.

``ENS/manifest.json`` records the configuration (with the cohort's absolute path, so
``harness ensemble analyze ENS`` needs no ``--cohort``) and the member names. Finished members are
skipped; a killed member resumes from its last epoch checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from harness.ensemble.layout import BASELINE, member_dir
from harness.ensemble.plan import MemberSpec, plan_ensemble
from harness.errors import InputError
from harness.perturb.seeds import SeedPlan, derive_seed
from harness.runs import RunDir, RunKind

#: :class:`harness.train.TrainConfig` fields of the learning-rate schedule
SCHEDULE_FIELDS = ("schedule", "step_size", "gamma", "milestones", "cycles", "min_lr_ratio")


def member_config(spec: MemberSpec, base: dict, base_seed: int):
    """The :class:`harness.train.TrainConfig` of one member."""
    from harness.train import TrainConfig

    seeds = SeedPlan.derive(member=spec.member_index, base_seed=base_seed, vary=spec.vary)
    return TrainConfig(
        **base,
        mode=spec.mode,
        engine=spec.engine,
        precision=spec.precision,
        seeds=seeds,
        mca_seed=derive_seed(base_seed, "mca", spec.mca_seed),
    )


def parse_factor_sizes(items: Sequence[str]) -> dict[str, int]:
    """``["seed=5", "mca-sr=5"]`` -> ``{"seed": 5, "mca-sr": 5}``."""
    factors: dict[str, int] = {}
    for item in items:
        name, sep, size = item.partition("=")
        if not sep or not size.strip().isdigit():
            raise InputError(f"factor must look like NAME=SIZE (e.g. seed=5), got {item!r}")
        factors[name.strip().lower()] = int(size)
    return factors


def run_ensemble(
    cohort: str | Path,
    out: str | Path,
    factors: dict[str, int],
    *,
    precision: int | None = None,
    views: Sequence[str] = ("axial",),
    preset: str = "full",
    epochs: int = 30,
    batch_size: int = 16,
    lr: float = 0.01,
    schedule: dict | None = None,
    seed: int = 0,
    train_subjects=None,
    predict: str | Sequence[str] = "held-out",
    save_probabilities: bool = False,
    device: str = "cpu",
    progress: bool = True,
    on_epoch_end: Callable | None = None,
    only: Sequence[str] | None = None,
) -> Path:
    """Train every member of ``plan_ensemble(factors, precision)`` and predict; return ``out``.

    Parameters
    ----------
    cohort : path
        Cohort directory.
    out : path
        Ensemble directory ``ENS``.
    factors : dict
        ``{"seed": 5, "mca-sr": 5}`` (see :func:`harness.ensemble.plan.parse_factor`).
    precision : int, optional
        Virtual precision of the perturbed members.
    views, preset, epochs, batch_size, lr, device
        Training settings shared by all members (:class:`harness.train.TrainConfig`).
    schedule : dict, optional
        Learning-rate schedule fields of :class:`harness.train.TrainConfig` (``schedule``,
        ``step_size``, ``gamma``, ``milestones``, ``cycles``, ``min_lr_ratio``); default: the
        preset's schedule.
    seed : int
        Base seed of every member's seed plan.
    train_subjects, predict
        As :func:`harness.train.select_subjects`; default: train on half the cohort, predict the
        other half.
    save_probabilities : bool
        Members also write float16 ``<subject>_prob.npy`` (enables ``prob_sig_bits.tsv``).
    on_epoch_end : callable(member, view, epoch, row), optional
        Called after each epoch checkpoint of each member.
    only : sequence of str, optional
        Train just these members of the plan, and leave ``ENS/manifest.json`` alone: several
        processes can train disjoint members side by side; a final call without ``only`` then
        finds them finished and records the ensemble.
    """
    from tqdm.auto import tqdm

    from harness.data.cohort import load_cohort
    from harness.train import select_subjects

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    members = plan_ensemble(factors, precision)
    cohort_obj = load_cohort(cohort, require_labels=False)
    train, targets = select_subjects(cohort_obj.ids, train_subjects, predict)
    base = {
        "views": tuple(views), "preset": preset, "epochs": epochs, "batch_size": batch_size,
        "lr": lr, "device": device, **(schedule or {}),
    }  # fmt: skip
    configs = {spec.name: member_config(spec, base, seed) for spec in members}  # validates early
    resolved = configs[BASELINE].to_dict()
    base |= {key: resolved[key] for key in SCHEDULE_FIELDS}  # JSON form, preset defaults filled
    record = {
        "cohort": str(Path(cohort).resolve()),
        "factors": dict(factors),
        "precision": precision,
        **base,
        "views": list(views),
        "seed": seed,
        "train_subjects": train,
        "predict_subjects": targets,
        "save_probabilities": bool(save_probabilities),
        "members": [spec.name for spec in members],
    }
    chosen = None if only is None else _chosen(members, only)
    out = Path(out)
    run = RunDir(out, kind=RunKind.ENSEMBLE)
    if run.completed_with(record, "an ensemble"):
        return out
    if chosen is not None:
        _train_members(cohort, out, chosen, configs, train, targets,
                       save_probabilities, progress, on_epoch_end)  # fmt: skip
        return out
    run.start("harness ensemble run", record)
    with run.failure_recorded():
        finished = []
        bar = tqdm(members, desc="ensemble", unit="member", disable=not progress)
        for spec in bar:
            bar.set_postfix(member=spec.name)
            _train_member(cohort, out, spec, configs, train, targets, save_probabilities,
                          False, on_epoch_end)  # fmt: skip
            finished.append(spec.name)
            run.update(finished_members=finished)
    run.finish(finished_members=finished)
    return out


def _chosen(members: list[MemberSpec], only: Sequence[str]) -> list[MemberSpec]:
    names = [spec.name for spec in members]
    unknown = [name for name in only if name not in names]
    if unknown or not only:
        raise InputError(
            f"member must be one of the plan's members {names}, got {unknown or 'none'}"
        )
    return [spec for spec in members if spec.name in set(only)]


def _train_members(cohort, out, chosen, configs, train, targets, save_probabilities, progress,
                   on_epoch_end) -> None:  # fmt: skip
    for spec in chosen:
        _train_member(cohort, out, spec, configs, train, targets, save_probabilities, progress,
                      on_epoch_end)  # fmt: skip


def _train_member(cohort, out, spec, configs, train, targets, save_probabilities, progress,
                  on_epoch_end) -> None:  # fmt: skip
    from harness.train import train_run

    callback = None
    if on_epoch_end is not None:
        callback = lambda view, epoch, row, name=spec.name: on_epoch_end(name, view, epoch, row)  # noqa: E731
    train_run(
        cohort, member_dir(out, spec.name), configs[spec.name], train_subjects=train,
        predict=targets, save_probabilities=save_probabilities, progress=progress,
        on_epoch_end=callback, command="harness ensemble run",
        extra={"member": spec.to_dict(), "ensemble": str(out.resolve())},
    )  # fmt: skip
