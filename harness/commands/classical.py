"""``harness classical run|reference|compare``: the atlas-registration pipeline beside the CNN."""

from __future__ import annotations

import click

from harness.classical.similarity import Similarity
from harness.commands.options import OutputDir, enum_choice, threads_option
from harness.perturb.modes import Mode

_COHORT = click.option("--cohort", required=True, type=click.Path(file_okay=False),
                       help="Cohort directory (harness data synth layout).")  # fmt: skip
_SUBJECTS = click.option(
    "--subjects", default=None,
    help="Comma-separated participant ids (default: every subject of the cohort).",
)  # fmt: skip


def parse_subjects(value: str | None) -> list[str] | None:
    """``sub-0001,sub-0002`` -> a list (None when not given)."""
    if value is None:
        return None
    from harness.errors import InputError

    ids = [s.strip() for s in value.split(",") if s.strip()]
    if not ids:
        raise InputError(f"--subjects must name one or more participant ids, got {value!r}")
    return ids


def _counts(name: str, value: str) -> tuple[int, ...]:
    from harness.errors import InputError

    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise InputError(f"{name} must be comma-separated integers, got {value!r}") from None


@click.group()
def classical() -> None:
    """Atlas-registration segmentation (affine + SVF in torch) under IEEE and MCA arithmetic."""


@classical.command()
@_COHORT
@click.option("--out", required=True, type=OutputDir(), help="Run directory RUN.")
@click.option("--mode", "modes", multiple=True, required=True,
              type=enum_choice(Mode, exclude=[Mode.IEEE]),
              help="Arithmetic of the samples; repeatable (the baseline member is IEEE).")  # fmt: skip
@click.option("--samples", type=int, default=5, show_default=True, help="Members per mode.")
@_SUBJECTS
@click.option("--seed", type=int, default=0, show_default=True,
              help="Base seed of the members' engine seeds.")  # fmt: skip
@click.option("--similarity", type=enum_choice(Similarity), default="ncc",
              show_default=True, help="Similarity the registration minimises.")  # fmt: skip
@click.option("--affine-iterations", default="60,10", show_default=True,
              help="Adam iterations of the affine stage per level (coarse to fine).")  # fmt: skip
@click.option("--deform-iterations", default="60,20", show_default=True,
              help="Adam iterations of the deformable stage per level (coarse to fine).")  # fmt: skip
@click.option("--no-analyze", is_flag=True,
              help="Skip the analysis (run `harness ensemble analyze RUN` later).")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress bar.")
@threads_option
def run(
    cohort, out, modes, samples, subjects, seed, similarity, affine_iterations, deform_iterations,
    no_analyze, quiet,
) -> None:  # fmt: skip
    """Register the template to every subject once under IEEE (member baseline) and SAMPLES
    times per mode (members rr-01 ..), then analyse their agreement into RUN/analysis/."""
    from harness.classical.register import RegistrationConfig
    from harness.classical.run import run_classical

    config = RegistrationConfig(
        similarity=Similarity.parse(similarity),
        affine_iterations=_counts("--affine-iterations", affine_iterations),
        deform_iterations=_counts("--deform-iterations", deform_iterations),
    )
    path = run_classical(
        cohort, out, list(modes), samples, subjects=parse_subjects(subjects), seed=seed,
        config=config, analyze=not no_analyze, progress=not quiet,
    )  # fmt: skip
    where = f"; analysis in {path}/analysis" if not no_analyze else ""
    click.echo(f"classical run in {path}{where}")


@classical.command()
@_COHORT
@click.option("--out", required=True, type=OutputDir(), help="Reference run directory.")
@_SUBJECTS
@click.option("--quiet", is_flag=True, help="No progress bar.")
@threads_option
def reference(cohort, out, subjects, quiet) -> None:
    """The same template registered with SimpleITK (affine + demons, unperturbed); Dice to
    truth per subject and region."""
    from harness.classical.reference import run_reference

    path, summary = run_reference(cohort, out, subjects=parse_subjects(subjects),
                                  progress=not quiet)  # fmt: skip
    click.echo(f"SimpleITK reference in {path}; median Dice to truth {summary}")


@classical.command()
@click.option("--classical", "classical_run", required=True, type=click.Path(file_okay=False),
              help="Classical run directory (with analysis/).")  # fmt: skip
@click.option("--cnn", required=True, type=click.Path(file_okay=False),
              help="CNN ensemble directory or its analysis/ directory.")  # fmt: skip
@click.option("--reference", "reference_run", type=click.Path(file_okay=False), default=None,
              help="SimpleITK reference run directory.")  # fmt: skip
@click.option("--out", required=True, type=OutputDir(), help="Comparison run directory.")
def compare(classical_run, cnn, reference_run, out) -> None:
    """Per-region stability of the classical pipeline beside the CNN ensembles' (table + figure)."""
    from harness.classical.compare import compare_runs

    path = compare_runs(classical_run, cnn, out, reference=reference_run)
    click.echo(f"comparison in {path}")
