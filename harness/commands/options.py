"""Option definitions shared by several commands (one definition each).

Output locations are checked when the command line is parsed, so an unwritable ``--out`` is a
usage error (exit 2) before any work starts.
"""

from __future__ import annotations

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
