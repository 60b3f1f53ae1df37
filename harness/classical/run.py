"""``harness classical run``: the atlas-registration pipeline over a cohort under IEEE and
stochastic arithmetic, written in the ensemble layout, then the ensemble analysis.

Layout of a run directory ``RUN`` (kind :attr:`~harness.runs.RunKind.CLASSICAL`)::

    RUN/manifest.json                  cohort, subjects, seed, registration settings
    RUN/template/                      template image and labels on the cohort grid
    RUN/members/baseline/              IEEE arithmetic (kind classical-sample)
    RUN/members/rr-01 .. rr-N/         one arithmetic sample each: predictions/, timings.tsv
    RUN/analysis/                      harness.ensemble.analyze.analyze_ensemble(RUN, cohort)

Sample ``k`` of mode ``m`` is named ``m-kk`` and seeds the engine with
``derive_seed(seed, "mca", k)`` (:mod:`harness.perturb.seeds`). A prediction already on disk is
not recomputed, so an interrupted run resumes where it stopped, and a later call with another
``--mode`` or more ``--samples`` adds members to the same run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.classical.register import RegistrationConfig
from harness.errors import InputError
from harness.perturb import Mode
from harness.runs import RunDir, RunKind, catalogue
from harness.runs.layout import BASELINE, member_dir, prediction_path

#: fewest samples per mode: the stability metric needs pairs
MIN_SAMPLES = 2


@dataclass(frozen=True)
class Sample:
    """One member of a classical run: its name, arithmetic mode and engine seed."""

    name: str
    mode: Mode
    seed: int


def plan_samples(modes, samples: int, seed: int = 0) -> list[Sample]:
    """The baseline (IEEE) then ``samples`` members per mode, in order."""
    from harness.perturb.seeds import derive_seed

    if isinstance(samples, bool) or not isinstance(samples, int) or samples < MIN_SAMPLES:
        raise InputError(f"samples must be an integer >= {MIN_SAMPLES}, got {samples!r}")
    parsed = list(dict.fromkeys(Mode.parse(m) for m in modes))
    if not parsed or Mode.IEEE in parsed:
        raise InputError(
            f"mode must name one or more of rr, sr, ud (the baseline is IEEE), got {list(modes)!r}"
        )
    plan = [Sample(BASELINE, Mode.IEEE, 0)]
    for mode in parsed:
        plan += [Sample(f"{mode.value}-{k:02d}", mode, derive_seed(seed, "mca", k))
                 for k in range(1, samples + 1)]  # fmt: skip
    return plan


@dataclass
class SubjectData:
    """A validated subject: T1 (float32), its affine, and the truth label map when present."""

    subject: str
    image: np.ndarray
    affine: np.ndarray
    truth: np.ndarray | None


def load_subjects(cohort, subjects: list[str] | None) -> list[SubjectData]:
    """Load and validate the chosen subjects: image and label map on one grid, label maps not
    empty, every subject on the first one's grid."""
    from harness.data.io import check_label_map, check_pair, load_volume

    ids = cohort.ids if not subjects else list(dict.fromkeys(subjects))
    known = set(cohort.ids)
    unknown = [s for s in ids if s not in known]
    if unknown:
        raise InputError(f"subjects must be participants of the cohort, got unknown {unknown}")
    out = []
    for pid in ids:
        entry = cohort.subject(pid)
        image, affine, _ = load_volume(entry.t1, name=f"{pid} T1")
        truth = None
        if entry.dseg is not None:
            labels, label_affine, _ = load_volume(entry.dseg, name=f"{pid} dseg")
            check_pair(image.shape, affine, labels.shape, label_affine, name=pid)
            truth = check_label_map(labels, name=f"{pid} dseg")
        if out and (
            image.shape != out[0].image.shape or not np.allclose(affine, out[0].affine, atol=1e-3)
        ):
            raise InputError(
                f"every subject must share one grid: {pid} has shape {image.shape}, "
                f"{out[0].subject} has {out[0].image.shape} (or their affines differ)"
            )
        out.append(SubjectData(pid, np.asarray(image, dtype=np.float32), affine, truth))
    return out


def run_config(cohort: Path, subjects, seed: int, config: RegistrationConfig) -> dict:
    """The root manifest's configuration (what a resumed run must match)."""
    return {"cohort": str(cohort), "subjects": [s.subject for s in subjects], "seed": seed,
            "registration": config.to_dict()}  # fmt: skip


