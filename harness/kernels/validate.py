"""Kernel-level validation: harness's own sr/rr kernels against Verificarlo's backends.

The same conv2d / batchnorm inputs (:mod:`harness.kernels.cases`: random and structured, float32
and float64) go through

* harness's kernel builds on this machine (``harness.kernels.load_extension(mode)``, modes ``sr``
  and ``rr``, t = p), one sample per seed;
* the Verificarlo build of the ieee kernels in the harness-verificarlo image, one container (one
  process) per backend (default ``mca-rr@24,53`` and ``mca_int-rr@24,53``; t = p = 24 for float32,
  53 for float64), successive calls being the samples;

and every output element is summarised against an extended-precision reference
(``np.longdouble``): significant bits (CNH, ``significantdigits`` through :mod:`harness.metrics`),
bias in units of the reference's ulp, the fraction of elements that stay exactly equal to the
correctly rounded reference. Each harness engine is compared with each Verificarlo engine by
two-sample tests: per element, Welch's t (equal means) and Brown-Forsythe (equal spread), with a
Holm correction over every element of every output of the pair; per output, a Mann-Whitney test of
the runs' mean ulp errors (the run is the unit: the elements of a batchnorm run share its
perturbed statistics), Holm-corrected over the outputs of the pair.

Statistics live here as pure functions of sample arrays; :func:`validate` does the wiring.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.kernels.build import KernelMode
from harness.kernels.cases import (
    DTYPES,
    OUTPUTS,
    PRECISION,
    Case,
    InputKind,
    Shapes,
    compute_outputs,
    make_inputs,
    reference_outputs,
    write_inputs,
)
from harness.kernels.vfc_backends import Library, McaMode, VfcBackend, parse_backend

#: default Verificarlo backends: MCA random rounding and the stochastic-rounding stand-in, t = p
DEFAULT_BACKENDS = (
    VfcBackend(Library.MCA, McaMode.RR),
    VfcBackend(Library.MCA_INT, McaMode.RR),
)
DEFAULT_MODES = (KernelMode.SR, KernelMode.RR)
ALPHA = 0.05
DEFAULT_SHAPES = Shapes()


class Source(Enum):
    HARNESS = "harness"
    VERIFICARLO = "verificarlo"


@dataclass(frozen=True)
class Engine:
    """One way of computing the kernels: a harness mode or a Verificarlo backend."""

    source: Source
    mode: KernelMode | None = None
    backend: VfcBackend | None = None

    @property
    def name(self) -> str:
        if self.source is Source.HARNESS:
            return f"harness-{self.mode.value}"
        return f"vfc-{self.backend.name.split('@')[0]}"

    def precision(self, dtype: str) -> int:
        """Virtual precision t this engine uses for ``dtype``."""
        if self.source is Source.HARNESS:
            return PRECISION[dtype]
        return self.backend.precision_binary32 if dtype == "float32" else self.backend.precision_binary64


# ---------------------------------------------------------------- statistics (pure)


def ulp(reference: np.ndarray, dtype) -> np.ndarray:
    """Spacing of ``dtype`` floats at each reference value (above |x|; 0 maps to the smallest)."""
    r = np.abs(np.asarray(reference, dtype=np.float64)).astype(dtype)
    return np.spacing(r).astype(np.float64)


def exact_fraction(samples: np.ndarray, reference: np.ndarray, dtype) -> float:
    """Fraction of the elements whose every sample equals the reference rounded to ``dtype``,
    among the elements whose reference is representable in ``dtype`` (NaN when there are none)."""
    rounded = np.asarray(reference).astype(dtype)
    representable = rounded.astype(np.longdouble) == np.asarray(reference, dtype=np.longdouble)
    if not representable.any():
        return float("nan")
    same = np.all(samples == rounded[None], axis=0)
    return float(same[representable].mean())


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same shape, capped at 1)."""
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    order = np.argsort(p)
    m = p.size
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted.reshape(np.shape(pvalues))


