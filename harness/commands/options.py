"""Option definitions shared by several commands (one definition each).

Output locations are checked when the command line is parsed, so an unwritable ``--out`` is a
usage error (exit 2) before any work starts.
"""

from __future__ import annotations

import contextlib

import click

from harness.errors import InputError


class OutputDir(click.Path):
    """A directory the command will create or fill: must be creatable and writable."""

    def __init__(self):
        super().__init__(file_okay=False)

    def convert(self, value, param, ctx):
        from harness.runs.writable import check_writable_dir

        value = super().convert(value, param, ctx)
        try:
            check_writable_dir(value, None)
        except InputError as exc:
            self.fail(str(exc), param, ctx)
        return value


class OutputFile(click.Path):
    """A file the command will create or replace: its directory must be writable."""

    def __init__(self):
        super().__init__(dir_okay=False)

    def convert(self, value, param, ctx):
        from harness.runs.writable import check_writable_file

        value = super().convert(value, param, ctx)
        try:
            check_writable_file(value, None)
        except InputError as exc:
            self.fail(str(exc), param, ctx)
        return value


def _apply_threads(ctx, param, value):
    from harness.threads import apply_thread_policy

    try:
        apply_thread_policy(value)
    except InputError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def threads_option(command):
    """``--threads N``: CPU threads of torch, OpenMP/MKL and the native kernels, applied before
    the command runs (:func:`harness.threads.apply_thread_policy`) and recorded in manifests."""
    return click.option(
        "--threads",
        type=int,
        default=None,
        expose_value=False,
        callback=_apply_threads,
        help="CPU threads for compute [default: $OMP_NUM_THREADS if set, else the cores "
        "available to this process; never more].",
    )(command)


def enum_choice(enum_type, exclude=()) -> click.Choice:
    """A click choice offering the values of ``enum_type``'s members (minus ``exclude``): the
    command line spells what the package parses (:func:`harness.enums.parse_enum`)."""
    from harness.enums import choices

    return click.Choice(choices(enum_type, exclude))


def executor_options(command):
    """``--executor serial|dask``, ``--workers N``, ``--scheduler ADDRESS``, ``--scheduler-file
    FILE`` and ``--retries N``, checked once into an :class:`harness.executors.ExecutorSpec`
    passed to the command as ``executor_spec``."""
    import functools

    from harness.executors import ExecutorKind

    @functools.wraps(command)
    def wrapper(*args, executor, workers, scheduler, scheduler_file, retries, **kwargs):
        from harness.executors import ExecutorSpec

        spec = ExecutorSpec.parse(executor, workers=workers, scheduler=scheduler,
                                  scheduler_file=scheduler_file, retries=retries)  # fmt: skip
        return command(*args, executor_spec=spec, **kwargs)

    options = [
        click.option("--executor", type=enum_choice(ExecutorKind), default=None,
                     help="Run the independent jobs one after another in this process (serial) "
                     "or on a Dask cluster [default: serial; dask when --workers, --scheduler or "
                     "--scheduler-file is given]."),
        click.option("--workers", type=int, default=None,
                     help="Worker processes of a local Dask cluster on 127.0.0.1 [default: one "
                     "per available core]; each job gets cores // workers threads."),
        click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
                     help="Use the existing Dask cluster of this scheduler."),
        click.option("--scheduler-file", default=None, metavar="FILE",
                     help="Use the existing Dask cluster of this scheduler file (dask-jobqueue, "
                     "dask-mpi, dask scheduler --scheduler-file)."),
        click.option("--retries", type=int, default=2, show_default=True,
                     help="Reruns of a job that raised an unexpected error (a job whose worker "
                     "died is rescheduled anyway; input errors are not retried)."),
    ]  # fmt: skip
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


@contextlib.contextmanager
def opened_executor(spec, echo=click.echo):
    """Open the executor of ``spec``, say where it runs (and its dashboard), close it after."""
    from harness.executors import ExecutorKind, open_executor

    with open_executor(spec) as executor:
        if spec.kind is ExecutorKind.DASK:
            info = executor.describe()
            threads = info["threads_per_job"] or "cores/slots of each host"
            dashboard = executor.dashboard or "off (install bokeh for the Dask dashboard)"
            echo(f"dask: {info['workers']} workers at {info['scheduler']}, {threads} threads per "
                 f"job; dashboard: {dashboard}", err=True)  # fmt: skip
        yield executor


def echo_jobs(outcomes, echo=click.echo) -> None:
    """Print the summary table of a list of job outcomes."""
    from harness.executors import summary_table

    echo(summary_table(outcomes))
