"""The GPU goals as a ratio table, from the pytest-benchmark JSON of the three CUDA suites.

Usage: ``python tools/gpu/ratios.py [--device cuda] [--out ratios.md] BENCH.json ...``

Each file is recognised by its records (perturbation step: ``ratio_vs_ieee``; kernels: ``op``;
introspection: ``probe``). Times are each benchmark's minimum over its rounds. Rows whose records
are missing (suite not run, or skipped) read "not measured". ``--device cpu`` makes the same table
from the CPU suites (the committed ``results/bench-*-cpu.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

#: (goal, limit): perturbed step vs IEEE, own IEEE conv vs cuDNN/oneDNN fp32, own sr vs own ieee,
#: probe every step vs none
GOALS = {"step": 1.5, "conv_vs_library": 3.0, "sr_vs_ieee": 3.0, "probe": 1.2}


def load(paths: list[Path]) -> dict[str, list[dict]]:
    """Benchmark records by suite (``perturb``, ``kernels``, ``introspect``)."""
    suites: dict[str, list[dict]] = {"perturb": [], "kernels": [], "introspect": []}
    for path in paths:
        for record in json.loads(Path(path).read_text()).get("benchmarks", []):
            info = record.get("extra_info", {})
            if "min" not in record.get("stats", {}) or "device" not in info:
                continue
            if {"ratio_vs_ieee", "mode", "shape"} <= info.keys():
                suites["perturb"].append(record)
            elif {"op", "case", "shape", "implementation", "mode"} <= info.keys():
                suites["kernels"].append(record)
            elif {"probe", "model", "batch"} <= info.keys():
                suites["introspect"].append(record)
    return suites


def _best(record: dict) -> float:
    return float(record["stats"]["min"])


def step_rows(records: list[dict], device: str) -> list[tuple]:
    """Perturbed training step over the IEEE one (engine installed, mode ieee)."""
    by_mode = {r["extra_info"]["mode"]: r for r in records if r["extra_info"]["device"] == device}
    ieee = by_mode.get("ieee")
    shape = ieee["extra_info"]["shape"] if ieee else None
    rows = []
    for mode in ("rr", "sr", "ud", "rr-rounded-t22", "sr-rounded-t22"):
        ratio = _best(by_mode[mode]) / _best(ieee) if ieee and mode in by_mode else None
        limit = GOALS["step"] if mode in ("rr", "sr") else None
        rows.append((f"training step {mode} / ieee", f"block stack {shape}", ratio, limit))
    return rows


def _conv_size(record: dict) -> int:
    return math.prod(record["extra_info"]["shape"].values())


def conv_rows(records: list[dict], device: str) -> list[tuple]:
    """Own conv kernels against the library's fp32 conv (TF32 off) and against each other."""
    convs = [
        r for r in records
        if r["extra_info"]["op"] == "conv2d_forward" and r["extra_info"]["device"] == device
    ]  # fmt: skip
    if not convs:
        case = None
    else:
        case = max(convs, key=_conv_size)["extra_info"]["case"]
    found = {}
    for r in convs:
        info = r["extra_info"]
        if info["case"] == case and not info.get("tf32") and not info.get("cudnn_benchmark"):
            found[(info["implementation"], info["mode"])] = _best(r)

    def ratio(a, b):
        return found[a] / found[b] if a in found and b in found else None

    library = "cuDNN" if device == "cuda" else "oneDNN"
    ieee, lib = ("harness", "ieee"), ("torch", "native")
    return [
        (f"own ieee conv / {library} fp32 (TF32 off)", case, ratio(ieee, lib),
         GOALS["conv_vs_library"]),
        ("own sr conv / own ieee conv", case, ratio(("harness", "sr"), ieee), GOALS["sr_vs_ieee"]),
        ("own rr conv / own ieee conv", case, ratio(("harness", "rr"), ieee), None),
    ]  # fmt: skip


def probe_rows(records: list[dict], device: str) -> list[tuple]:
    """Training step with the spectral probe every step over the step without it."""
    rows = []
    for model in ("cnn", "mlp"):
        mine = {
            r["extra_info"]["probe"]: r
            for r in records
            if r["extra_info"]["device"] == device and r["extra_info"]["model"] == model
        }
        ratio = None
        if "none" in mine and "every-1" in mine:
            ratio = _best(mine["every-1"]) / _best(mine["none"])
        batch = mine["none"]["extra_info"]["batch"] if "none" in mine else None
        rows.append((f"probe every step / none ({model})", f"batch {batch}", ratio, GOALS["probe"]))
    return rows


def fingerprint_line(suites: dict[str, list[dict]], device: str) -> str:
    for records in suites.values():
        for r in records:
            info = r["extra_info"]
            if info.get("device") == device:
                fp = info.get("fingerprint") or info.get("environment") or {}
                keys = ("gpu_name", "cpu_model", "torch", "cuda", "cudnn", "torch_num_threads")
                return json.dumps({k: fp[k] for k in keys if k in fp})
    return "no records for this device"


def table(suites: dict[str, list[dict]], device: str) -> str:
    """Markdown table of every ratio and its goal."""
    rows = (
        step_rows(suites["perturb"], device)
        + conv_rows(suites["kernels"], device)
        + probe_rows(suites["introspect"], device)
    )
    lines = [
        f"device {device}: {fingerprint_line(suites, device)}",
        "(the goals are set for CUDA; on a CPU they are shown for comparison only)"
        if device == "cpu"
        else "",
        "",
        "| ratio | case | measured | goal | met |",
        "|---|---|---|---|---|",
    ]
    for name, case, ratio, limit in rows:
        measured = "not measured" if ratio is None else f"{ratio:.2f}x"
        goal = "" if limit is None else f"<= {limit}x"
        met = "" if ratio is None or limit is None else ("yes" if ratio <= limit else "no")
        lines.append(f"| {name} | {case or ''} | {measured} | {goal} | {met} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", type=Path, help="pytest-benchmark JSON files")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.json if not p.is_file()]
    paths = [p for p in args.json if p.is_file()]
    text = table(load(paths), args.device)
    if missing:
        text += f"\nmissing (suite not run or killed): {', '.join(missing)}\n"
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