def _constant_pvalues(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elements where both samples are constant: p = 1 if the constants agree, else 0."""
    both = (a.min(0) == a.max(0)) & (b.min(0) == b.max(0))
    agree = a[0] == b[0]
    return both, np.where(agree, 1.0, 0.0)


def brown_forsythe(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Brown-Forsythe test of equal spread per column (``scipy.stats.levene(center="median")``,
    vectorised): a one-way ANOVA of the absolute deviations from each group's median."""
    from scipy import stats

    za, zb = np.abs(a - np.median(a, axis=0)), np.abs(b - np.median(b, axis=0))
    na, nb = za.shape[0], zb.shape[0]
    ma, mb = za.mean(axis=0), zb.mean(axis=0)
    grand = (na * ma + nb * mb) / (na + nb)
    between = na * (ma - grand) ** 2 + nb * (mb - grand) ** 2
    within = ((za - ma) ** 2).sum(axis=0) + ((zb - mb) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = stats.f.sf((na + nb - 2) * between / within, 1, na + nb - 2)
    # no spread of the deviations in either group (e.g. two values drawn 50/50, whose median is
    # their midpoint): equal spreads unless the deviations themselves differ
    degenerate = within <= 1e-12 * np.maximum(ma + mb, 1e-300)
    same = np.isclose(ma, mb, rtol=1e-9, atol=0.0)
    return np.where(degenerate, np.where(same, 1.0, 0.0), p)


def two_sample_pvalues(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Per-element p-values of Welch's t-test and of the Brown-Forsythe test.

    ``a`` (M, ...) and ``b`` (L, ...) are samples of the same output from two engines. Where both
    are constant the tests are undefined: p = 1 if the constants agree and 0 otherwise.
    """
    from scipy import stats

    a = np.asarray(a, dtype=np.float64).reshape(a.shape[0], -1)
    b = np.asarray(b, dtype=np.float64).reshape(b.shape[0], -1)
    both_constant, constant_p = _constant_pvalues(a, b)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        welch = stats.ttest_ind(a, b, axis=0, equal_var=False).pvalue
        spread = brown_forsythe(a, b)
    out = {}
    for name, p in (("welch", welch), ("spread", spread)):
        p = np.where(both_constant, constant_p, p)
        # one side constant and the other not: the variance test is what tells them apart
        out[name] = np.where(np.isnan(p), 0.0 if name == "spread" else 1.0, p)
    return out


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


def in_ulps(samples: np.ndarray, reference: np.ndarray, dtype) -> np.ndarray:
    """``(X - ref) / ulp(ref)`` per sample, computed exactly enough to test differences of one ulp
    (float64 means of float64 samples are themselves rounded at that level)."""
    ref64 = np.asarray(reference, dtype=np.float64)
    diff = np.asarray(samples, dtype=np.float64) - ref64[None]
    # the tests are scale-invariant per element: zero references keep the raw difference
    scale = np.where(ref64 != 0, ulp(ref64, dtype), 1.0)
    return diff / scale[None]


def sample_errors(samples: np.ndarray, reference: np.ndarray, dtype) -> np.ndarray:
    """Per sample, the mean over elements of ``|X - RN(ref)| / ulp``: how far one run lands from
    the correctly rounded result, in ulps (0 for a run that is exact everywhere)."""
    rounded = np.asarray(reference).astype(dtype).astype(np.float64)
    scale = np.where(rounded != 0, ulp(rounded, dtype), 1.0)
    dev = np.abs(np.asarray(samples, dtype=np.float64) - rounded[None]) / scale[None]
    return dev.reshape(dev.shape[0], -1).mean(axis=1)


def pooled_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    """Mann-Whitney p-value of two engines' per-sample errors (:func:`sample_errors`).

    The unit is the run, not the element: the elements of one batchnorm run share its perturbed
    statistics, so pooling elements as if independent would overstate the evidence. Averaging
    over the elements gives the power to see rare events (results leaving an exact value here and
    there) that a test per element with tens of samples misses.
    """
    from scipy import stats

    if np.unique(a).size == 1 and np.array_equal(np.unique(a), np.unique(b)):
        return 1.0
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def compare_engines(a: np.ndarray, b: np.ndarray, errors_a: np.ndarray, errors_b: np.ndarray) -> dict:
    """Raw p-values of one output from two engines: per element (``a``, ``b`` in ulps, see
    :func:`in_ulps`) and per run (``errors_a``, ``errors_b`` from :func:`sample_errors`)."""
    return {**two_sample_pvalues(a, b), "pooled": pooled_pvalue(errors_a, errors_b),
            "elements": int(np.prod(a.shape[1:]))}  # fmt: skip


def correct(raw: list[dict], alpha: float = ALPHA) -> list[dict]:
    """Holm correction within each pair of engines: over every element of every output (Welch and
    Brown-Forsythe), and over the outputs (per-run Mann-Whitney). Returns one summary row per output."""
    rows = []
    for pair in dict.fromkeys((r["harness"], r["verificarlo"]) for r in raw):
        group = [r for r in raw if (r["harness"], r["verificarlo"]) == pair]
        adjusted = {}
        for name in ("welch", "spread"):
            flat = holm(np.concatenate([r[name] for r in group]))
            adjusted[name] = np.split(flat, np.cumsum([r[name].size for r in group])[:-1])
        pooled = holm(np.array([r["pooled"] for r in group]))
        for i, r in enumerate(group):
            row = {k: v for k, v in r.items() if k not in ("welch", "spread", "pooled")}
            for name in ("welch", "spread"):
                row[f"{name}_rejected"] = int((adjusted[name][i] < alpha).sum())
                row[f"{name}_p_min"] = float(adjusted[name][i].min())
            row["pooled_p"] = float(pooled[i])
            row["pooled_rejected"] = bool(pooled[i] < alpha)
            rows.append(row)
    return rows


# ---------------------------------------------------------------- engines (wiring)


class TorchKernels:
    """harness's torch extension for ``mode`` behind the NumPy methods of ``KernelLibrary``."""

    def __init__(self, mode: KernelMode, seed: int):
        from harness.kernels import load_extension

        self.ext = load_extension(mode)
        self.seed = seed - (1 << 64) if seed >= 1 << 63 else seed
        self.calls = 0

    def _call(self) -> int:
        self.calls += 1
        return self.calls - 1

    @staticmethod
    def _t(x):
        import torch

        return None if x is None else torch.from_numpy(np.ascontiguousarray(x))

    def conv2d_forward(self, x, w, b, g):
        t = self._t
        y = self.ext.conv2d_forward(t(x), t(w), t(b), list(g.stride), list(g.padding),
                                    list(g.dilation), self.seed, self._call())  # fmt: skip
        return y.numpy()

    def conv2d_backward_input(self, gy, w, x_shape, g):
        t = self._t
        gx = self.ext.conv2d_backward_input(t(gy), t(w), list(x_shape), list(g.stride),
                                            list(g.padding), list(g.dilation), self.seed,
                                            self._call())  # fmt: skip
        return gx.numpy()

    def conv2d_backward_weight(self, x, gy, w_shape, bias, g):
        t = self._t
        gw, gb = self.ext.conv2d_backward_weight(t(x), t(gy), list(w_shape), bias,
                                                 list(g.stride), list(g.padding), list(g.dilation),
                                                 self.seed, self._call())  # fmt: skip
        return gw.numpy(), gb.numpy()

    def bn_forward_train(self, x, gamma, beta, eps):
        t = self._t
        y, mean, invstd = self.ext.bn_forward_train(t(x), t(gamma), t(beta), None, None,
                                                    float(eps), 0.0, self.seed, self._call())  # fmt: skip
        return y.numpy(), mean.numpy(), invstd.numpy()

    def bn_backward_train(self, x, gy, mean, invstd, gamma):
        t = self._t
        gx, gg, gb = self.ext.bn_backward_train(t(x), t(gy), t(gamma), t(mean), t(invstd),
                                                self.seed, self._call())  # fmt: skip
        return gx.numpy(), gg.numpy(), gb.numpy()


class HarnessBuild(Enum):
    """Which build of harness's own kernels the harness engines use. Both come from the same
    source with the same flags and give identical bits (tests/test_kernels_vfc.py)."""

    TORCH_EXTENSION = "torch-extension"  # harness.kernels.load_extension(mode): C++ and ninja
    C_LIBRARY = "c-library"  # harness.kernels.vfc.build_library(native): a C compiler only


def harness_kernels(mode: KernelMode, seed: int, build: HarnessBuild, cache: Path | None = None):
    """Kernels of harness's ``mode`` with streams keyed by ``seed``."""
    if build is HarnessBuild.TORCH_EXTENSION:
        return TorchKernels(mode, seed)
    from harness.kernels.vfc import build_library, load_native_library

    path = (cache or Path(".")) / f"libharness_kernels_{mode.value}.so"
    if not path.is_file():
        build_library(path, mode, "native")
    return load_native_library(path, seed=seed)


def harness_samples(mode: KernelMode, arrays, shapes: Shapes, samples: int, seed: int,
                    build: HarnessBuild = HarnessBuild.TORCH_EXTENSION, cache: Path | None = None):  # fmt: skip
    """``samples`` samples of every output under harness's ``mode`` (seed ``seed + i``)."""
    stacks: dict[str, list[np.ndarray]] = {name: [] for name in OUTPUTS}
    for i in range(samples):
        kernels = harness_kernels(mode, seed + i, build, cache)
        for name, value in compute_outputs(kernels, arrays, shapes).items():
            stacks[name].append(value)
    return {k: np.stack(v) for k, v in stacks.items()}


#: runs the runner for one backend: (backend, inputs folder, outputs folder, samples, seed) -> record
VfcExecutor = Callable[[VfcBackend, Path, Path, int, int], dict]


@dataclass
class ValidationResult:
    table: object  # pandas.DataFrame, one row per (kind, dtype, output, engine)
    tests: object  # pandas.DataFrame, one row per (kind, dtype, output, harness engine, vfc engine)
    runs: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def parse_kinds(kinds) -> list[InputKind]:
    out = []
    for k in kinds:
        try:
            out.append(k if isinstance(k, InputKind) else InputKind(str(k).lower()))
        except ValueError:
            raise InputError(
                f"input kind must be one of {[i.value for i in InputKind]}, got {k!r}"
            ) from None
    return out


def parse_dtypes(dtypes) -> list[str]:
    for d in dtypes:
        if d not in DTYPES:
            raise InputError(f"dtype must be one of {sorted(DTYPES)}, got {d!r}")
    return list(dtypes)


def validate(
    workdir: Path,
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
) -> ValidationResult:
    """Run every engine on every case and summarise (see the module docstring).

    Parameters
    ----------
    workdir : Path
        Holds ``inputs/`` (bind-mounted read-only into the containers) and ``samples/<backend>/``.
    executor : callable
        Runs ``python -m harness.kernels.vfc_runner`` for one backend (in a container, or locally
        inside the image).
    samples : int
        Samples per engine and case (>= 2).
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
    inputs = workdir / "inputs"
    write_inputs(inputs, cases, shapes, seed)
    seconds: dict[str, float] = {}
    runs = []
    for backend in backends:
        out = workdir / "samples" / Engine(Source.VERIFICARLO, backend=backend).name
        start = time.perf_counter()
        runs.append(executor(backend, inputs, out, samples, seed))
        seconds[Engine(Source.VERIFICARLO, backend=backend).name] = time.perf_counter() - start
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
                    engine.mode, arrays, shapes, samples, seed + 10_000 * (i + 1), harness_build,
                    workdir,
                )
                harness_seconds[engine.name] += time.perf_counter() - start
            else:
                path = workdir / "samples" / engine.name / f"{case.name}.npz"
                if not path.is_file():
                    raise InputError(f"the Verificarlo runner wrote no samples for {case.name}")
                with np.load(path, allow_pickle=False) as data:
                    per_engine[engine.name] = {k: data[k] for k in data.files}
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


# ---------------------------------------------------------------- executors of the runner

#: where the inputs and outputs are mounted inside the image
CONTAINER_INPUTS = "/vfc/inputs"
CONTAINER_OUTPUTS = "/vfc/outputs"


def runner_command(backend: VfcBackend, inputs: str, outputs: str, samples: int, seed: int,
                   python: str = "python3") -> list[str]:  # fmt: skip
    """The command line of :mod:`harness.kernels.vfc_runner` for one backend."""
    return [
        python, "-m", "harness.kernels.vfc_runner", "--inputs", inputs, "--outputs", outputs,
        "--backend", backend.name, "--samples", str(samples), "--seed", str(seed),
    ]  # fmt: skip


def local_executor(timeout_s: float = 600) -> VfcExecutor:
    """Run the runner as a subprocess of this machine (inside the Verificarlo image)."""
    import json
    import subprocess
    import sys

    from harness.kernels.vfc import default_library

    default_library()  # fail early, with the message saying where the library comes from

    def run(backend, inputs, outputs, samples, seed):
        cmd = runner_command(backend, str(inputs), str(outputs), samples, seed, sys.executable)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:
            raise InputError(
                f"the Verificarlo runner for {backend.name} exited with {done.returncode}: "
                f"{done.stderr.strip()[-2000:]}"
            )
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run


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

    def run(backend, inputs, outputs, samples, seed):
        from harness.kernels.vfc_runner import RUN_FILE

        outputs.mkdir(parents=True, exist_ok=True)
        cmd = runner_command(backend, CONTAINER_INPUTS, CONTAINER_OUTPUTS, samples, seed)
        run_container(
            image, cmd, mounts={inputs: CONTAINER_INPUTS, outputs: CONTAINER_OUTPUTS},
            timeout_s=timeout_s, client=client,
        )  # fmt: skip
        return json.loads((outputs / RUN_FILE).read_text())

    return run


# ---------------------------------------------------------------- report

TABLE_FILE = "validation.tsv"
TESTS_FILE = "tests.tsv"


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
) -> dict:
    """``harness kernels validate``: check the inputs, run :func:`validate`, store the run.

    ``image=None`` runs the Verificarlo backends locally (inside the image). Writes
    ``validation.tsv``, ``tests.tsv``, ``report.txt`` and ``manifest.json`` (kind
    ``kernels-validate``) under ``out``; returns the manifest fields and the printed report.
    """
    from harness.store import RunDir

    backends = [parse_backend(b) for b in (backends or DEFAULT_BACKENDS)]
    modes = [KernelMode(m) if not isinstance(m, KernelMode) else m for m in (modes or DEFAULT_MODES)]
    kinds = parse_kinds(kinds or tuple(InputKind))
    dtypes = parse_dtypes(dtypes or ("float32", "float64"))
    if samples < 2:
        raise InputError(f"--samples must be >= 2 (significant bits need a spread), got {samples}")
    if not 0 < alpha < 1:
        raise InputError(f"--alpha must be in (0, 1), got {alpha}")
    executor = local_executor(timeout_s) if image is None else container_executor(image, timeout_s)
    # inside the image there is a C compiler but no C++ toolchain for the torch extension
    build = HarnessBuild.C_LIBRARY if image is None else HarnessBuild.TORCH_EXTENSION
    run = RunDir(out, kind="kernels-validate")
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
            Path(out) / "work", executor, kinds=kinds, dtypes=dtypes, modes=modes,
            backends=backends, samples=samples, seed=seed, shapes=shapes, alpha=alpha,
            harness_build=build,
        )  # fmt: skip
    except BaseException:
        run.finish("failed")
        raise
    report = format_report(result, alpha)
    run.write_table(TABLE_FILE, result.table)
    run.write_table(TESTS_FILE, result.tests)
    (Path(out) / "report.txt").write_text(report)
    wall = time.perf_counter() - start
    manifest = run.finish(verificarlo_runs=result.runs, engine_seconds=result.seconds,
                          validation_wall_s=wall)  # fmt: skip
    return {"report": report, "wall_s": wall, "manifest": manifest}
