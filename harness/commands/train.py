"""``harness train``: train FastSurferCNN views on a cohort, with optional stochastic arithmetic."""

from __future__ import annotations

import click


def parse_views(text: str) -> tuple[str, ...]:
    """``"axial,coronal"`` -> ("axial", "coronal")."""
    return tuple(v.strip().lower() for v in text.split(",") if v.strip())


def training_options(command):
    """The options ``harness train`` and ``harness ensemble run`` share (one definition)."""
    options = [
        click.option(
            "--views", default="axial", show_default=True,
            help="Comma-separated: axial,coronal,sagittal.",
        ),
        click.option(
            "--preset", type=click.Choice(["full", "tiny"]), default="full", show_default=True,
            help="Network size: published (64 filters, 5x5, depth 4) or tiny (8, 3x3, depth 2).",
        ),
        click.option("--epochs", type=int, default=30, show_default=True),
        click.option("--batch-size", type=int, default=16, show_default=True),
        click.option("--lr", type=float, default=0.01, show_default=True, help="Adam learning rate."),
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
    return command


@click.command()
@click.option("--cohort", required=True, type=click.Path(file_okay=False), help="Cohort directory.")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Run directory (resumable)."
)
@click.option(
    "--mode",
    type=click.Choice(["ieee", "rr", "sr", "ud"]),
    default="ieee",
    show_default=True,
    help="Arithmetic of forward, backward and optimizer step.",
)
@click.option("--precision", type=int, default=None, help="Virtual precision t (rr, sr).")
@click.option(
    "--engine",
    type=click.Choice(["op", "kernel"]),
    default="op",
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
