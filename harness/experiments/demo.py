"""The main job: every part of harness on the embedded default, end to end, resumable.

Stages, in order (each writes its own run directory under the output folder and is skipped when that
directory is already complete, so an interrupted demo resumes where it stopped; a stage that trains
also resumes inside itself from its last checkpoint):

mode-sweep → granularity → cohort (synthetic) → ensemble (baseline, seed and mca members) →
ensemble analysis → kernel microbenchmarks (pytest-benchmark) → introspection → brain age → report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from harness.errors import HarnessError
from harness.executors import Executor
from harness.runs import RunDir, RunKind, catalogue
from harness.runs.layout import ANALYSIS, members_dir


@dataclass(frozen=True)
class DemoSize:
    """How big each stage is; ``small`` runs on a laptop CPU in minutes, ``full`` is for a GPU."""

    subjects: int = 30
    grid: int = 32
    #: the small preset with the run-relative milestone schedule: members that segment (Dice
    #: to truth ~0.6-0.75 on this grid) rather than the tiny net's ~0.2; 5-7 s per epoch on one
    #: thread of a loaded 2-core machine
    train_subjects: int = 8
    preset: str = "small"
    epochs: int = 10
    batch_size: int = 8
    views: tuple[str, ...] = ("axial",)
    #: ensemble factors; on a CPU the op-level engine costs several times IEEE per step (sr and
    #: rr compute exact fp64 results), so the small demo's numerical factor is up-down
    factors: tuple[tuple[str, int], ...] = (("seed", 3), ("mca-ud", 2))
    sweep_repeats: int = 3
    sweep_steps: int = 10
    granularity_repeats: int = 8
    introspect_epochs: int = 4
    introspect_batch: int | None = None  # default of the demo (16)
    brainage_splits: int = 4
    kernel_cases: str = "cpu-small-3x3"
    #: the atlas-registration pipeline beside the CNN: the first predicted subjects, under the
    #: ensemble's numerical mode (up-down on a CPU: its cost is closest to IEEE)
    classical_subjects: int = 6
    classical_mode: str = "ud"
    classical_samples: int = 3


SIZES = {
    "small": DemoSize(),
    "full": DemoSize(
        subjects=40,
        grid=256,
        train_subjects=10,
        preset="full",
        epochs=5,
        batch_size=16,
        views=("axial", "coronal", "sagittal"),
        factors=(("seed", 5), ("mca-sr", 5)),
        sweep_repeats=10,
        sweep_steps=50,
        introspect_epochs=10,
        brainage_splits=5,
        kernel_cases="fastsurfer",
        classical_subjects=10,
        classical_mode="sr",
        classical_samples=5,
    ),
    # the smallest run that still exercises every stage (tests)
    "tiny": DemoSize(
        subjects=12,
        grid=24,
        train_subjects=3,
        preset="tiny",
        epochs=1,
        factors=(("seed", 2), ("mca-ud", 2)),
        sweep_repeats=2,
        sweep_steps=2,
        granularity_repeats=2,
        introspect_epochs=1,
        introspect_batch=6,
        brainage_splits=2,
        classical_subjects=2,
        classical_samples=2,
    ),
}

#: stages whose run directory is not ``OUT/<stage>``
STAGE_DIRS = {"analysis": f"ensemble/{ANALYSIS}", "classical": "classical/compare"}
#: the kind of each stage's run directory
STAGE_KINDS = {
    "mode-sweep": RunKind.SWEEP,
    "granularity": RunKind.GRANULARITY,
    "cohort": RunKind.COHORT,
    "ensemble": RunKind.ENSEMBLE,
    "analysis": RunKind.ENSEMBLE_ANALYSIS,
    "classical": RunKind.CLASSICAL_COMPARISON,
    "kernel-bench": RunKind.KERNEL_BENCH,
    "introspect": RunKind.INTROSPECT,
    "brainage": RunKind.BRAINAGE,
    "report": RunKind.REPORT,
}


@dataclass
class DemoContext:
    out: Path
    device: str = "cpu"
    full: bool = False
    seed: int = 0
    size_name: str | None = None  # default: "full" with full, else "small"
    executor: Executor | None = None  # runs the sweep's and the ensemble's jobs (default: serial)

    @property
    def size(self) -> DemoSize:
        return SIZES[self.size_name or ("full" if self.full else "small")]

    def stage_dir(self, name: str) -> RunDir:
        return RunDir(self.out / STAGE_DIRS.get(name, name), kind=STAGE_KINDS[name])

    def path(self, name: str) -> Path:
        return self.out / name


def stage_mode_sweep(ctx: DemoContext) -> str:
    from harness.experiments.mode_sweep import SweepConfig, config_dict, run_mode_sweep

    size = ctx.size
    cfg = SweepConfig(
        device=ctx.device, seed=ctx.seed, repeats=size.sweep_repeats, steps=size.sweep_steps
    )
    if ctx.full:
        cfg.image_size = 64
    run = ctx.stage_dir("mode-sweep")
    run.start("harness demo: mode sweep", config_dict(cfg))
    frame = run_mode_sweep(cfg, executor=ctx.executor)
    run.write_table(catalogue.SWEEP, frame)
    run.finish()
    return format_table(frame)


def stage_granularity(ctx: DemoContext) -> str:
    from harness.experiments.granularity import GranularityConfig, run_granularity

    cfg = GranularityConfig(seed=ctx.seed, repeats=ctx.size.granularity_repeats)
    run = ctx.stage_dir("granularity")
    run.start("harness demo: op-level vs kernel-level", cfg.to_dict())
    frame = run_granularity(cfg)
    run.write_table(catalogue.GRANULARITY, frame)
    run.finish()
    return format_table(frame)


def stage_cohort(ctx: DemoContext) -> str:
    from harness.data.synth import generate_cohort

    size = ctx.size
    cohort = generate_cohort(size.subjects, ctx.path("cohort"), seed=ctx.seed, grid=size.grid)
    return f"{len(cohort)} synthetic subjects on a {size.grid}^3 grid in {ctx.path('cohort')}"


def stage_ensemble(ctx: DemoContext) -> str:
    from harness.ensemble import run_ensemble

    size = ctx.size
    run_ensemble(
        ctx.path("cohort"),
        ctx.path("ensemble"),
        dict(size.factors),
        views=size.views,
        preset=size.preset,
        epochs=size.epochs,
        batch_size=size.batch_size,
        seed=ctx.seed,
        train_subjects=size.train_subjects,
        device=ctx.device,
        executor=ctx.executor,
    )
    members = sorted(p.name for p in members_dir(ctx.path("ensemble")).iterdir())
    return f"members: {', '.join(members)}"


def stage_analysis(ctx: DemoContext) -> str:
    import pandas as pd

    from harness.ensemble.analyze import analyze_ensemble

    folder = analyze_ensemble(ctx.path("ensemble"), ctx.path("cohort"))
    summary = pd.read_csv(catalogue.STABILITY_SUMMARY.path(folder), sep="\t")
    summary = summary[summary["kind"].isin(["cortical", "subcortical"])]
    table = pd.DataFrame({
        "factor": summary["factor"], "kind": summary["kind"], "members": summary["n_members"],
        "min pairwise Dice": _with_interval(summary, "min_dice"),
        "Dice to truth": _with_interval(summary, "dice_to_truth"),
    })  # fmt: skip
    n = int(summary["n_subjects"].iloc[0]) if len(summary) else 0
    return (
        "median over regions of the minimum pairwise Dice across members, beside the members' "
        f"Dice to truth (95% bootstrap intervals over {n} subjects):\n" + format_table(table)
    )


def stage_classical(ctx: DemoContext) -> str:
    """The traditional pipeline on the ensemble's first predicted subjects, compared with it."""
    import pandas as pd

    from harness.classical.compare import compare_runs
    from harness.classical.run import run_classical

    size = ctx.size
    predicted = RunDir(ctx.path("ensemble")).manifest()["config"]["predict_subjects"]
    classical = run_classical(
        ctx.path("cohort"), ctx.path("classical"), [size.classical_mode], size.classical_samples,
        subjects=list(predicted[: size.classical_subjects]), seed=ctx.seed,
    )  # fmt: skip
    folder = compare_runs(
        classical, ctx.path("ensemble"), ctx.stage_dir("classical").path,
        cnn_factors=[factor for factor, _ in size.factors],
    )  # fmt: skip
    summary = pd.read_csv(catalogue.CLASSICAL_COMPARISON.path(folder), sep="\t")
    summary = summary[summary["kind"].isin(["cortical", "subcortical"]) & summary["min_dice"].notna()]
    table = pd.DataFrame({
        "pipeline": summary["pipeline"], "factor": summary["factor"], "kind": summary["kind"],
        "subjects": summary["n_subjects"], "min pairwise Dice": _with_interval(summary, "min_dice"),
    })  # fmt: skip
    return (
        "atlas-registration pipeline beside the CNN, median over regions of the minimum pairwise "
        "Dice (95% bootstrap intervals):\n" + format_table(table)
    )


