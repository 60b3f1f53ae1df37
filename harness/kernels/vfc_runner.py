"""Run the validation cases through the Verificarlo build under one backend; write the samples.

One process per backend (Verificarlo fixes the backend when the library loads)::

    python -m harness.kernels.vfc_runner --run RUN --backend mca-rr@24,53 --samples 32 --seed 7

reads the inputs of the validation run directory RUN (``inputs/``, written by
:func:`harness.kernels.cases.write_inputs`) and writes ``samples/<engine>/<case>/<output>.npy``,
arrays of shape (samples, ...), plus ``samples/<engine>/run.json`` (backend, ``VFC_BACKENDS``,
Verificarlo version, seconds); the file names are those of :mod:`harness.runs.catalogue`. Samples are successive calls in the
same process: Verificarlo's generator, seeded once by ``--seed``, moves on between calls.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from harness.errors import HarnessError, InputError
from harness.kernels.cases import OUTPUTS, compute_outputs, read_inputs
from harness.kernels.vfc_backends import parse_backend


def write_samples(run_dir: Path, engine: str, case: str, stacks: dict[str, np.ndarray]) -> None:
    """Store one engine's samples of one case (``samples/{engine}/{case}/{output}.npy``)."""
    from harness.runs.catalogue import VALIDATION_SAMPLES

    for output, values in stacks.items():
        path = VALIDATION_SAMPLES.path(run_dir, engine=engine, case=case, output=output)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, values, allow_pickle=False)


def read_samples(run_dir: Path, engine: str, case: str) -> dict[str, np.ndarray]:
    """What :func:`write_samples` stored; :class:`InputError` when an output is missing."""
    from harness.runs.catalogue import VALIDATION_SAMPLES

    out = {}
    for output in OUTPUTS:
        path = VALIDATION_SAMPLES.path(run_dir, engine=engine, case=case, output=output)
        if not path.is_file():
            raise InputError(f"the Verificarlo runner wrote no {path.relative_to(run_dir)}")
        out[output] = np.load(path, allow_pickle=False)
    return out


def run(run_dir: Path, backend: str, samples: int, seed: int, library: str | None = None) -> dict:
    """Compute ``samples`` samples of every output of every case under ``backend``."""
    from harness.kernels.vfc import backend_libdir, load_library
    from harness.runs import atomic_write_json
    from harness.runs.catalogue import VALIDATION_RUNNER

    if samples < 1:
        raise InputError(f"samples must be >= 1, got {samples}")
    spec = parse_backend(backend, seed=seed)
    shapes, cases = read_inputs(run_dir)
    start = time.perf_counter()
    kernels = load_library(spec, library)
    for case, arrays in cases:
        stacks: dict[str, list[np.ndarray]] = {name: [] for name in OUTPUTS}
        for _ in range(samples):
            for name, value in compute_outputs(kernels, arrays, shapes).items():
                stacks[name].append(value)
        write_samples(run_dir, spec.engine, case.name, {k: np.stack(v) for k, v in stacks.items()})
    record = {
        "backend": spec.name,
        "vfc_backends": spec.vfc_backends(backend_libdir()),
        "verificarlo_version": os.environ.get("VERIFICARLO_VERSION"),
        "samples": samples,
        "seed": seed,
        "mode_name": kernels.mode_name,
        "seconds": time.perf_counter() - start,
    }
    atomic_write_json(VALIDATION_RUNNER.path(run_dir, engine=spec.engine), record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.kernels.vfc_runner")
    parser.add_argument("--run", required=True, type=Path, help="validation run directory")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--library", default=None)
    args = parser.parse_args(argv)
    try:
        record = run(args.run, args.backend, args.samples, args.seed, args.library)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(record))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
