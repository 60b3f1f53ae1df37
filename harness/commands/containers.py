"""``harness containers``: base image, image builds, runs and containerised benchmarks."""

from __future__ import annotations

import contextlib

import click

from harness.commands.options import OutputDir, OutputFile, enum_choice, executor_options
from harness.containers.bench import Suite
from harness.containers.images import ImageKind, TorchVariant


@click.group()
def containers():
    """Docker images of harness (standard, Verificarlo), driven through docker-py.

    Runs use no network; builds install from a wheelhouse made on this host. Needs a running
    Docker engine (e.g. `dockerd --bridge=none --iptables=false --ip-masq=false &`).
    """


@containers.command()
@click.option("--tag", default="harness/base:bookworm", show_default=True, help="Tag to create.")
@click.option("--rebuild", is_flag=True, help="Make the image again even if the tag exists.")
def base(tag: str, rebuild: bool) -> None:
    """Make the Debian bookworm base image with mmdebstrap (for machines without a registry)."""
    from harness.containers import make_base

    image_id = make_base(tag, rebuild=rebuild)
    click.echo(f"{tag} {image_id}")


@containers.command()
@click.argument("kind", type=enum_choice(ImageKind))
@click.option("--torch", "torch_version", default="2.13.0", show_default=True,
              help="torch release installed in the image.")  # fmt: skip
@click.option("--torch-variant", type=enum_choice(TorchVariant), default=TorchVariant.CPU.value,
              show_default=True, help="CPU wheel, or the CUDA build (run it with GPUs).")  # fmt: skip
@click.option("--base", "base_image", default=None,
              help="Image to build FROM (default: harness/base:bookworm for standard, the "
                   "standard image for verificarlo; e.g. python:3.11-slim-bookworm).")  # fmt: skip
@click.option("--tag", default=None, help="Tag of the new image (default from kind and torch).")
@click.option("--build-arg", "build_args", multiple=True, metavar="NAME=VALUE",
              help="Extra Dockerfile build argument (repeatable).")  # fmt: skip
@click.option("--quiet", is_flag=True, help="Do not show build steps.")
@click.option("--verificarlo-tarball", "vfc_tarball", default=None, type=click.Path(dir_okay=False),
              help="verificarlo: build Verificarlo from this source tarball instead of the "
                   "upstream tag (offline builds).")  # fmt: skip
def build(kind, torch_version, torch_variant, base_image, tag, build_args, quiet,
          vfc_tarball) -> None:  # fmt: skip
    """Build the standard or the Verificarlo image; prints its tag."""
    from harness.containers import build_image
    from harness.containers.bench import parse_env
    from harness.errors import InputError

    args = parse_env(build_args, option="--build-arg")
    files = None
    if vfc_tarball is not None:
        if kind != "verificarlo":
            raise InputError(f"--verificarlo-tarball applies to the verificarlo image, not {kind!r}")
        from harness.containers.verificarlo import tarball_inputs

        files, tar_args = tarball_inputs(vfc_tarball)
        args = {**tar_args, **args}
    tag = build_image(kind, tag=tag, base=base_image, torch=torch_version, build_args=args,
                      variant=torch_variant, progress=not quiet,
                      context_files=files)  # fmt: skip
    click.echo(tag)


@containers.command(context_settings={"ignore_unknown_options": True})
@click.argument("image")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE", help="Environment variable.")
@click.option("--mount", "mounts", multiple=True, metavar="HOST:CONTAINER",
              help="Bind-mount a host folder (repeatable).")  # fmt: skip
@click.option("--timeout", "timeout_s", type=float, default=None, help="Kill after this many s.")
@click.option("--gpus", is_flag=True, help="Give the container every GPU (CUDA images).")
def run(image, command, env, mounts, timeout_s, gpus) -> None:
    """Run COMMAND in IMAGE (no network; container removed afterwards): IMAGE -- CMD..."""
    from harness.containers import run_container
    from harness.containers.bench import parse_env, parse_mounts

    result = run_container(image, list(command), env=parse_env(env), mounts=parse_mounts(mounts),
                           timeout_s=timeout_s, gpus=gpus)  # fmt: skip
    click.echo(result.logs, nl=False)


@containers.command(name="list")
@click.option("--untagged", is_flag=True, help="Also images that rebuilds left without a tag.")
def list_(untagged: bool) -> None:
    """Harness images in the engine, with their labels."""
    import pandas as pd

    from harness.containers import list_images
    from harness.store.tables import render

    rows = list_images(untagged=untagged)
    if not rows:
        click.echo("no harness images; make them with `harness containers base` and "
                   "`harness containers build standard`")  # fmt: skip
        return
    click.echo(render(pd.DataFrame(rows), "table"))


@containers.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--suite", type=enum_choice(Suite), default=Suite.KERNELS.value,
              show_default=True, help="Benchmark suite(s) to run.")  # fmt: skip
@click.option("-k", "k", default=None,
              help="pytest -k expression (default: a small CPU selection of the suite; '' for "
                   "every case).")  # fmt: skip
@click.option("--out", type=OutputDir(), default="bench-containers",
              show_default=True, help="Folder of the JSON results (one per image).")  # fmt: skip
@click.option("--db", type=OutputFile(), default=None,
              help="Results database to ingest into (default OUT/harness.duckdb).")  # fmt: skip
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE",
              help="Environment inside the containers, e.g. VFC_BACKENDS=... (repeatable).")  # fmt: skip
@click.option("--timeout", "timeout_s", type=float, default=1800, show_default=True,
              help="Time limit per image, seconds.")  # fmt: skip
@click.option("--gpus", is_flag=True, help="Give the containers every GPU (CUDA images).")
@executor_options
def bench(images, suite, k, out, db, env, timeout_s, gpus, executor_spec) -> None:
    """Run benchmark suites in each IMAGE, ingest the JSONs, compare the first image to the rest.

    With --executor dask each image is a job on a Dask cluster (each worker uses its own host's
    Docker engine; OUT must be on a filesystem every worker sees)."""
    from harness.commands.options import opened_executor
    from harness.compare import compare_results, render_comparison
    from harness.containers import bench_images
    from harness.containers.bench import parse_env
    from harness.executors import ExecutorKind

    settings = parse_env(env)
    with contextlib.ExitStack() as stack:
        executor = None
        if executor_spec.kind is ExecutorKind.DASK:
            executor = stack.enter_context(opened_executor(executor_spec))
        result = bench_images(list(images), suite=suite, k=k, out=out, db=db, env=settings,
                              timeout_s=timeout_s, gpus=gpus, executor=executor)  # fmt: skip
    for image, path in result.files.items():
        click.echo(f"{image}: {path}")
    click.echo(f"database {result.db_path}: {result.summary}")
    first, *others = list(result.files.values())
    for other in others:
        click.echo(f"\n{first.name} (A) vs {other.name} (B):")
        click.echo(render_comparison(compare_results(first, other)))
