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
``harness ensemble analyze ENS`` needs no ``--cohort``) and the member names. Members are
independent jobs (:mod:`harness.executors`: in this process, or on a Dask cluster); finished
members are kept, a killed member resumes from its last epoch checkpoint, and no two jobs write
one member at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from harness.ensemble.layout import BASELINE, member_dir
from harness.ensemble.plan import MemberSpec, plan_ensemble
from harness.errors import InputError
from harness.executors import (
    Executor,
    Job,
    JobOutcome,
    SerialExecutor,
    raise_for_failures,
    run_jobs,
    summary_rows,
)
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
    executor: Executor | None = None,
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
    executor : Executor, optional
        Runs one job per member (:mod:`harness.executors`); default: one after another in this
        process. Members are written under their run-directory lock; failed members are listed
        in one :class:`~harness.executors.JobsFailedError` after every other member finished.
    """
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
    executor = executor or SerialExecutor()
    jobs = [
        member_job(
            spec, cohort, out, configs[spec.name], train, targets, save_probabilities, on_epoch_end
        )  # fmt: skip
        for spec in (chosen or members)
    ]
    if chosen is not None:
        raise_for_failures(run_jobs(executor, jobs, desc="members", progress=progress), "members")
        return out
    run.start("harness ensemble run", record, executor=executor.describe())
    with run.failure_recorded():
        finished: list[str] = []

        def member_done(outcome: JobOutcome) -> None:
            if outcome.ok:
                finished.append(outcome.key)
                run.update(finished_members=finished)

        outcomes = run_jobs(executor, jobs, desc="ensemble", progress=progress,
                            on_outcome=member_done)  # fmt: skip
        run.update(jobs=summary_rows(outcomes))
        raise_for_failures(outcomes, "members")
    run.finish(finished_members=[spec.name for spec in members])
    return out


def _chosen(members: list[MemberSpec], only: Sequence[str]) -> list[MemberSpec]:
    names = [spec.name for spec in members]
    unknown = [name for name in only if name not in names]
    if unknown or not only:
        raise InputError(
            f"member must be one of the plan's members {names}, got {unknown or 'none'}"
        )
    return [spec for spec in members if spec.name in set(only)]


def member_job(spec: MemberSpec, cohort, out: Path, config, train, targets,
               save_probabilities: bool, on_epoch_end: Callable | None = None) -> Job:  # fmt: skip
    """The job that trains member ``spec`` into ``ENS/members/<member>/`` (plain data only;
    ``on_epoch_end`` travels as an in-process hook)."""
    hooks = {} if on_epoch_end is None else {"on_epoch_end": on_epoch_end}
    folder = member_dir(out, spec.name)
    return Job(
        key=spec.name, func="harness.ensemble.run:train_member", run_dir=str(folder), hooks=hooks,
        kwargs={
            "cohort": str(Path(cohort).resolve()), "out": str(folder), "config": config.to_dict(),
            "member": spec.to_dict(), "ensemble": str(out.resolve()), "train_subjects": train,
            "predict": targets, "save_probabilities": bool(save_probabilities),
        },
    )  # fmt: skip


def train_member(cohort: str, out: str, config: dict, member: dict, ensemble: str,
                 train_subjects: list[str], predict: list[str], save_probabilities: bool,
                 on_epoch_end: Callable | None = None) -> str:  # fmt: skip
    """Train one member (the body of :func:`member_job`); returns its run directory.

    Seeds come from ``config`` (its :class:`~harness.perturb.seeds.SeedPlan`): nothing depends on
    the process or machine that runs it.
    """
    from harness.train import TrainConfig, train_run

    callback = None
    if on_epoch_end is not None:
        name = member["name"]
        callback = lambda view, epoch, row: on_epoch_end(name, view, epoch, row)  # noqa: E731
    train_run(
        cohort, out, TrainConfig.from_dict(config), train_subjects=train_subjects,
        predict=predict, save_probabilities=save_probabilities, progress=False,
        on_epoch_end=callback, command="harness ensemble run",
        extra={"member": member, "ensemble": ensemble},
    )  # fmt: skip
    return out