def run_classical(
    cohort: str | Path,
    out: str | Path,
    modes,
    samples: int,
    *,
    subjects: list[str] | None = None,
    seed: int = 0,
    config: RegistrationConfig | None = None,
    analyze: bool = True,
    progress: bool = True,
) -> Path:
    """Segment every chosen subject with the baseline and each sample; returns ``out``.

    Everything is validated before the first registration: the modes and sample count, the
    cohort, every subject's volumes, the registration settings, and (when ``out`` already holds
    a classical run) that the run was made with the same cohort, subjects, seed and settings.
    """
    from harness.data.cohort import load_cohort

    config = config or RegistrationConfig()
    config.check()
    plan = plan_samples(modes, samples, seed)
    cohort = Path(cohort)
    loaded = load_cohort(cohort)
    data = load_subjects(loaded, subjects)
    run = RunDir(out, kind=RunKind.CLASSICAL)
    settings = run_config(cohort, data, seed, config)
    run.completed_with(settings, "a classical run")
    previous = run.manifest().get("members", []) if run.exists() else []
    members = sorted(set(previous) | {s.name for s in plan}, key=_member_order)
    run.start("harness classical run", settings, members=members)
    with run.failure_recorded():
        template, source = _template(run, data[0])
        labels = _cohort_labels(loaded)
        _segment_all(run.path, plan, data, template, source, labels, config, progress)
        # another process may have added members to the same run meanwhile
        now = set(run.manifest().get("members", [])) | set(members)
        run.finish(members=sorted(now, key=_member_order))
    if analyze:
        from harness.ensemble.analyze import analyze_ensemble

        analyze_ensemble(run.path, cohort)
    return run.path


def _member_order(name: str):
    return (name != BASELINE, name)


def _cohort_labels(cohort) -> np.ndarray:
    if cohort.labels is None:
        raise InputError(
            f"cohort {cohort.root} must have {catalogue.LABELS.name} (the label space)"
        )
    table = cohort.labels
    return table.loc[table["kind"] != "background", "label"].to_numpy()


def _template(run: RunDir, first: SubjectData):
    """Build (and store) the template on the cohort grid and the 1 mm atlas label source."""
    from harness.classical.pipeline import LabelSource
    from harness.classical.template import build_template, grid_of
    from harness.classical.transforms import normalised_map
    from harness.data.atlas import load_atlas
    from harness.data.io import save_volume

    grid, voxel = grid_of(first.image.shape, first.affine)
    template = build_template(grid, voxel)
    save_volume(
        run.file(catalogue.CLASSICAL_TEMPLATE_T1), template.image.astype(np.uint8), template.affine
    )
    save_volume(
        run.file(catalogue.CLASSICAL_TEMPLATE_DSEG),
        template.labels.astype(np.int16),
        template.affine,
    )
    atlas = load_atlas()
    to_atlas = normalised_map(
        template.labels.shape, template.affine, atlas.labels.shape, atlas.affine
    )
    return template, LabelSource.from_labels(atlas.labels, to_atlas)


def _start_member(ens: Path, sample: Sample, config: RegistrationConfig) -> RunDir:
    member = RunDir(member_dir(ens, sample.name), kind=RunKind.CLASSICAL_SAMPLE)
    settings = {"mode": sample.mode.value, "seed": sample.seed, "registration": config.to_dict()}
    member.completed_with(settings, "a classical sample")
    member.start("harness classical run", settings)
    return member


def _segment_all(ens, plan, data, template, source, labels, config, progress) -> None:
    from tqdm.auto import tqdm

    todo = [
        (s, d) for d in data for s in plan if not prediction_path(ens, s.name, d.subject).exists()
    ]
    members = {s.name: _start_member(ens, s, config) for s in plan}
    times: dict[str, list[dict]] = {name: _read_times(m) for name, m in members.items()}
    bar = tqdm(total=len(plan) * len(data), initial=len(plan) * len(data) - len(todo),
               desc="classical", unit="registration", disable=not progress)  # fmt: skip
    for sample, subject in todo:
        bar.set_postfix_str(f"{sample.name} {subject.subject}")
        seconds = _segment_one(ens, sample, subject, template, source, labels, config)
        times[sample.name].append({"subject": subject.subject, "seconds": seconds,
                                   "threads": _threads()})  # fmt: skip
        members[sample.name].write_table(
            catalogue.REGISTRATION_TIMES, pd.DataFrame(times[sample.name])
        )
        bar.update()
    bar.close()
    for member in members.values():
        member.finish(subjects=[d.subject for d in data])


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _read_times(member: RunDir) -> list[dict]:
    path = member.file(catalogue.REGISTRATION_TIMES)
    return pd.read_csv(path, sep="\t").to_dict("records") if path.exists() else []


def _segment_one(ens, sample, subject, template, source, labels, config) -> float:
    from harness.classical.pipeline import segment
    from harness.classical.template import to_label_space
    from harness.data.io import save_volume

    start = time.perf_counter()
    seg = segment(subject.image, template.image, source, config, mode=sample.mode, seed=sample.seed)
    seconds = time.perf_counter() - start
    seg = to_label_space(seg, labels)
    save_volume(prediction_path(ens, sample.name, subject.subject), seg, subject.affine)
    return seconds
