"""NumPy references of the kernels, in any dtype (``np.longdouble`` for a reference wider than fp64).

Same definitions as ``kernels/kernels_cpu_impl.h`` (zero padding, groups = 1, batch statistics with
the biased variance), summed in a different order: compare within rounding, not bitwise. On x86-64
``np.longdouble`` is the 80-bit extended type (64-bit significand), 11 bits more than fp64.
Shapes: x (N, C, H, W), w (K, C, R, S), y (N, K, P, Q).
"""

from __future__ import annotations

import numpy as np

from harness.kernels.clib import DEFAULT_GEOMETRY, ConvGeometry


def _padded(x: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    ph, pw = geometry.padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _window(xp: np.ndarray, r: int, s: int, p: int, q: int, g: ConvGeometry) -> np.ndarray:
    h0, w0 = r * g.dilation[0], s * g.dilation[1]
    return xp[:, :, h0 : h0 + g.stride[0] * (p - 1) + 1 : g.stride[0],
              w0 : w0 + g.stride[1] * (q - 1) + 1 : g.stride[1]]  # fmt: skip


def conv2d_forward(x, w, b=None, geometry: ConvGeometry = DEFAULT_GEOMETRY, dtype=np.longdouble):
    """y = conv(x, w) + b in ``dtype``."""
    x, w = np.asarray(x, dtype), np.asarray(w, dtype)
    n, c, h, wd = x.shape
    k, _, r_, s_ = w.shape
    p, q = geometry.output_hw(h, wd, r_, s_)
    xp = _padded(x, geometry)
    y = np.zeros((n, k, p, q), dtype)
    for r in range(r_):
        for s in range(s_):
            y += np.einsum("nchw,kc->nkhw", _window(xp, r, s, p, q, geometry), w[:, :, r, s])
    if b is not None:
        y += np.asarray(b, dtype)[None, :, None, None]
    return y


def conv2d_backward_input(gy, w, x_shape, geometry: ConvGeometry = DEFAULT_GEOMETRY, dtype=np.longdouble):
    """gx = conv_transpose(gy, w) in ``dtype`` (scatter of each output's gradient)."""
    gy, w = np.asarray(gy, dtype), np.asarray(w, dtype)
    n, c, h, wd = x_shape
    _, _, r_, s_ = w.shape
    p, q = gy.shape[2:]
    ph, pw = geometry.padding
    gxp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype)
    for r in range(r_):
        for s in range(s_):
            contrib = np.einsum("nkpq,kc->ncpq", gy, w[:, :, r, s])
            _window(gxp, r, s, p, q, geometry)[...] += contrib
    return gxp[:, :, ph : ph + h, pw : pw + wd]


def conv2d_backward_weight(x, gy, w_shape, geometry: ConvGeometry = DEFAULT_GEOMETRY, dtype=np.longdouble):
    """(gw, gb) = (sum gy x, sum gy) in ``dtype``."""
    x, gy = np.asarray(x, dtype), np.asarray(gy, dtype)
    k, c, r_, s_ = w_shape
    p, q = gy.shape[2:]
    xp = _padded(x, geometry)
    gw = np.zeros(tuple(w_shape), dtype)
    for r in range(r_):
        for s in range(s_):
            gw[:, :, r, s] = np.einsum("nkpq,ncpq->kc", gy, _window(xp, r, s, p, q, geometry))
    return gw, gy.sum(axis=(0, 2, 3))


def bn_forward_train(x, gamma=None, beta=None, eps=1e-5, dtype=np.longdouble):
    """(y, mean, invstd) of training batchnorm in ``dtype``."""
    x = np.asarray(x, dtype)
    mean = x.mean(axis=(0, 2, 3))
    var = ((x - mean[None, :, None, None]) ** 2).mean(axis=(0, 2, 3))
    invstd = 1 / np.sqrt(var + dtype(eps))
    y = (x - mean[None, :, None, None]) * invstd[None, :, None, None]
    if gamma is not None:
        y = y * np.asarray(gamma, dtype)[None, :, None, None]
    if beta is not None:
        y = y + np.asarray(beta, dtype)[None, :, None, None]
    return y, mean, invstd


def bn_backward_train(x, gy, mean, invstd, gamma=None, dtype=np.longdouble):
    """(gx, ggamma, gbeta) of training batchnorm in ``dtype`` with the given statistics."""
    x, gy = np.asarray(x, dtype), np.asarray(gy, dtype)
    mean, invstd = np.asarray(mean, dtype), np.asarray(invstd, dtype)
    shape = (1, -1, 1, 1)
    xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
    count = x.shape[0] * x.shape[2] * x.shape[3]
    gbeta = gy.sum(axis=(0, 2, 3))
    ggamma = (gy * xhat).sum(axis=(0, 2, 3))
    scale = invstd if gamma is None else np.asarray(gamma, dtype) * invstd
    gx = scale.reshape(shape) * (
        gy - (gbeta / count).reshape(shape) - xhat * (ggamma / count).reshape(shape)
    )
    return gx, ggamma, gbeta
