"""Engines and statistics of the kernel-level validation against Verificarlo.

The engines: harness's own kernels in ``sr``/``rr`` (:class:`TorchKernels` over
``harness.kernels.load_extension(mode)``, or the C-library build, bitwise the same), one sample per
seed; and Verificarlo backends run by ``python -m harness.kernels.vfc_runner`` in a process of
their own (:func:`local_executor`; in containers, ``harness.experiments.vfc_validate``).

The statistics, pure functions of sample arrays: exactness against the correctly rounded
reference, errors in ulps, two-sample tests per element (Welch's t for means, Brown-Forsythe for
spread) and per run (Mann-Whitney of the runs' mean ulp errors; the run is the unit, since the
elements of a batchnorm run share its perturbed statistics), and the Holm correction over a pair
of engines (:func:`correct`). ``harness.experiments.vfc_validate`` adds significant bits and wires
everything into ``harness kernels validate``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from harness.enums import parse_enum
from harness.errors import InputError
from harness.kernels.build import KernelMode
from harness.kernels.cases import (
    DTYPES,
    OUTPUTS,
    PRECISION,
    InputKind,
    Shapes,
    compute_outputs,
)
from harness.kernels.vfc_backends import Library, McaMode, VfcBackend

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
        return self.backend.engine

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


def harness_kernels(mode: KernelMode, seed: int, build: HarnessBuild):
    """Kernels of harness's ``mode`` with streams keyed by ``seed``."""
    if build is HarnessBuild.TORCH_EXTENSION:
        return TorchKernels(mode, seed)
    from harness.kernels.build import cache_dir, source_hash
    from harness.kernels.vfc import build_library, load_native_library

    # the kernel cache, keyed by the sources: built once per machine
    path = cache_dir() / f"clib-{source_hash()}" / f"libharness_kernels_{mode.value}.so"
    if not path.is_file():
        build_library(path, mode, "native")
    return load_native_library(path, seed=seed)


def harness_samples(mode: KernelMode, arrays, shapes: Shapes, samples: int, seed: int,
                    build: HarnessBuild = HarnessBuild.TORCH_EXTENSION):  # fmt: skip
    """``samples`` samples of every output under harness's ``mode`` (seed ``seed + i``)."""
    stacks: dict[str, list[np.ndarray]] = {name: [] for name in OUTPUTS}
    for i in range(samples):
        kernels = harness_kernels(mode, seed + i, build)
        for name, value in compute_outputs(kernels, arrays, shapes).items():
            stacks[name].append(value)
    return {k: np.stack(v) for k, v in stacks.items()}


#: runs the runner for one backend: (backend, inputs folder, outputs folder, samples, seed) -> record
#: runs the runner for one backend: (backend, run directory, samples, seed) -> its run record
VfcExecutor = Callable[[VfcBackend, Path, int, int], dict]


def parse_kinds(kinds) -> list[InputKind]:
    return [parse_enum(InputKind, k, "input kind") for k in kinds]


def parse_dtypes(dtypes) -> list[str]:
    for d in dtypes:
        if d not in DTYPES:
            raise InputError(f"dtype must be one of {sorted(DTYPES)}, got {d!r}")
    return list(dtypes)


# ---------------------------------------------------------------- executors of the runner

#: where the validation run directory is mounted inside the image
CONTAINER_RUN = "/vfc/run"


def runner_command(backend: VfcBackend, run_dir: str, samples: int, seed: int,
                   python: str = "python3") -> list[str]:  # fmt: skip
    """The command line of :mod:`harness.kernels.vfc_runner` for one backend."""
    return [
        python, "-m", "harness.kernels.vfc_runner", "--run", run_dir, "--backend", backend.name,
        "--samples", str(samples), "--seed", str(seed),
    ]  # fmt: skip


def local_executor(timeout_s: float = 600) -> VfcExecutor:
    """Run the runner as a subprocess of this machine (inside the Verificarlo image)."""
    import json
    import subprocess
    import sys

    from harness.kernels.vfc import default_library

    default_library()  # fail early, with the message saying where the library comes from

    def run(backend, run_dir, samples, seed):
        cmd = runner_command(backend, str(run_dir), samples, seed, sys.executable)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:
            raise InputError(
                f"the Verificarlo runner for {backend.name} exited with {done.returncode}: "
                f"{done.stderr.strip()[-2000:]}"
            )
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run