def _with_interval(frame, name: str):
    return [
        f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
        for v, lo, hi in zip(frame[name], frame[f"{name}_low"], frame[f"{name}_high"], strict=True)
    ]


def stage_kernel_bench(ctx: DemoContext) -> str:
    """The kernel microbenchmarks through pytest-benchmark, as a user would run them.

    The suite ships inside the package (``harness/containers/suites``, the images' copy of
    ``benchmarks/``), so an installed harness runs it as a source checkout does.
    """
    from harness.containers.images import BENCH_DIR

    suite = BENCH_DIR / "test_bench_kernels.py"
    if not suite.exists():
        raise HarnessError(f"kernel benchmarks not found at {suite}: reinstall harness")
    run = ctx.stage_dir("kernel-bench")
    cases = ctx.size.kernel_cases
    run.start("harness demo: kernel microbenchmarks", {"suite": suite.name, "cases": cases})
    target = run.file(catalogue.KERNEL_BENCH)
    partial = target.with_name(target.name + ".partial")
    code, log = run_pytest([str(suite), "-k", cases, "--benchmark-json", str(partial)])
    if code != 0:
        raise HarnessError(f"kernel benchmarks failed (pytest exit status {code}):\n{log[-4000:]}")
    partial.replace(target)
    run.finish(outputs=[target.name])
    return _kernel_table(target)


