"""Per-layer-type wiring: hooks that collect ``A`` and ``Delta``, and the spectra they give.

Each handler is bound to one module. Its forward hook keeps the module's input (detached, no copy:
autograd keeps the same storage alive anyway) and registers a tensor hook on the output that keeps
the gradient flowing into it; neither hook returns a value, so the model's gradients are untouched.
The math lives in :mod:`harness.introspect.spectra`; a new layer type needs a handler registered with
:func:`register_handler`.

Shape letters: ``N`` samples, ``R`` rows per sample (positions, time steps), ``C`` channels.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import InputError
from harness.introspect import spectra

#: elements of unfolded conv patches materialised at once (64 Mi: 256 MB in fp32)
_CHUNK_ELEMENTS = 1 << 26


class Quantity(enum.Enum):
    """What a singular value belongs to: the group's weight gradient, inputs or adjoints."""

    GRAD = "grad"
    ACT = "act"
    ADJ = "adj"


@dataclass
class Call:
    """One forward call of a module: its inputs and, after backward, the output gradients."""

    inputs: tuple
    grads: list = field(default_factory=list)


Spectrum = tuple[str, Quantity, torch.Tensor]  # (layer, quantity, singular values)


class Handler:
    """Base class: collects calls of one module while ``capture()`` is true."""

    def __init__(self, module: nn.Module, name: str):
        self.module = module
        self.name = name
        self.calls: list[Call] = []
        self._tensor_handles: list = []

    @classmethod
    def check_supported(cls, module: nn.Module, name: str) -> None:
        """Raise :class:`InputError` if this module's configuration is not supported."""

    def outputs(self, output) -> list[torch.Tensor]:
        """The output tensors whose gradients the handler needs (order of ``Call.grads``)."""
        return [output]

    def keep_inputs(self, args: tuple, kwargs: dict) -> tuple:
        return (args[0].detach(),)

    def attach(self, capture: Callable[[], bool]):
        """Register the forward hook; returns its removable handle."""

        def forward_hook(module, args, kwargs, output):
            if not capture():
                return None
            tensors = self.outputs(output)
            if not any(t is not None and t.requires_grad for t in tensors):
                return None
            call = Call(self.keep_inputs(args, kwargs), [None] * len(tensors))
            self.calls.append(call)
            for slot, tensor in enumerate(tensors):
                if tensor is not None and tensor.requires_grad:
                    self._tensor_handles.append(tensor.register_hook(_keeper(call, slot)))
            return None

        return self.module.register_forward_hook(forward_hook, with_kwargs=True)

    def clear(self) -> None:
        for handle in self._tensor_handles:
            handle.remove()
        self._tensor_handles.clear()
        self.calls.clear()

    def complete_calls(self) -> list[Call]:
        """Calls whose first output received a gradient (the others did not affect the loss)."""
        return [c for c in self.calls if c.grads and c.grads[0] is not None]

    def spectra(
        self, masks: Sequence[torch.Tensor], quantities: Sequence[Quantity], k: int | None, dtype
    ) -> Iterator[tuple[int, str, Quantity, torch.Tensor]]:
        """Yield ``(group index, layer, quantity, values)`` for every group mask."""
        raise NotImplementedError

    def group_gradients(self, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weight gradients restricted to the samples in ``mask`` (for validation)."""
        raise NotImplementedError


def _keeper(call: Call, slot: int):
    def hook(grad):
        call.grads[slot] = grad.detach()

    return hook


def _batch_check(n_rows: int, mask: torch.Tensor, name: str) -> None:
    if mask.shape[0] != n_rows:
        raise InputError(
            f"group labels must have one entry per sample: layer {name!r} saw a batch of "
            f"{n_rows}, got {mask.shape[0]} labels"
        )


class RowHandler(Handler):
    """Layers whose weight gradient is ``sum_rows A^T D`` (Linear, recurrent cells)."""

    def pairs(self, dtype) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``param name -> (A (N, R, h_in), D (N, R, h_out))`` over all complete calls."""
        raise NotImplementedError

    def spectra(self, masks, quantities, k, dtype):
        for param, (a, d) in self.pairs(dtype).items():
            layer = f"{self.name}.{param}" if self.name else param
            for index, mask in enumerate(masks):
                _batch_check(a.shape[0], mask, layer)
                a_g = a[mask].reshape(-1, a.shape[-1])
                d_g = d[mask].reshape(-1, d.shape[-1])
                yield from (
                    (index, layer, quantity, values)
                    for quantity, values in _row_spectra(a_g, d_g, quantities, k).items()
                )

    def group_gradients(self, mask):
        out = {}
        for param, (a, d) in self.pairs(None).items():
            a_g = a[mask].reshape(-1, a.shape[-1])
            d_g = d[mask].reshape(-1, d.shape[-1])
            out[param] = d_g.T @ a_g
        return out


def _row_spectra(a_g, d_g, quantities, k) -> dict[Quantity, torch.Tensor]:
    """grad/act/adj spectra of one group's rows, sharing one QR of each of ``A_g``, ``D_g``."""
    n, h_in, h_out = a_g.shape[0], a_g.shape[1], d_g.shape[1]
    core = n < min(h_in, h_out)
    r_a = spectra.small_factor(a_g) if (core or Quantity.ACT in quantities) else None
    r_d = spectra.small_factor(d_g) if (core or Quantity.ADJ in quantities) else None
    out = {}
    for quantity in quantities:
        if quantity is Quantity.GRAD:
            if core:
                out[quantity] = spectra.core_svdvals(r_a, r_d, k, min(h_in, h_out))
            else:
                out[quantity] = spectra.svdvals(a_g.T @ d_g, k)
        elif quantity is Quantity.ACT:
            out[quantity] = spectra.svdvals(r_a, k)
        else:
            out[quantity] = spectra.svdvals(r_d, k)
    return out


def _rows(t: torch.Tensor, dtype) -> torch.Tensor:
    t = t.reshape(t.shape[0], -1, t.shape[-1])
    return t if dtype is None else t.to(dtype)


class LinearHandler(RowHandler):
    """``nn.Linear`` (inputs of any shape ``(N, *, h_in)``; batch on the first dimension)."""

    def pairs(self, dtype):
        calls = self.complete_calls()
        if not calls:
            return {}
        a = torch.cat([_rows(c.inputs[0], dtype) for c in calls], dim=1)
        d = torch.cat([_rows(c.grads[0], dtype) for c in calls], dim=1)
        return {"weight": (a, d)}


def _tuple(value, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


class ConvHandler(Handler):
    """``nn.Conv1d/2d/3d`` with any stride, padding (mode), dilation and groups."""

    dims = 2

    @classmethod
    def check_supported(cls, module, name):
        if getattr(module, "transposed", False):
            raise InputError(f"layer {name!r}: transposed convolutions are not supported")

    def geometry(self, padding) -> spectra.ConvGeometry:
        m = self.module
        return spectra.ConvGeometry(
            dims=self.dims,
            kernel_size=_tuple(m.kernel_size, self.dims),
            stride=_tuple(m.stride, self.dims),
            padding=padding,
            dilation=_tuple(m.dilation, self.dims),
            groups=m.groups,
        )

    def keep_inputs(self, args, kwargs):
        """The input as the convolution saw it, with explicit zero padding in ``geometry``."""
        m, x = self.module, args[0].detach()
        if x.ndim == self.dims + 1:  # unbatched input
            x = x.unsqueeze(0)
        if m.padding_mode != "zeros":
            x = F.pad(x, m._reversed_padding_repeated_twice, mode=m.padding_mode)
            return x, (0,) * self.dims
        if isinstance(m.padding, str):
            if m.padding == "valid":
                return x, (0,) * self.dims
            pad = []
            for size, dil in zip(
                reversed(_tuple(m.kernel_size, self.dims)),
                reversed(_tuple(m.dilation, self.dims)),
                strict=True,
            ):
                total = dil * (size - 1)
                pad += [total // 2, total - total // 2]
            return F.pad(x, pad), (0,) * self.dims
        return x, _tuple(m.padding, self.dims)

    def outputs(self, output):
        return [output]

    def _grad(self, call: Call, dtype) -> torch.Tensor:
        g = call.grads[0]
        g = g.unsqueeze(0) if g.ndim == self.dims + 1 else g
        return g if dtype is None else g.to(dtype)

    def _input(self, call: Call, dtype) -> torch.Tensor:
        x = call.inputs[0]
        return x if dtype is None else x.to(dtype)

    def group_gradients(self, mask):
        calls = self.complete_calls()
        weight_shape = self.module.weight.shape
        total = None
        for call in calls:
            geometry = self.geometry(call.inputs[1])
            x, d = self._input(call, None), self._grad(call, None)
            grad = spectra.conv_group_grad(x[mask], d[mask], weight_shape, geometry)
            total = grad if total is None else total + grad
        return {"weight": total}

    def spectra(self, masks, quantities, k, dtype):
        calls = self.complete_calls()
        if not calls:
            return
        layer = f"{self.name}.weight" if self.name else "weight"
        n = self._input(calls[0], None).shape[0]
        for index, mask in enumerate(masks):
            _batch_check(n, mask, layer)
            matrices = self._group_matrices(calls, mask, quantities, dtype)
            for quantity in quantities:
                if quantity is Quantity.GRAD:
                    grad = matrices[quantity]
                    values = spectra.svdvals(grad.reshape(grad.shape[0], -1), k)
                else:
                    values = spectra.gram_svdvals(matrices[quantity], k)
                yield index, layer, quantity, values

    def _group_matrices(self, calls, mask, quantities, dtype) -> dict[Quantity, torch.Tensor]:
        """The group's gradient and the Gram matrices of its patches and adjoints, over calls.

        With ``act`` requested and ``groups == 1`` the unfolded patches ``P`` (rows: sample x
        output position, columns ``C_in * K``) serve both ``P^T P`` and the gradient ``D^T P``,
        accumulated in float64 in chunks of samples; otherwise the gradient comes from
        ``conv{N}d_weight`` in ``dtype``. Adjoint rows ``D`` are (sample x position, ``C_out``).
        """
        want_act, want_adj = Quantity.ACT in quantities, Quantity.ADJ in quantities
        want_grad = Quantity.GRAD in quantities
        shared = want_act and self.module.groups == 1
        out: dict[Quantity, torch.Tensor] = {}

        def add(quantity, value):
            out[quantity] = value if quantity not in out else out[quantity] + value

        for call in calls:
            geometry = self.geometry(call.inputs[1])
            x, d = self._input(call, None)[mask], self._grad(call, None)[mask]
            if want_grad and not shared:
                x_c, d_c = (x, d) if dtype is None else (x.to(dtype), d.to(dtype))
                weight_shape = self.module.weight.shape
                add(Quantity.GRAD, spectra.conv_group_grad(x_c, d_c, weight_shape, geometry))
            if not (want_act or want_adj):
                continue
            width = x.shape[1] * math.prod(geometry.kernel_size)
            positions = math.prod(d.shape[2:])
            chunk = max(1, _CHUNK_ELEMENTS // max(1, positions * max(width, d.shape[1])))
            for x_part, d_part in zip(x.split(chunk), d.split(chunk), strict=True):
                rows_d = d_part.double().flatten(2).transpose(1, 2).reshape(-1, d.shape[1])
                if want_adj:
                    add(Quantity.ADJ, rows_d.T @ rows_d)
                if want_act:
                    patches = spectra.unfold_patches(x_part.double(), geometry)
                    patches = patches.reshape(-1, patches.shape[-1])
                    add(Quantity.ACT, patches.T @ patches)
                    if shared and want_grad:
                        add(Quantity.GRAD, rows_d.T @ patches)
        return out


class Conv1dHandler(ConvHandler):
    dims = 1


class Conv2dHandler(ConvHandler):
    dims = 2


class Conv3dHandler(ConvHandler):
    dims = 3


class RecurrentHandler(RowHandler):
    """``nn.RNN``/``nn.GRU``/``nn.LSTM`` (one layer, one direction) through their per-step maps.

    The fused kernels hide the gate pre-activations, so after backward the handler replays the
    recurrence step by step on detached copies of the recorded input, initial state and the
    module's own weights, and back-propagates the recorded output gradients through the replay.
    That yields ``Delta_ih`` (gradient at ``x_t W_ih^T + b_ih``) and ``Delta_hh`` (at
    ``h_{t-1} W_hh^T + b_hh``) for every step, so ``grad W_ih = sum_t Delta_ih,t^T x_t`` and
    ``grad W_hh = sum_t Delta_hh,t^T h_{t-1}``. The replay runs outside the model's graph.
    """

    @classmethod
    def check_supported(cls, module, name):
        if module.num_layers != 1 or module.bidirectional or getattr(module, "proj_size", 0):
            raise InputError(
                f"layer {name!r}: only single-layer, unidirectional recurrent layers without "
                "projections are supported; stack single-layer modules instead"
            )

    def keep_inputs(self, args, kwargs):
        x = args[0]
        if isinstance(x, nn.utils.rnn.PackedSequence):
            raise InputError(f"layer {self.name!r}: packed sequences are not supported")
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        if isinstance(hx, tuple):
            hx = tuple(h.detach() for h in hx)
        elif hx is not None:
            hx = hx.detach()
        return (x.detach(), hx)

    def outputs(self, output):
        out, state = output
        return [out, *(state if isinstance(state, tuple) else (state,))]

    def pairs(self, dtype):
        xs, hs, dis, dhs = [], [], [], []
        for call in self.complete_calls():
            x, h_prev, d_ih, d_hh = self._replay(call, dtype)
            xs.append(x)
            hs.append(h_prev)
            dis.append(d_ih)
            dhs.append(d_hh)
        if not xs:
            return {}
        return {
            "weight_ih_l0": (torch.cat(xs, 1), torch.cat(dis, 1)),
            "weight_hh_l0": (torch.cat(hs, 1), torch.cat(dhs, 1)),
        }

    def _replay(self, call: Call, dtype):
        m = self.module
        x, hx = call.inputs
        unbatched = x.ndim == 2
        if unbatched:
            x = x.unsqueeze(0 if m.batch_first else 1)
        if not m.batch_first:
            x = x.transpose(0, 1)
        dtype = dtype or x.dtype
        x = x.to(dtype)
        n, steps, hidden = x.shape[0], x.shape[1], m.hidden_size
        lstm = isinstance(m, nn.LSTM)
        h0, c0 = (hx if lstm else (hx, None)) if hx is not None else (None, None)
        h = x.new_zeros(n, hidden) if h0 is None else h0.reshape(n, hidden).to(dtype)
        c = x.new_zeros(n, hidden) if (lstm and c0 is None) else c0
        c = c.reshape(n, hidden).to(dtype) if lstm else None

        def param(p):
            return None if p is None else p.detach().to(dtype)

        w_ih, w_hh = param(m.weight_ih_l0), param(m.weight_hh_l0)
        b_ih, b_hh = param(getattr(m, "bias_ih_l0", None)), param(getattr(m, "bias_hh_l0", None))
        gis, ghs, h_prev, outs = [], [], [], []
        with torch.enable_grad():
            for t in range(steps):
                gi = F.linear(x[:, t], w_ih, b_ih).requires_grad_()
                gh = F.linear(h, w_hh, b_hh)
                if not gh.requires_grad:
                    gh.requires_grad_()
                gis.append(gi)
                ghs.append(gh)
                h_prev.append(h.detach())
                h, c = _cell(m, gi, gh, h, c)
                outs.append(h)
            out = torch.stack(outs, 1)
            states = [h, c] if lstm else [h]
            targets, grads = [], []
            for tensor, grad in zip([out, *states], call.grads, strict=True):
                if grad is None:
                    continue
                if tensor is out:
                    grad = grad.unsqueeze(0 if m.batch_first else 1) if unbatched else grad
                    grad = grad if m.batch_first else grad.transpose(0, 1)
                targets.append(tensor)
                grads.append(grad.reshape(tensor.shape).to(dtype))
            d = torch.autograd.grad(targets, gis + ghs, grads, allow_unused=True)
        d = [torch.zeros_like(g) if v is None else v for g, v in zip(gis + ghs, d, strict=True)]
        d_ih, d_hh = torch.stack(d[:steps], 1), torch.stack(d[steps:], 1)
        return x.detach(), torch.stack(h_prev, 1), d_ih, d_hh


def _cell(m: nn.Module, gi, gh, h, c):
    """One step of PyTorch's RNN/GRU/LSTM given the two pre-activations (PyTorch's equations)."""
    if isinstance(m, nn.LSTM):
        i, f, g, o = (gi + gh).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    if isinstance(m, nn.GRU):
        r_i, z_i, n_i = gi.chunk(3, dim=1)
        r_h, z_h, n_h = gh.chunk(3, dim=1)
        r, z = torch.sigmoid(r_i + r_h), torch.sigmoid(z_i + z_h)
        n = torch.tanh(n_i + r * n_h)
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (torch.tanh(pre) if m.nonlinearity == "tanh" else torch.relu(pre)), None


#: layer type -> handler class; looked up along the module's MRO (subclasses inherit handlers).
HANDLERS: dict[type[nn.Module], type[Handler]] = {
    nn.Linear: LinearHandler,
    nn.Conv1d: Conv1dHandler,
    nn.Conv2d: Conv2dHandler,
    nn.Conv3d: Conv3dHandler,
    nn.RNN: RecurrentHandler,
    nn.GRU: RecurrentHandler,
    nn.LSTM: RecurrentHandler,
}


def register_handler(
    layer_type: type[nn.Module], handler: type[Handler], *, replace: bool = False
) -> None:
    """Probe layers of ``layer_type`` (and subclasses) with ``handler``.

    Parameters
    ----------
    layer_type : type of nn.Module
        The layer class.
    handler : type of Handler
        The handler class.
    replace : bool
        Allow replacing the handler already registered for exactly ``layer_type``.

    Raises
    ------
    TypeError
        If ``layer_type`` is not an ``nn.Module`` class or ``handler`` not a :class:`Handler`
        class.
    InputError
        If ``layer_type`` already has a handler and ``replace`` is False.
    """
    if not (isinstance(layer_type, type) and issubclass(layer_type, nn.Module)):
        raise TypeError(f"layer_type must be an nn.Module class, got {layer_type!r}")
    if not (isinstance(handler, type) and issubclass(handler, Handler)):
        raise TypeError(f"handler must be a Handler class, got {handler!r}")
    current = HANDLERS.get(layer_type)
    if current is not None and current is not handler and not replace:
        raise InputError(
            f"{layer_type.__name__} already has handler {current.__name__}; pass replace=True "
            f"to replace it with {handler.__name__}"
        )
    HANDLERS[layer_type] = handler


def handler_for(module: nn.Module) -> type[Handler] | None:
    for cls in type(module).__mro__:
        if cls in HANDLERS:
            return HANDLERS[cls]
    return None
