"""``harness segment``: FastSurferCNN inference on a cohort or a scan, optionally perturbed."""

from __future__ import annotations

import click

from harness.commands.options import OutputDir, enum_choice, threads_option
from harness.perturb.modes import Mode
from harness.segment.outputs import OutputFormat


def _checkpoint_option(view: str):
    return click.option(
        f"--checkpoint-{view}", f"checkpoint_{view}", type=click.Path(dir_okay=False),
        default=None, help=f"{view.capitalize()} checkpoint (harness .pt or FastSurfer v1 .pkl).",
    )  # fmt: skip


@click.command()
@click.option("--cohort", type=click.Path(file_okay=False), default=None,
              help="Cohort directory (harness data import / synth).")  # fmt: skip
@click.option("--scan", type=click.Path(dir_okay=False), default=None,
              help="One T1 image (.nii, .nii.gz, .mgz), conformed first.")  # fmt: skip
@click.option("--out", "-o", required=True, type=OutputDir(), help="Run directory.")
@_checkpoint_option("axial")
@_checkpoint_option("coronal")
@_checkpoint_option("sagittal")
@click.option(
    "--checkpoints", type=click.Path(file_okay=False), default=None,
    help="Directory with <view>.pt (a harness train run) or FastSurfer v1's "
    "<View>_Weights_FastSurferCNN/ckpts/Epoch_30_training_state.pkl.",
)  # fmt: skip
@click.option("--mode", type=enum_choice(Mode), default="ieee",
              show_default=True, help="Arithmetic of the perturbed samples.")  # fmt: skip
@click.option("--samples", type=int, default=None,
              help="Perturbed samples per subject [default: 0 with ieee, 10 otherwise].")  # fmt: skip
@click.option("--precision", type=int, default=None, help="Virtual precision t (rr, sr).")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed of the samples.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True, help="Slices per batch.")
@click.option("--format", "output_format", type=enum_choice(OutputFormat), default="nifti",
              show_default=True, help="Format of the label maps in the input's space.")  # fmt: skip
@click.option("--size", type=int, default=256, show_default=True,
              help="--scan: conformed grid edge in voxels.")  # fmt: skip
@click.option("--voxel-size", type=float, default=1.0, show_default=True,
              help="--scan: conformed voxel edge in mm.")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress bar.")
@threads_option
def segment(
    cohort, scan, out, checkpoint_axial, checkpoint_coronal, checkpoint_sagittal, checkpoints,
    mode, samples, precision, seed, device, batch_size, output_format, size, voxel_size, quiet,
) -> None:  # fmt: skip
    """Segment a cohort or one scan with FastSurferCNN (IEEE, or perturbed samples)."""
    from pathlib import Path

    import pandas as pd

    from harness.enums import parse_enum
    from harness.runs import catalogue
    from harness.segment.run import SegmentConfig, checkpoints_in
    from harness.segment.run import segment as run_segment

    views = checkpoints_in(checkpoints) if checkpoints else {}
    given = {"axial": checkpoint_axial, "coronal": checkpoint_coronal,
             "sagittal": checkpoint_sagittal}  # fmt: skip
    views |= {view: Path(path) for view, path in given.items() if path}
    parsed = parse_enum(Mode, mode, "--mode")
    if samples is None:
        samples = 0 if parsed is Mode.IEEE else 10
    config = SegmentConfig(checkpoints=views, mode=parsed, samples=samples, precision=precision,
                           seed=seed, device=device, batch_size=batch_size,
                           output_format=parse_enum(OutputFormat, output_format, "--format"))  # fmt: skip
    path = run_segment(out, config, cohort=cohort, scan=scan, size=size, voxel_size=voxel_size,
                       progress=not quiet)  # fmt: skip
    table = pd.read_csv(catalogue.SEGMENT_SUBJECTS.path(path), sep="\t")
    click.echo(table.to_string(index=False))
    click.echo(
        f"segmented {len(table)} subject(s), views {','.join(sorted(views))}, mode {mode} x "
        f"{samples} sample(s); outputs in {Path(path) / 'outputs'}"
    )
