"""ctypes binding of the C API in ``kernels/harness_kernels.h``: NumPy arrays in and out.

Any shared library built from ``kernels/kernels_cpu.c`` exposes this API (a native build with the
system compiler, or the Verificarlo build linked by ``verificarlo-c -shared``); no torch extension
is involved. Shapes: x (N, C, H, W), w (K, C, R, S), y (N, K, P, Q); float32 or float64, C order.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from harness.errors import InputError

_i64 = ctypes.c_int64
_ptr = ctypes.c_void_p


class ConvShape(ctypes.Structure):
    """``harness_conv_shape``."""

    _fields_ = [
        (name, _i64)
        for name in (
            "N", "C", "H", "W", "K", "R", "S", "P", "Q",
            "stride_h", "stride_w", "pad_h", "pad_w", "dil_h", "dil_w",
        )
    ]  # fmt: skip


@dataclass(frozen=True)
class ConvGeometry:
    """Stride, padding and dilation of a 2-D convolution (pairs, groups = 1)."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)

    def output_hw(self, h: int, w: int, r: int, s: int) -> tuple[int, int]:
        p = (h + 2 * self.padding[0] - self.dilation[0] * (r - 1) - 1) // self.stride[0] + 1
        q = (w + 2 * self.padding[1] - self.dilation[1] * (s - 1) - 1) // self.stride[1] + 1
        if p < 1 or q < 1:
            raise InputError(f"convolution output would be empty: P={p}, Q={q}")
        return p, q

    def shape(self, x_shape, w_shape) -> ConvShape:
        n, c, h, w = x_shape
        k, c_w, r, s = w_shape
        if c_w != c:
            raise InputError(f"weight.shape[1] must equal x channels {c} (groups=1), got {c_w}")
        p, q = self.output_hw(h, w, r, s)
        return ConvShape(n, c, h, w, k, r, s, p, q, *self.stride, *self.padding, *self.dilation)


#: stride 1, no padding, no dilation
DEFAULT_GEOMETRY = ConvGeometry()

_SUFFIX = {np.dtype(np.float32): "f", np.dtype(np.float64): "d"}


def _suffix(x: np.ndarray) -> str:
    try:
        return _SUFFIX[x.dtype]
    except KeyError:
        raise InputError(f"arrays must be float32 or float64, got {x.dtype}") from None


def _c(name: str, x: np.ndarray | None, dtype, ndim: int | None = None):
    if x is None:
        return None
    x = np.ascontiguousarray(x)
    if x.dtype != dtype:
        raise InputError(f"{name} must have dtype {np.dtype(dtype)}, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {x.shape}")
    return x


def _p(x: np.ndarray | None):
    return None if x is None else x.ctypes.data_as(_ptr)


