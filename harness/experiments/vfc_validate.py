"""``harness kernels validate``: harness's sr/rr kernels against Verificarlo's backends.

The same conv2d / batchnorm inputs (:mod:`harness.kernels.cases`: random and structured, float32
and float64) go through

* harness's kernel builds on this machine (``harness.kernels.load_extension(mode)``, modes ``sr``
  and ``rr``, t = p), one sample per seed;
* the Verificarlo build of the ieee kernels in the harness/verificarlo image, one container (one
  process) per backend (default ``mca-rr@24,53`` and ``mca_int-rr@24,53``: t = p = 24 for
  float32, 53 for float64), successive calls being the samples;

and every output is summarised per engine against an extended-precision reference
(``np.longdouble``): significant bits (CNH, ``significantdigits`` through :mod:`harness.metrics`),
bias in ulps, exactness; then each harness engine is tested against each Verificarlo engine
(:mod:`harness.kernels.validate`). See ``docs/verificarlo.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.kernels.build import KernelMode
from harness.kernels.cases import (
    DTYPES,
    OUTPUTS,
    Case,
    InputKind,
    Shapes,
    make_inputs,
    reference_outputs,
    write_inputs,
)
from harness.kernels.validate import (
    ALPHA,
    CONTAINER_RUN,
    DEFAULT_BACKENDS,
    DEFAULT_MODES,
    DEFAULT_SHAPES,
    Engine,
    HarnessBuild,
    Source,
    VfcExecutor,
    compare_engines,
    correct,
    exact_fraction,
    harness_samples,
    in_ulps,
    local_executor,
    parse_dtypes,
    parse_kinds,
    runner_command,
    sample_errors,
    ulp,
)
from harness.kernels.vfc_backends import parse_backend
from harness.kernels.vfc_runner import read_samples
from harness.runs import RunDir, RunKind, atomic_write_text
from harness.runs.catalogue import (
    VALIDATION,
    VALIDATION_REPORT,
    VALIDATION_RUNNER,
    VALIDATION_TESTS,
)


def summarize_engine(samples: np.ndarray, reference: np.ndarray, dtype) -> dict[str, float]:
    """Significant bits (CNH), bias in ulps and exactness of one engine's samples of one output.

    Significant bits use significantdigits' absolute error scaled by ``2^(floor(log2|ref|) + 1)``
    against the reference rounded to float64: ``X - ref`` is exact in float64 (Sterbenz), whereas
    the relative error ``X / ref - 1`` is itself rounded at the level of a float64 sample's spread.
    Elements with a zero reference are left out of the bits (their exactness is ``exact_frac``).
    """
    from harness.metrics import significant_bits, summarize

    ref64 = np.asarray(reference, dtype=np.float64)
    nonzero = ref64 != 0
    x = np.asarray(samples, dtype=np.float64)
    bits = significant_bits(x[:, nonzero], reference=ref64[nonzero], error="absolute")
    finite = summarize(bits)
    spread = samples.min(axis=0) != samples.max(axis=0)
    err = samples.astype(np.longdouble).mean(axis=0) - np.asarray(reference)
    bias = np.asarray(err[nonzero] / ulp(ref64[nonzero], dtype), dtype=np.float64)
    if bias.size == 0:
        bias = np.array([np.nan])
    return {
        "sig_bits_mean": finite["mean"],
        "sig_bits_min": finite["min"],
        "varying_frac": float(spread.mean()),
        "exact_frac": exact_fraction(samples, reference, dtype),
        "bias_ulp_mean": float(np.mean(bias)),
        "bias_ulp_maxabs": float(np.max(np.abs(bias))),
    }




@dataclass
class ValidationResult:
    table: object  # pandas.DataFrame, one row per (kind, dtype, output, engine)
    tests: object  # pandas.DataFrame, one row per (kind, dtype, output, harness engine, vfc engine)
    runs: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)




def validate(
    run_dir: Path,
    executor: VfcExecutor,
    *,
    kinds=tuple(InputKind),
    dtypes=("float32", "float64"),
    modes=DEFAULT_MODES,
    backends=DEFAULT_BACKENDS,
    samples: int = 32,
    seed: int = 0,
    shapes: Shapes = DEFAULT_SHAPES,
    alpha: float = ALPHA,
    harness_build: HarnessBuild = HarnessBuild.TORCH_EXTENSION,
    jobs=None,
    job_target: dict | None = None,
) -> ValidationResult:
    """Run every engine on every case and summarise (see the module docstring).

    Parameters
    ----------
    run_dir : Path
        The run directory: ``inputs/`` and ``samples/<engine>/`` (catalogue names) are written
        there; the containers mount it.
    executor : callable
        Runs ``python -m harness.kernels.vfc_runner`` for one backend (in a container, or locally
        inside the image).
    samples : int
        Samples per engine and case (>= 2).
    jobs : harness.executors.Executor, optional
        Run each Verificarlo backend as one job (:func:`backend_job`) instead of calling
        ``executor`` in turn; ``job_target`` (``{"image": ..., "timeout_s": ...}``) says how the
        job runs it.
    """
    import pandas as pd

    if samples < 2:
        raise InputError(f"samples must be >= 2 (significant bits need a spread), got {samples}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    cases = [Case(k, d) for d in parse_dtypes(dtypes) for k in parse_kinds(kinds)]
    backends = [parse_backend(b) for b in backends]
    engines = [Engine(Source.HARNESS, mode=m) for m in modes]
    engines += [Engine(Source.VERIFICARLO, backend=b) for b in backends]
    if len({e.name for e in engines}) != len(engines):
        raise InputError(f"engines must be distinct, got {[e.name for e in engines]}")
    write_inputs(run_dir, cases, shapes, seed)
    if jobs is None:
        runs, seconds = [], {}
        for backend in backends:
            start = time.perf_counter()
            runs.append(executor(backend, run_dir, samples, seed))
            seconds[Engine(Source.VERIFICARLO, backend=backend).name] = time.perf_counter() - start
    else:
        runs, seconds = _backend_jobs(jobs, job_target or {}, backends, run_dir, samples, seed)
    rows, tests = [], []
    harness_seconds = dict.fromkeys((e.name for e in engines if e.source is Source.HARNESS), 0.0)
    for i, case in enumerate(cases):
        arrays = make_inputs(case, shapes, seed + 1000 * i)
        ref = reference_outputs(arrays, shapes)
        per_engine = {}
        for engine in engines:
            if engine.source is Source.HARNESS:
                start = time.perf_counter()
                per_engine[engine.name] = harness_samples(
                    engine.mode, arrays, shapes, samples, seed + 10_000 * (i + 1), harness_build
                )
                harness_seconds[engine.name] += time.perf_counter() - start
            else:
                per_engine[engine.name] = read_samples(run_dir, engine.name, case.name)
        dt = DTYPES[case.dtype]
        for output in OUTPUTS:
            base = {"input": case.kind.value, "dtype": case.dtype, "output": output}
            for engine in engines:
                rows.append({
                    **base, "engine": engine.name, "t": engine.precision(case.dtype),
                    **summarize_engine(per_engine[engine.name][output], ref[output], dt),
                })  # fmt: skip
            for h in (e for e in engines if e.source is Source.HARNESS):
                for v in (e for e in engines if e.source is Source.VERIFICARLO):
                    xa, xb = per_engine[h.name][output], per_engine[v.name][output]
                    tests.append({
                        **base, "harness": h.name, "verificarlo": v.name,
                        **compare_engines(in_ulps(xa, ref[output], dt), in_ulps(xb, ref[output], dt),
                                          sample_errors(xa, ref[output], dt),
                                          sample_errors(xb, ref[output], dt)),
                    })  # fmt: skip
    seconds.update(harness_seconds)
    return ValidationResult(pd.DataFrame(rows), pd.DataFrame(correct(tests, alpha)), runs, seconds)




def _backend_jobs(jobs, target: dict, backends, run_dir: Path, samples: int, seed: int):
    from harness.executors import Job, raise_for_failures, run_jobs

    todo = [
        Job(backend.engine, "harness.experiments.vfc_validate:backend_job", {
            "backend": backend.name, "backend_seed": backend.seed, "run_dir": str(run_dir),
            "samples": samples, "seed": seed, **target,
        })  # fmt: skip
        for backend in backends
    ]
    outcomes = run_jobs(jobs, todo, desc="verificarlo backends")
    raise_for_failures(outcomes, "Verificarlo backends")
    return [o.value for o in outcomes], {o.key: o.wall_s for o in outcomes}


def backend_job(backend: str, backend_seed: int | None, run_dir: str, samples: int, seed: int,
                image: str | None, timeout_s: float = 600) -> dict:  # fmt: skip
    """One Verificarlo backend's run as a job: in a container of ``image`` (the engine of the
    worker's host), or locally inside the image (``image=None``); returns the runner's record."""
    run = local_executor(timeout_s) if image is None else container_executor(image, timeout_s)
    return run(parse_backend(backend, backend_seed), Path(run_dir), samples, seed)


def container_executor(image: str, timeout_s: float = 600, client=None) -> VfcExecutor:
    """Run the runner in a container of ``image`` (network none), the folders bind-mounted.

    Raises
    ------
    InputError
        The image does not exist (checked now, before any work; the message names the build).
    MissingDependencyError
        No Docker engine answers.
    """
    import json

    from harness.containers import connect, get_image, run_container

    client = client or connect()
    get_image(client, image)

    def run(backend, run_dir, samples, seed):
        cmd = runner_command(backend, CONTAINER_RUN, samples, seed)
        run_container(image, cmd, mounts={run_dir: CONTAINER_RUN}, timeout_s=timeout_s,
                      client=client)  # fmt: skip
        return json.loads(VALIDATION_RUNNER.path(run_dir, engine=backend.engine).read_text())

    return run




def format_report(result: ValidationResult, alpha: float = ALPHA) -> str:
    """Plain-text tables: mean significant bits and exact fraction per engine, then the tests."""
    import pandas as pd

    t = result.table
    sig = t.pivot_table(index=["input", "dtype", "output"], columns="engine",
                        values="sig_bits_mean", sort=False, dropna=False)  # fmt: skip
    exact = t.pivot_table(index=["input", "dtype", "output"], columns="engine",
                          values="exact_frac", sort=False, dropna=False)  # fmt: skip
    exact = exact.reindex(index=sig.index, columns=sig.columns)
    cells = sig.copy().astype(object)
    for col in sig.columns:
        cells[col] = [
            f"{s:5.1f}" + (f" ({e:.0%} exact)" if pd.notna(e) else "")
            for s, e in zip(sig[col], exact[col], strict=True)
        ]
    tests = result.tests.copy()
    tests["pair"] = tests["harness"] + " vs " + tests["verificarlo"]
    tests["rejected"] = [
        f"{w}/{s} of {n} {'MW' if k else '--'}" for w, s, n, k in
        zip(tests["welch_rejected"], tests["spread_rejected"], tests["elements"],
            tests["pooled_rejected"], strict=True)
    ]  # fmt: skip
    rej = tests.pivot_table(index=["input", "dtype", "output"], columns="pair", values="rejected",
                            aggfunc="first", sort=False)  # fmt: skip
    with pd.option_context("display.width", 250, "display.max_rows", 1000,
                           "display.max_columns", 50):  # fmt: skip
        return (
            "significant bits (CNH, mean over elements; exact: all samples equal the correctly "
            "rounded reference, among representable references)\n"
            f"{cells.to_string()}\n\n"
            f"elements differing at alpha={alpha} (Holm over all elements of a pair of engines): "
            "Welch mean / Brown-Forsythe spread; MW: the runs' mean ulp errors differ (Mann-Whitney, "
            "Holm over the outputs of the pair)\n"
            f"{rej.to_string()}\n"
        )


def run_validation(
    out,
    *,
    image: str | None,
    backends=None,
    modes=None,
    kinds=None,
    dtypes=None,
    samples: int = 32,
    seed: int = 0,
    alpha: float = ALPHA,
    timeout_s: float = 600,
    shapes: Shapes = DEFAULT_SHAPES,
    executor: VfcExecutor | None = None,
    jobs=None,
) -> dict:
    """``harness kernels validate``: check the inputs, run :func:`validate`, store the run.

    ``image=None`` runs the Verificarlo backends locally (inside the image); ``executor`` replaces
    the way a backend is run (see :data:`harness.kernels.validate.VfcExecutor`); ``jobs`` (an
    :class:`harness.executors.Executor`) runs each backend as one job instead. Writes
    ``validation.tsv``, ``tests.tsv``, ``validation-report.md``, the inputs and samples and
    ``manifest.json`` (kind ``kernels-validate``) under ``out``; returns the manifest fields and the printed report.
    """
    backends = [parse_backend(b) for b in (backends or DEFAULT_BACKENDS)]
    modes = [KernelMode(m) if not isinstance(m, KernelMode) else m for m in (modes or DEFAULT_MODES)]
    kinds = parse_kinds(kinds or tuple(InputKind))
    dtypes = parse_dtypes(dtypes or ("float32", "float64"))
    if samples < 2:
        raise InputError(f"--samples must be >= 2 (significant bits need a spread), got {samples}")
    if not 0 < alpha < 1:
        raise InputError(f"--alpha must be in (0, 1), got {alpha}")
    if executor is None:
        executor = local_executor(timeout_s) if image is None else container_executor(image, timeout_s)
    # inside the image there is a C compiler but no C++ toolchain for the torch extension
    build = HarnessBuild.C_LIBRARY if image is None else HarnessBuild.TORCH_EXTENSION
    run = RunDir(out, kind=RunKind.KERNELS_VALIDATE)
    config = {
        "image": image, "local": image is None, "backends": [b.name for b in backends],
        "modes": [m.value for m in modes], "inputs": [k.value for k in kinds], "dtypes": dtypes,
        "samples": samples, "seed": seed, "alpha": alpha, "shapes": shapes.__dict__,
        "harness_build": build.value,
    }  # fmt: skip
    run.start("harness kernels validate", config)
    start = time.perf_counter()
    try:
        result = validate(
            Path(out), executor, kinds=kinds, dtypes=dtypes, modes=modes,
            backends=backends, samples=samples, seed=seed, shapes=shapes, alpha=alpha,
            harness_build=build, jobs=jobs,
            job_target={"image": image, "timeout_s": timeout_s},
        )  # fmt: skip
    except BaseException:
        run.finish("failed")
        raise
    report = format_report(result, alpha)
    run.write_table(VALIDATION, result.table)
    run.write_table(VALIDATION_TESTS, result.tests)
    atomic_write_text(run.file(VALIDATION_REPORT), f"```\n{report}```\n")
    wall = time.perf_counter() - start
    manifest = run.finish(verificarlo_runs=result.runs, engine_seconds=result.seconds,
                          validation_wall_s=wall)  # fmt: skip
    return {"report": report, "wall_s": wall, "manifest": manifest}
