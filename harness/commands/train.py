"""``harness train``: train FastSurferCNN views on a cohort, with optional stochastic arithmetic."""

from __future__ import annotations

import click

from harness.commands.options import OutputDir, enum_choice, threads_option
from harness.perturb.modes import Mode
from harness.train.config import Engine
from harness.train.schedule import Schedule


def parse_views(text: str) -> tuple[str, ...]:
    """``"axial,coronal"`` -> ("axial", "coronal")."""
    return tuple(v.strip().lower() for v in text.split(",") if v.strip())


def parse_milestones(text: str) -> tuple[float, ...]:
    """``"0.5,0.75"`` -> (0.5, 0.75); an error naming the option otherwise."""
    from harness.errors import InputError

    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(
            f"--milestones must be comma-separated fractions of the run, e.g. 0.67, got {text!r}"
        ) from None


def schedule_settings(schedule, step_size, gamma, milestones, cycles, min_lr_ratio) -> dict:
    """The :class:`harness.train.TrainConfig` schedule fields from the shared options."""
    return {
        "schedule": schedule, "step_size": step_size, "gamma": gamma,
        "milestones": parse_milestones(milestones), "cycles": cycles,
        "min_lr_ratio": min_lr_ratio,
    }  # fmt: skip


def training_options(command):
    """The options ``harness train`` and ``harness ensemble run`` share (one definition)."""
    options = [
        click.option(
            "--views", default="axial", show_default=True,
            help="Comma-separated: axial,coronal,sagittal.",
        ),
        click.option(
            "--preset", type=click.Choice(["full", "small", "tiny"]), default="full",
            show_default=True,
            help="Network size: published (64 filters, 5x5, depth 4), small for CPU studies "
            "(32, 3x3, depth 3) or tiny for tests (8, 3x3, depth 2).",
        ),
        click.option("--epochs", type=int, default=30, show_default=True),
        click.option("--batch-size", type=int, default=16, show_default=True),
        click.option("--lr", type=float, default=0.01, show_default=True, help="Adam learning rate."),
        click.option(
            "--schedule", type=enum_choice(Schedule), default=None,
            help="Learning-rate schedule: v1 (x gamma every --step-size epochs), milestones "
            "(x gamma at each --milestones fraction of the run) or cosine (warm restarts, "
            "--cycles per run) [default: v1 for full/tiny, milestones for small].",
        ),
        click.option("--step-size", type=int, default=5, show_default=True, help="v1 schedule."),
        click.option(
            "--gamma", type=float, default=None,
            help="Rate multiplier of v1/milestones [default: 0.3 v1, 0.1 milestones].",
        ),
        click.option(
            "--milestones", default="0.667", show_default=True,
            help="Comma-separated fractions of the run (milestones schedule).",
        ),
        click.option("--cycles", type=int, default=1, show_default=True, help="Cosine schedule."),
        click.option(
            "--min-lr-ratio", type=float, default=0.0, show_default=True,
            help="Cosine schedule: lowest rate as a fraction of --lr.",
        ),
        click.option(
            "--seed", type=int, default=0, show_default=True,
            help="Base seed of init, data order, augmentation and MCA streams.",
        ),
        click.option(
            "--train-subjects", type=int, default=None,
            help="Train on the first K participants [default: half the cohort].",
        ),
        click.option(
            "--predict", type=click.Choice(["held-out", "all"]), default="held-out",
            show_default=True, help="Subjects to segment after training.",
        ),
        click.option("--save-prob", is_flag=True, help="Also write float16 <subject>_prob.npy."),
        click.option(
            "--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True
        ),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return threads_option(command)


@click.command()
@click.option("--cohort", required=True, type=click.Path(file_okay=False), help="Cohort directory.")
@click.option(
    "--out", required=True, type=OutputDir(), help="Run directory (resumable)."
)
@click.option(
    "--mode",
    type=enum_choice(Mode),
    default=Mode.IEEE.value,
    show_default=True,
    help="Arithmetic of forward, backward and optimizer step.",
)
@click.option("--precision", type=int, default=None, help="Virtual precision t (rr, sr).")
@click.option(
    "--engine",
    type=enum_choice(Engine, exclude=[Engine.NONE]),
    default=Engine.OP.value,
    show_default=True,
    help="op: every ATen op perturbed; kernel: instrumented conv/BN kernels (ieee, rr, sr).",
)
@training_options
def train(
    cohort: str,
    out: str,
    views: str,
    preset: str,
    epochs: int,
    batch_size: int,
    lr: float,
    schedule: str | None,
    step_size: int,
    gamma: float | None,
    milestones: str,
    cycles: int,
    min_lr_ratio: float,
    mode: str,
    precision: int | None,
    engine: str,
    seed: int,
    train_subjects: int | None,
    predict: str,
    save_prob: bool,
    device: str,
    quiet: bool,
) -> None:
    """Train FastSurferCNN (one network per view) on COHORT and segment the held-out subjects."""
    from harness.errors import InputError
    from harness.perturb.seeds import SeedPlan
    from harness.train import TrainConfig, train_run

    if seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed}")
    plan = SeedPlan.derive(member=0, base_seed=seed, vary="all")
    config = TrainConfig(
        views=parse_views(views), preset=preset, epochs=epochs, batch_size=batch_size, lr=lr,
        **schedule_settings(schedule, step_size, gamma, milestones, cycles, min_lr_ratio),
        mode=mode, precision=precision, engine=engine, seeds=plan, mca_seed=plan.mca,
        device=device,
    )  # fmt: skip
    path = train_run(
        cohort, out, config, train_subjects=train_subjects, predict=predict,
        save_probabilities=save_prob, progress=not quiet,
    )  # fmt: skip
    from harness.runs import RunDir

    manifest = RunDir(path).manifest()
    last = {row["view"]: row for row in manifest.get("history", [])}
    losses = ", ".join(f"{v} loss {r['loss']:.4f}" for v, r in last.items())
    n = len(manifest["config"]["predict_subjects"])
    click.echo(
        f"trained {', '.join(config.views)} ({losses}); {n} predictions in {path}/predictions"
    )
