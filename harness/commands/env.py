"""``harness env``: print the environment fingerprint."""

from __future__ import annotations

import json

import click

from harness.commands.options import OutputFile


@click.command()
@click.option("--output", "-o", type=OutputFile(), help="Also write the JSON here.")
def env(output: str | None) -> None:
    """Print the environment fingerprint (Python, torch, CUDA, cuDNN, GPU, CPU, BLAS, image, commit)."""
    from harness.fingerprint import fingerprint
    from harness.runs import atomic_write_json

    info = fingerprint()
    click.echo(json.dumps(info, indent=2, sort_keys=True))
    if output:
        atomic_write_json(output, info)