def run_pytest(args: list[str]) -> tuple[int, str]:
    """Run pytest in this process on shipped suites; return its exit status and its output.

    No configuration file is read (the suites need none, and an installed package has no
    checkout to find one in), nothing is cached, and the suites are imported without changing
    ``sys.path``.
    """
    import contextlib
    import io
    import os

    import pytest

    options = ["-c", os.devnull, "--rootdir", str(Path(args[0]).parent), "-p", "no:cacheprovider",
               "--import-mode=importlib", "-q", "--no-header"]  # fmt: skip
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = pytest.main([*args, *options])
    return int(code), output.getvalue()


def _kernel_table(path: Path) -> str:
    import json

    import pandas as pd

    rows = []
    for bench in json.loads(path.read_text())["benchmarks"]:
        info = bench["extra_info"]
        rows.append(
            {
                "op": info.get("op"),
                "case": info.get("case"),
                "implementation": f"{info.get('implementation')}-{info.get('mode')}",
                "ms": bench["stats"]["mean"] * 1e3,
                "GFLOP/s": info.get("gflops"),
                "sig bits (median)": info.get("sig_bits_median"),
            }
        )
    return format_table(pd.DataFrame(rows))


def stage_introspect(ctx: DemoContext) -> str:
    from harness.experiments.introspect_demo import Demo, IntrospectConfig, run_demo

    cfg = IntrospectConfig(
        demo=Demo.VOLUMES,
        epochs=ctx.size.introspect_epochs,
        batch_size=ctx.size.introspect_batch,
        seed=ctx.seed,
        device=ctx.device,
        cohort=str(ctx.path("cohort").resolve()),
    )
    summary = run_demo(cfg, ctx.path("introspect"), progress=True)
    return "\n".join(
        f"{key}: {value}" for key, value in summary.items() if not isinstance(value, dict)
    )


def stage_brainage(ctx: DemoContext) -> str:
    from harness.brainage import ProtocolConfig, run_brainage
    from harness.brainage.io import read_ensemble

    data = read_ensemble(ctx.path("ensemble"))  # every member: seed and numerical
    config = ProtocolConfig(n_splits=ctx.size.brainage_splits, max_combinations=5, seed=ctx.seed)
    run_brainage(data, ctx.path("brainage"), config, inputs={"ensemble": str(ctx.path("ensemble"))})
    import pandas as pd

    summary = pd.read_csv(catalogue.BRAINAGE_SUMMARY.path(ctx.path("brainage")), sep="\t")
    columns = ["regressor", "augmentation", "k", "mae_mean", "mae_ci_low", "mae_ci_high"]
    return "brain-age MAE (years) by ensemble size k:\n" + format_table(summary[columns])


def stage_report(ctx: DemoContext) -> str:
    from harness.report import build_report

    run = ctx.stage_dir("report")
    # a stage whose directory lies inside another's is ingested with it
    inputs = [ctx.path(name) for name, _ in STAGES if name != "report" and name != "analysis"]
    run.start("harness demo: report", {"inputs": [str(p) for p in inputs]})
    html, md = build_report(
        [p for p in inputs if p.exists()], run.file(catalogue.REPORT_HTML),
        title="harness demo: stability report",
    )  # fmt: skip
    run.finish(outputs=[html.name, md.name])
    return f"report: {html}\nsummary: {md}"


def format_table(frame) -> str:
    return frame.to_string(index=False, float_format=lambda v: f"{v:.3g}")


STAGES: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("mode-sweep", stage_mode_sweep),
    ("granularity", stage_granularity),
    ("cohort", stage_cohort),
    ("ensemble", stage_ensemble),
    ("analysis", stage_analysis),
    ("classical", stage_classical),
    ("kernel-bench", stage_kernel_bench),
    ("introspect", stage_introspect),
    ("brainage", stage_brainage),
    ("report", stage_report),
]


def run_demo(ctx: DemoContext, echo=click.echo) -> list[str]:
    """Run every stage not yet complete; returns the names of the stages run now."""
    ctx.out.mkdir(parents=True, exist_ok=True)
    ran = []
    for name, stage in STAGES:
        run = ctx.stage_dir(name)
        if run.is_complete():
            echo(f"[{name}] complete, kept ({run.path})")
            continue
        echo(f"[{name}] running ...")
        summary = stage(ctx)
        ran.append(name)
        if summary:
            echo(summary)
    return ran