class KernelLibrary:
    """The kernels of one loaded shared library.

    Parameters
    ----------
    cdll : ctypes.CDLL
        A library exporting the ``harness_*`` functions.
    seed : int
        Key of harness's own random streams (unused by an ieee build, whatever its backend).
    """

    def __init__(self, cdll: ctypes.CDLL, seed: int = 0):
        self.cdll = cdll
        self.seed = int(seed) & ((1 << 64) - 1)
        self.calls = 0
        self.cdll.harness_mode_name.restype = ctypes.c_char_p
        for suf in "fd":
            for base in ("conv2d_fwd", "conv2d_bwd_input", "conv2d_bwd_weight"):
                getattr(cdll, f"harness_{base}_{suf}").argtypes = [
                    *([_ptr] * (3 if base != "conv2d_bwd_weight" else 4)),
                    ctypes.POINTER(ConvShape), ctypes.c_uint64, ctypes.c_uint32,
                ]  # fmt: skip
            getattr(cdll, f"harness_conv2d_fwd_{suf}").argtypes = [
                _ptr, _ptr, _ptr, _ptr, ctypes.POINTER(ConvShape), ctypes.c_uint64, ctypes.c_uint32
            ]
            getattr(cdll, f"harness_bn_fwd_train_{suf}").argtypes = [
                *([_ptr] * 8), _i64, _i64, _i64, ctypes.c_double, ctypes.c_double,
                ctypes.c_uint64, ctypes.c_uint32,
            ]  # fmt: skip
            getattr(cdll, f"harness_bn_apply_{suf}").argtypes = [
                *([_ptr] * 6), _i64, _i64, _i64, ctypes.c_uint64, ctypes.c_uint32
            ]
            getattr(cdll, f"harness_bn_bwd_train_{suf}").argtypes = [
                *([_ptr] * 8), _i64, _i64, _i64, ctypes.c_uint64, ctypes.c_uint32
            ]

    @property
    def mode_name(self) -> str:
        """Arithmetic compiled into the library (``ieee``, ``sr`` or ``rr``)."""
        return self.cdll.harness_mode_name().decode()

    def _call_id(self) -> int:
        call = self.calls & ((1 << 28) - 1)
        self.calls += 1
        return call

    def _fn(self, name: str, x: np.ndarray):
        return getattr(self.cdll, f"harness_{name}_{_suffix(x)}")

    def conv2d_forward(self, x, w, b=None, geometry: ConvGeometry = DEFAULT_GEOMETRY) -> np.ndarray:
        """y = conv(x, w) + b."""
        x = _c("x", np.asarray(x), np.asarray(x).dtype, 4)
        w, b = _c("w", w, x.dtype, 4), _c("b", b, x.dtype, 1)
        s = geometry.shape(x.shape, w.shape)
        y = np.empty((s.N, s.K, s.P, s.Q), dtype=x.dtype)
        self._fn("conv2d_fwd", x)(_p(x), _p(w), _p(b), _p(y), s, self.seed, self._call_id())
        return y

    def conv2d_backward_input(
        self, gy, w, x_shape, geometry: ConvGeometry = DEFAULT_GEOMETRY
    ) -> np.ndarray:
        """gx = conv_transpose(gy, w), of shape ``x_shape``."""
        gy = _c("gy", np.asarray(gy), np.asarray(gy).dtype, 4)
        w = _c("w", w, gy.dtype, 4)
        s = geometry.shape(tuple(x_shape), w.shape)
        if gy.shape != (s.N, s.K, s.P, s.Q):
            raise InputError(f"gy must have shape {(s.N, s.K, s.P, s.Q)}, got {gy.shape}")
        gx = np.empty(tuple(x_shape), dtype=gy.dtype)
        self._fn("conv2d_bwd_input", gy)(_p(gy), _p(w), _p(gx), s, self.seed, self._call_id())
        return gx

    def conv2d_backward_weight(
        self, x, gy, w_shape, bias: bool = True, geometry: ConvGeometry = DEFAULT_GEOMETRY
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """gw = sum gy x and gb = sum gy (None without bias)."""
        x = _c("x", np.asarray(x), np.asarray(x).dtype, 4)
        gy = _c("gy", gy, x.dtype, 4)
        s = geometry.shape(x.shape, tuple(w_shape))
        gw = np.empty(tuple(w_shape), dtype=x.dtype)
        gb = np.empty(s.K, dtype=x.dtype) if bias else None
        self._fn("conv2d_bwd_weight", x)(
            _p(x), _p(gy), _p(gw), _p(gb), s, self.seed, self._call_id()
        )
        return gw, gb

    def bn_forward_train(self, x, gamma=None, beta=None, eps: float = 1e-5):
        """Training batchnorm: (y, mean, invstd) from batch statistics (no running stats)."""
        x = _c("x", np.asarray(x), np.asarray(x).dtype, 4)
        gamma, beta = _c("gamma", gamma, x.dtype, 1), _c("beta", beta, x.dtype, 1)
        n, c, h, w = x.shape
        y = np.empty_like(x)
        mean, invstd = np.empty(c, dtype=x.dtype), np.empty(c, dtype=x.dtype)
        self._fn("bn_fwd_train", x)(
            _p(x), _p(gamma), _p(beta), _p(y), _p(mean), _p(invstd), None, None,
            n, c, h * w, float(eps), 0.0, self.seed, self._call_id(),
        )  # fmt: skip
        return y, mean, invstd

    def bn_apply(self, x, mean, invstd, gamma=None, beta=None) -> np.ndarray:
        """y = (x - mean) invstd gamma + beta with given statistics."""
        x = _c("x", np.asarray(x), np.asarray(x).dtype, 4)
        mean, invstd = _c("mean", mean, x.dtype, 1), _c("invstd", invstd, x.dtype, 1)
        gamma, beta = _c("gamma", gamma, x.dtype, 1), _c("beta", beta, x.dtype, 1)
        n, c, h, w = x.shape
        y = np.empty_like(x)
        self._fn("bn_apply", x)(
            _p(x), _p(gamma), _p(beta), _p(mean), _p(invstd), _p(y), n, c, h * w,
            self.seed, self._call_id(),
        )  # fmt: skip
        return y

    def bn_backward_train(self, x, gy, mean, invstd, gamma=None):
        """Training batchnorm backward: (gx, ggamma, gbeta)."""
        x = _c("x", np.asarray(x), np.asarray(x).dtype, 4)
        gy = _c("gy", gy, x.dtype, 4)
        mean, invstd = _c("mean", mean, x.dtype, 1), _c("invstd", invstd, x.dtype, 1)
        gamma = _c("gamma", gamma, x.dtype, 1)
        n, c, h, w = x.shape
        gx = np.empty_like(x)
        ggamma, gbeta = np.empty(c, dtype=x.dtype), np.empty(c, dtype=x.dtype)
        self._fn("bn_bwd_train", x)(
            _p(x), _p(gy), _p(gamma), _p(mean), _p(invstd), _p(gx), _p(ggamma), _p(gbeta),
            n, c, h * w, self.seed, self._call_id(),
        )  # fmt: skip
        return gx, ggamma, gbeta
