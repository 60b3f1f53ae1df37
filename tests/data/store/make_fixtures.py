"""Regenerate the store/report test fixtures in this folder (deterministic; a few KB).

    /work/venv/bin/python tests/data/store/make_fixtures.py

EVERY NUMBER HERE IS A TEST FIXTURE, NOT A MEASUREMENT. In particular ``bench-cuda-fixture.json``
claims an "H100" only so that tests can exercise queries across devices; no GPU was used.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
NOTE = "TEST FIXTURE - synthetic numbers, not a measurement"


def fingerprint(device: str) -> dict:
    gpu = device == "cuda"
    return {
        "schema_version": 1,
        "timestamp": "2026-01-01T00:00:00+00:00",
        "hostname": "fixture-gpu-host" if gpu else "fixture-cpu-host",
        "python": "3.11.7",
        "cpu_model": "Fixture CPU",
        "cpu_count": 2,
        "numpy": "2.4.6",
        "torch": "2.13.0+cu128" if gpu else "2.13.0+cpu",
        "cuda_available": gpu,
        "cuda": "12.8" if gpu else None,
        "cudnn": 91900 if gpu else None,
        "gpu_name": "NVIDIA H100 80GB HBM3 (test fixture)" if gpu else None,
        "gpu_count": 1 if gpu else 0,
        "tf32_matmul": False,
        "tf32_cudnn": False,
        "container_image": None,
        "git_commit": "0" * 40,
        "harness": "0.1.0",
        "note": NOTE,
    }


def bench(name: str, device: str, mode: str, impl: str, mean: float, bits: float | None) -> dict:
    rng = np.random.default_rng(len(name))
    data = [round(mean * (1 + 0.02 * d), 9) for d in rng.standard_normal(5)]
    arr = np.array(data)
    extra = {
        "op": name.split("[")[0].removeprefix("test_"),
        "device": device,
        "mode": mode,
        "implementation": impl,
        "environment": fingerprint(device),
        "note": NOTE,
    }
    if bits is not None:
        extra.update(
            sig_bits_mean=bits,
            sig_bits_median=round(bits),
            sig_bits_min=bits - 12,
            gflops=round(0.4 / mean, 4),
        )
    return {
        "group": None,
        "name": name,
        "fullname": f"benchmarks/fixture.py::{name}",
        "params": {"mode": mode},
        "param": mode,
        "extra_info": extra,
        "stats": {
            "min": float(arr.min()),
            "max": float(arr.max()),
            "mean": float(arr.mean()),
            "stddev": float(arr.std(ddof=1)),
            "median": float(np.median(arr)),
            "rounds": 5,
            "iterations": 1,
            "ops": float(1 / arr.mean()),
            "data": data,
        },
    }


def bench_file(device: str, scale: float, bits_shift: float) -> dict:
    d = device
    benches = [
        bench(
            f"test_conv2d_forward[{d}-small-3x3-torch]",
            d,
            "native",
            "torch",
            2e-4 * scale,
            22.5 + bits_shift,
        ),
        bench(
            f"test_conv2d_forward[{d}-small-3x3-harness-sr]",
            d,
            "sr",
            "harness",
            1.7e-2 * scale,
            20.7 + bits_shift,
        ),
        bench(f"test_bench_training_step_{d}[ieee]", d, "ieee", "engine", 0.15 * scale, None),
        bench(f"test_bench_training_step_{d}[sr]", d, "sr", "engine", 1.08 * scale, None),
    ]
    return {
        "machine_info": {"note": NOTE},
        "commit_info": {"id": "0" * 40},
        "benchmarks": benches,
        "datetime": "2026-01-01T00:00:00+00:00",
        "version": "5.1.0",
    }


def manifest(kind: str, command: str, status: str = "complete", **config) -> dict:
    return {
        "schema_version": 1,
        "kind": kind,
        "command": command,
        "config": config,
        "status": status,
        "started": 1767225600.0,
        "finished": 1767225660.0,
        "attempts": 1,
        "environment": fingerprint("cpu"),
        "timings": {"wall_s": 60.0},
        "note": NOTE,
    }


def write_run(folder: Path, man: dict, tables: dict[str, pd.DataFrame]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(man, indent=2, sort_keys=True) + "\n")
    for name, frame in tables.items():
        if name.endswith(".parquet"):
            frame.to_parquet(folder / name, index=False)
        else:
            frame.to_csv(folder / name, sep="\t", index=False)


def main() -> None:
    for device, scale, shift in (("cpu", 1.0, 0.0), ("cuda", 0.05, -1.0)):
        path = HERE / f"bench-{device}-fixture.json"
        path.write_text(json.dumps(bench_file(device, scale, shift), indent=1) + "\n")

    runs = HERE / "runs"
    sweep = pd.DataFrame(
        {
            "mode": ["ieee", "rr", "sr", "ud"],
            "runs": [2, 3, 3, 3],
            "identical_runs": [True, False, False, False],
            "weights_sig_bits_min": [24.0, 12.0, 13.0, 11.0],
            "weights_sig_bits_median": [24.0, 19.0, 19.5, 18.0],
            "final_loss_sig_bits": [24.0, 16.0, 17.0, 15.0],
            "step_ms": [10.0, 60.0, 45.0, 15.0],
        }
    )
    write_run(runs / "mode-sweep", manifest("mode-sweep", "harness sweep"), {"sweep.tsv": sweep})
    gran = pd.DataFrame(
        {
            "granularity": ["op", "op", "kernel", "kernel"],
            "mode": ["sr"] * 4,
            "quantity": ["output", "grad_weight"] * 2,
            "sig_bits_median": [21.0, 19.0, 20.0, 18.0],
            "sig_bits_mean": [20.8, 18.9, 19.7, 17.6],
            "sig_bits_min": [14.0, 10.0, 13.0, 9.0],
        }
    )
    write_run(
        runs / "granularity",
        manifest("granularity", "harness demo: granularity"),
        {"granularity.tsv": gran},
    )

    regions = [
        (17, "Left-Hippocampus", "subcortical"),
        (4, "Left-Lateral-Ventricle", "csf"),
        (1028, "ctx-lh-superiorfrontal", "cortical"),
    ]
    summary_rows, minpd_rows = [], []
    for factor, base in (("seed", 0.80), ("mca-sr", 0.93)):
        for i, (label, region, kind) in enumerate(regions):
            minpd = round(base + 0.03 * i, 3)
            summary_rows.append(
                {
                    "factor": factor,
                    "label": label,
                    "region": region,
                    "kind": kind,
                    "mean_dice_to_truth": 0.85 + 0.02 * i,
                    "mean_min_dice": minpd,
                }
            )
            minpd_rows.append(
                {
                    "factor": factor,
                    "subject": "sub-0001",
                    "label": label,
                    "region": region,
                    "kind": kind,
                    "min_dice": minpd,
                }
            )
    analysis = runs / "ensemble" / "analysis"
    write_run(
        analysis,
        manifest("ensemble-analysis", "harness ensemble analyze"),
        {
            "region_summary.tsv": pd.DataFrame(summary_rows),
            "min_pairwise_dice.tsv": pd.DataFrame(minpd_rows),
        },
    )
    import nibabel as nib

    grid = np.zeros((16, 16, 8), np.float32)
    yy, xx = np.mgrid[:16, :16]
    for z in range(8):
        grid[:, :, z] = np.where((yy - 8) ** 2 + (xx - 8) ** 2 < 30 - 2 * z, 0.5 + 0.1 * z, 0.0)
    nib.save(nib.Nifti1Image(grid, np.eye(4)), str(analysis / "entropy_seed_sub-0001.nii.gz"))

    brain = []
    for reg, base in (("rf", 9.3), ("svr", 10.1)):
        for aug, k in (("none", 0), ("ensemble", 1), ("ensemble", 2), ("gaussian", 2)):
            mae = base - (0.4 * k if aug == "ensemble" else 0.1 * k)
            brain.append(
                {
                    "regressor": reg,
                    "augmentation": aug,
                    "k": k,
                    "n_splits": 3,
                    "mae_mean": mae,
                    "mae_ci_low": mae - 0.5,
                    "mae_ci_high": mae + 0.5,
                }
            )
    write_run(
        runs / "brainage", manifest("brainage", "brainage"), {"summary.tsv": pd.DataFrame(brain)}
    )

    spectra = []
    for step in range(4):
        for quantity in ("grad", "act"):
            for index in range(2):
                spectra.append(
                    {
                        "run": "fixture",
                        "epoch": 0,
                        "step": step,
                        "layer": "conv1",
                        "group": "g0",
                        "quantity": quantity,
                        "index": index,
                        "value": round((2.0 - index) / (1 + step), 4),
                        "group_size": 8,
                    }
                )
    stats = pd.DataFrame({"layer": ["conv1"], "quantity": ["grad"], "overhead_ratio": [1.2]})
    write_run(
        runs / "introspect",
        manifest("introspect", "harness introspect"),
        {"spectra.parquet": pd.DataFrame(spectra), "stats.tsv": stats},
    )

    write_run(
        runs / "crashed-sweep",
        manifest("mode-sweep", "harness sweep", status="running"),
        {"sweep.tsv": sweep.assign(weights_sig_bits_min=0.0)},
    )


if __name__ == "__main__":
    main()
