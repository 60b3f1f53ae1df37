"""The ``harness`` command line: a thin layer over the Python API.

Each sub-command lives in the module named in :data:`COMMANDS` and is imported only when it runs,
so ``harness --help`` stays fast and a broken optional dependency only affects its own command.
User errors (:class:`harness.errors.HarnessError`, bad parameters) print one line and exit 2.
"""

from __future__ import annotations

import importlib
import sys

import click

from harness import __version__
from harness.errors import HarnessError

#: command name -> "module:attribute" of a click command or group, imported lazily.
COMMANDS: dict[str, str] = {
    "demo": "harness.commands.demo:demo",
    "ensemble": "harness.commands.ensemble:ensemble",
    "env": "harness.commands.env:env",
    "sweep": "harness.commands.sweep:sweep",
    "brainage": "harness.commands.brainage:brainage",
    "data": "harness.commands.data:data",
    "results": "harness.commands.results:results",
    "report": "harness.commands.report:report",
    "compare": "harness.commands.compare:compare",
    "check": "harness.commands.check:check",
    "containers": "harness.commands.containers:containers",
    "introspect": "harness.commands.introspect:introspect",
    "kernels": "harness.commands.kernels:kernels",
    "train": "harness.commands.train:train",
    "segment": "harness.commands.segment:segment",
}

#: one-line help shown by ``harness --help`` without importing the command's module.
SHORT_HELP: dict[str, str] = {
    "demo": "Run the main job end to end (synthetic cohort, CPU, minutes).",
    "ensemble": "Train ensemble members (run) and measure their agreement (analyze).",
    "env": "Print the environment fingerprint as JSON.",
    "sweep": "Small CNN under each perturbation mode: significant bits of weights and loss.",
    "brainage": "Brain-age regression with ensemble members as training augmentation.",
    "data": "Synthetic cohorts; import FreeSurfer/BIDS data; validate cohort directories.",
    "results": "Results database (DuckDB): ingest run directories and benchmarks, query them.",
    "report": "Self-contained HTML report (and Markdown summary) of runs and benchmarks.",
    "compare": "Two result sets side by side: significant bits, throughput, Welch t-test.",
    "check": "CI gate: exit 1 when significant bits or throughput regress past bounds.",
    "containers": "Docker images (standard, Verificarlo): build, run, benchmark image vs image.",
    "introspect": "Per-group gradient/activation spectra during training (offline demos).",
    "kernels": "Instrumented kernels: validate harness's sr/rr against Verificarlo (image).",
    "train": "Train FastSurferCNN views on a cohort (optionally perturbed); resumable.",
    "segment": "Segment a cohort or a scan (FastSurfer checkpoints), IEEE or perturbed samples.",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if name in SHORT_HELP and not command.short_help:
            command.short_help = SHORT_HELP[name]
        return command

    def format_commands(self, ctx, formatter):
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
def cli():
    """harness: numerical variability of deep-learning training, measured, reported and guarded."""


def describe_os_error(exc: OSError) -> str:
    """One line naming the path and the reason of a failed file operation."""
    reason = exc.strerror or str(exc)
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    if not paths:
        return f"{reason} ({type(exc).__name__})"
    return f"cannot access {' -> '.join(map(str, paths))}: {reason}"


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the CLI, turning user errors into a message and exit 2."""
    try:
        # without standalone mode click returns the code of a `click.exceptions.Exit` (used by
        # `harness check` to exit 1) instead of exiting; commands themselves return None
        code = cli.main(args=argv, prog_name="harness", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except HarnessError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except OSError as exc:
        # a file the user named (or its folder) cannot be read or written: their environment
        click.echo(f"error: {describe_os_error(exc)}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo(
            "interrupted; completed work is kept and the run resumes where it stopped", err=True
        )
        return 130
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
