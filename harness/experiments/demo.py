"""The main job: every part of harness on the embedded default, end to end, resumable.

Each stage writes its own run directory under the output folder and is skipped when that directory
is already complete, so an interrupted demo resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from harness.store import RunDir


@dataclass
class DemoContext:
    out: Path
    device: str = "cpu"
    full: bool = False
    seed: int = 0

    def stage_dir(self, name: str) -> RunDir:
        return RunDir(self.out / name, kind=name)


def stage_mode_sweep(ctx: DemoContext) -> str:
    from harness.experiments.mode_sweep import SweepConfig, config_dict, run_mode_sweep

    cfg = SweepConfig(device=ctx.device, seed=ctx.seed)
    if ctx.full:
        cfg.repeats, cfg.steps, cfg.image_size = 10, 50, 64
    run = ctx.stage_dir("mode-sweep")
    run.start("harness demo: mode sweep", config_dict(cfg))
    frame = run_mode_sweep(cfg)
    run.write_table("sweep.tsv", frame)
    run.finish()
    return format_table(frame)


def stage_granularity(ctx: DemoContext) -> str:
    from dataclasses import asdict

    from harness.experiments.granularity import GranularityConfig, run_granularity

    cfg = GranularityConfig(seed=ctx.seed)
    run = ctx.stage_dir("granularity")
    run.start("harness demo: op-level vs kernel-level", asdict(cfg))
    frame = run_granularity(cfg)
    run.write_table("granularity.tsv", frame)
    run.finish()
    return format_table(frame)


def format_table(frame) -> str:
    return frame.to_string(index=False, float_format=lambda v: f"{v:.3g}")


STAGES: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("mode-sweep", stage_mode_sweep),
    ("granularity", stage_granularity),
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
