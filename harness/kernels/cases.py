"""Validation inputs for the kernels and the outputs computed from them, engine-independent.

A *case* is one input kind in one dtype: conv2d inputs ``x (N, C, H, W)``, ``w (K, C, R, S)``,
``b (K,)``, ``gy (N, K, P, Q)`` and batchnorm inputs ``bx (N, C, H, W)``, ``gamma``, ``beta``,
``bgy`` plus the statistics ``bmean``/``binvstd`` the backward kernel takes (computed in fp64 and
rounded, so every engine differentiates at the same point). Kinds:

``random``
    Gaussian data: what training sees; rounding happens everywhere.
``exact-int``
    Small integers: every product and partial sum of the convolutions is exact, so stochastic
    rounding must leave those results exactly equal to the reference.
``pow2``
    Positive powers of two (0.25 .. 2): exact dyadic sums whose partial sums often land exactly on
    a power of two, where the spacing of floats changes.
``near-pow2``
    The neighbours of 1 (``1 - u/2``, ``1``, ``1 + u``): products and sums land next to powers of
    two, inexact on both sides of a binade edge.
``zeros``
    Half the inputs zero, one channel and one filter entirely zero: exact zeros must stay zero.

Outputs, named ``op.output``: ``conv_fwd.y``, ``conv_bwd_input.gx``, ``conv_bwd_weight.gw``,
``conv_bwd_weight.gb``, ``bn_fwd.y``, ``bn_fwd.mean``, ``bn_fwd.invstd``, ``bn_bwd.gx``,
``bn_bwd.ggamma``, ``bn_bwd.gbeta``. :func:`compute_outputs` runs them through any object with the
methods of :class:`harness.kernels.clib.KernelLibrary`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.kernels.clib import ConvGeometry


class InputKind(Enum):
    RANDOM = "random"
    EXACT_INT = "exact-int"
    POW2 = "pow2"
    NEAR_POW2 = "near-pow2"
    ZEROS = "zeros"


DTYPES = {"float32": np.float32, "float64": np.float64}
#: working precision p (significand bits, implicit bit included)
PRECISION = {"float32": 24, "float64": 53}

OUTPUTS = (
    "conv_fwd.y",
    "conv_bwd_input.gx",
    "conv_bwd_weight.gw",
    "conv_bwd_weight.gb",
    "bn_fwd.y",
    "bn_fwd.mean",
    "bn_fwd.invstd",
    "bn_bwd.gx",
    "bn_bwd.ggamma",
    "bn_bwd.gbeta",
)

#: batchnorm epsilon of every case
EPS = 1e-5


@dataclass(frozen=True)
class Shapes:
    """Sizes of the validation problem (small: every engine runs each case many times)."""

    n: int = 2
    c: int = 3
    hw: int = 6
    k: int = 4
    kernel: int = 3
    bn_hw: int = 4  # N * bn_hw^2 = 32 values per channel: a power of two, so exact means exist

    @property
    def geometry(self) -> ConvGeometry:
        pad = self.kernel // 2
        return ConvGeometry((1, 1), (pad, pad), (1, 1))


@dataclass(frozen=True)
class Case:
    kind: InputKind
    dtype: str

    @property
    def name(self) -> str:
        return f"{self.kind.value}-{self.dtype}"


def _choice(rng, values, shape, dtype):
    return rng.choice(np.asarray(values, dtype=np.float64), size=shape).astype(dtype)


def make_inputs(case: Case, shapes: Shapes, seed: int) -> dict[str, np.ndarray]:
    """The arrays of one case, drawn from ``numpy.random.default_rng(seed)``."""
    from harness.kernels import reference

    dt = DTYPES[case.dtype]
    rng = np.random.default_rng(seed)
    s = shapes
    conv_x = (s.n, s.c, s.hw, s.hw)
    conv_w = (s.k, s.c, s.kernel, s.kernel)
    conv_y = (s.n, s.k, s.hw, s.hw)  # 'same' padding, stride 1
    bn_x = (s.n, s.c, s.bn_hw, s.bn_hw)
    u = float(np.finfo(dt).eps)  # 2^(1-p)
    kind = case.kind
    if kind is InputKind.RANDOM:
        a = {
            "x": rng.standard_normal(conv_x), "w": rng.standard_normal(conv_w) * 0.3,
            "b": rng.standard_normal(s.k), "gy": rng.standard_normal(conv_y),
            "bx": rng.standard_normal(bn_x) * 2 + 3, "gamma": 1 + 0.1 * rng.standard_normal(s.c),
            "beta": 0.1 * rng.standard_normal(s.c), "bgy": rng.standard_normal(bn_x),
        }  # fmt: skip
    elif kind is InputKind.EXACT_INT:
        a = {
            "x": _choice(rng, range(-3, 4), conv_x, np.float64),
            "w": _choice(rng, range(-2, 3), conv_w, np.float64),
            "b": _choice(rng, range(-4, 5), (s.k,), np.float64),
            "gy": _choice(rng, range(-2, 3), conv_y, np.float64),
            "bx": _choice(rng, range(-4, 5), bn_x, np.float64),
            "gamma": _choice(rng, (1, 2), (s.c,), np.float64),
            "beta": _choice(rng, range(-2, 3), (s.c,), np.float64),
            "bgy": _choice(rng, range(-2, 3), bn_x, np.float64),
        }
    elif kind is InputKind.POW2:
        pow2 = (0.25, 0.5, 1.0, 2.0)
        a = {
            "x": _choice(rng, pow2, conv_x, np.float64),
            "w": _choice(rng, pow2, conv_w, np.float64),
            "b": _choice(rng, pow2, (s.k,), np.float64),
            "gy": _choice(rng, pow2, conv_y, np.float64),
            "bx": _choice(rng, pow2, bn_x, np.float64),
            "gamma": np.ones(s.c), "beta": np.zeros(s.c),
            "bgy": _choice(rng, pow2, bn_x, np.float64),
        }  # fmt: skip
    elif kind is InputKind.NEAR_POW2:
        near = (1 - u / 2, 1.0, 1 + u)
        a = {
            "x": _choice(rng, near, conv_x, np.float64),
            "w": _choice(rng, [v * f for v in near for f in (0.5, 1.0)], conv_w, np.float64),
            "b": _choice(rng, near, (s.k,), np.float64),
            "gy": _choice(rng, near, conv_y, np.float64),
            "bx": _choice(rng, [v * f for v in near for f in (1.0, 2.0)], bn_x, np.float64),
            "gamma": _choice(rng, near, (s.c,), np.float64), "beta": np.zeros(s.c),
            "bgy": _choice(rng, near, bn_x, np.float64),
        }  # fmt: skip
    elif kind is InputKind.ZEROS:
        def sparse(shape):
            v = rng.standard_normal(shape)
            return np.where(rng.random(shape) < 0.5, 0.0, v)

        a = {
            "x": sparse(conv_x), "w": sparse(conv_w) * 0.3, "b": np.zeros(s.k),
            "gy": sparse(conv_y), "bx": sparse(bn_x) + 1, "gamma": np.ones(s.c),
            "beta": np.zeros(s.c), "bgy": sparse(bn_x),
        }  # fmt: skip
        a["x"][:, 0] = 0.0
        a["w"][0] = 0.0
        a["bx"][:, 0] = 0.0
    else:  # pragma: no cover - every kind is handled above
        raise InputError(f"unknown input kind {kind!r}")
    arrays = {k: np.ascontiguousarray(v, dtype=dt) for k, v in a.items()}
    _, mean, invstd = reference.bn_forward_train(
        arrays["bx"], arrays["gamma"], arrays["beta"], EPS, dtype=np.float64
    )
    arrays["bmean"], arrays["binvstd"] = mean.astype(dt), invstd.astype(dt)
    return arrays


def compute_outputs(kernels, a: dict[str, np.ndarray], shapes: Shapes) -> dict[str, np.ndarray]:
    """Every output of one case through ``kernels`` (one sample: one call of each kernel)."""
    g = shapes.geometry
    y = kernels.conv2d_forward(a["x"], a["w"], a["b"], g)
    gx = kernels.conv2d_backward_input(a["gy"], a["w"], a["x"].shape, g)
    gw, gb = kernels.conv2d_backward_weight(a["x"], a["gy"], a["w"].shape, True, g)
    by, bmean, binvstd = kernels.bn_forward_train(a["bx"], a["gamma"], a["beta"], EPS)
    bgx, bgg, bgb = kernels.bn_backward_train(
        a["bx"], a["bgy"], a["bmean"], a["binvstd"], a["gamma"]
    )
    values = (y, gx, gw, gb, by, bmean, binvstd, bgx, bgg, bgb)
    return dict(zip(OUTPUTS, (np.asarray(v) for v in values), strict=True))


def reference_outputs(a: dict[str, np.ndarray], shapes: Shapes) -> dict[str, np.ndarray]:
    """The outputs in extended precision (``np.longdouble``), as float64 arrays of exact-ish values.

    Returned as ``longdouble`` so exactness checks against the working dtype stay meaningful."""
    from harness.kernels import reference as ref

    g = shapes.geometry
    y = ref.conv2d_forward(a["x"], a["w"], a["b"], g)
    gx = ref.conv2d_backward_input(a["gy"], a["w"], a["x"].shape, g)
    gw, gb = ref.conv2d_backward_weight(a["x"], a["gy"], a["w"].shape, g)
    by, bmean, binvstd = ref.bn_forward_train(a["bx"], a["gamma"], a["beta"], EPS)
    bgx, bgg, bgb = ref.bn_backward_train(a["bx"], a["bgy"], a["bmean"], a["binvstd"], a["gamma"])
    return dict(zip(OUTPUTS, (y, gx, gw, gb, by, bmean, binvstd, bgx, bgg, bgb), strict=True))


# ---------------------------------------------------------------- the files a runner reads


def write_inputs(run_dir: Path, cases: list[Case], shapes: Shapes, seed: int) -> dict:
    """Write every case's arrays and the case list into ``run_dir`` (catalogue:
    ``inputs/cases.json``, ``inputs/{case}/{array}.npy``)."""
    from harness.runs import atomic_write_json
    from harness.runs.catalogue import VALIDATION_CASES, VALIDATION_INPUT

    index = {"shapes": asdict(shapes), "seed": seed, "cases": []}
    for i, case in enumerate(cases):
        for name, array in make_inputs(case, shapes, seed + 1000 * i).items():
            path = VALIDATION_INPUT.path(run_dir, case=case.name, array=name)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, array, allow_pickle=False)
        index["cases"].append({"name": case.name, "kind": case.kind.value, "dtype": case.dtype})
    atomic_write_json(VALIDATION_CASES.path(run_dir), index)
    return index


def read_inputs(run_dir: Path) -> tuple[Shapes, list[tuple[Case, dict[str, np.ndarray]]]]:
    """Read what :func:`write_inputs` wrote."""
    from harness.runs.catalogue import VALIDATION_CASES, VALIDATION_INPUT

    path = VALIDATION_CASES.path(run_dir)
    if not path.is_file():
        raise InputError(f"no {VALIDATION_CASES.name} in {run_dir}")
    index = json.loads(path.read_text())
    shapes = Shapes(**index["shapes"])
    out = []
    for entry in index["cases"]:
        case = Case(InputKind(entry["kind"]), entry["dtype"])
        arrays = {}
        for file in VALIDATION_INPUT.glob(run_dir):
            fields = VALIDATION_INPUT.match(file.relative_to(run_dir))
            if fields["case"] == case.name:
                arrays[fields["array"]] = np.load(file, allow_pickle=False)
        out.append((case, arrays))
    return shapes, out
