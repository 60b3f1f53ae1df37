"""``StochasticArithmetic``: op-level stochastic arithmetic for PyTorch, CPU and CUDA.

A :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every ATen operation that
reaches the backends — forward, autograd backward and the optimizer step alike — and perturbs
each floating-point result it writes (fresh outputs, in-place and ``out=`` targets) with the
rounding functions of :mod:`harness.perturb.rounding`. Granularity is the op: the
accumulations inside one convolution or matmul are not perturbed individually.

Wiring only: the math lives in :mod:`~harness.perturb.rounding` (reference) and its fused CPU
(:mod:`~harness.perturb.native`) and CUDA (:mod:`~harness.perturb.triton_kernels`) kernels,
random streams in :mod:`~harness.perturb.rng`, op policies in :mod:`~harness.perturb.registry`,
fast fp64 recomputations in :mod:`~harness.perturb.wide_ops`.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import (
    TorchDispatchMode,
    _disable_current_modes,
    _len_torch_dispatch_stack,
)

from harness.errors import InputError
from harness.perturb import native, rounding, triton_kernels, wide_ops
from harness.perturb.modes import SIGNIFICAND_BITS, WIDER, Mode, resolve_precision
from harness.perturb.registry import REGISTRY, Policy, check_op_names, packet_name
from harness.perturb.rng import KeyedStreams
from harness.perturb.triton_kernels import TritonUse

_TO_COPY = "aten._to_copy"


@dataclass(frozen=True)
class _OpInfo:
    """What one ATen overload writes, read once from its schema."""

    name: str  # packet name, e.g. "aten.add"
    policy: Policy
    written_args: tuple[tuple[int, str], ...]  # (position, name) of arguments marked ``(a!)``
    fresh_returns: tuple[int, ...]  # returns that alias nothing
    returns_alias: bool


#: ops that write arguments their schema does not mark ``(a!)``: the batch-norm kernels update
#: ``running_mean`` / ``running_var`` in place. Without this, the fp64 recomputation of rr/sr would
#: update copies and leave the module's running statistics at their initial values.
UNDECLARED_WRITES: dict[str, tuple[tuple[int, str], ...]] = {
    name: ((3, "running_mean"), (4, "running_var"))
    for name in ("aten.native_batch_norm", "aten.cudnn_batch_norm", "aten.miopen_batch_norm")
}


def _map(fn, value):
    """Apply ``fn`` to every leaf of an ATen argument or result (lists/tuples nest, dicts map
    their values): torch's pytree is general and ~10x slower on these flat structures."""
    if isinstance(value, (list, tuple)):
        return type(value)([_map(fn, v) for v in value])
    if isinstance(value, dict):
        return {k: _map(fn, v) for k, v in value.items()}
    return fn(value)


def _leaves(value, found: list) -> list:
    if isinstance(value, (list, tuple)):
        for v in value:
            _leaves(v, found)
    elif isinstance(value, dict):
        for v in value.values():
            _leaves(v, found)
    else:
        found.append(value)
    return found


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, torch.Tensor)]
    return []


def _written(info: _OpInfo, args, kwargs, out) -> list[torch.Tensor]:
    """Float tensors an op call wrote: its mutated arguments, then its fresh outputs."""
    if not info.written_args and isinstance(out, torch.Tensor):  # the common case: one result
        ok = info.fresh_returns and out.dtype in SIGNIFICAND_BITS and out.numel() > 0
        return [out] if ok else []
    found: list[torch.Tensor] = []
    for position, name in info.written_args:
        value = args[position] if position < len(args) else kwargs.get(name)
        found.extend(_tensors(value))
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for index in info.fresh_returns:
        if index < len(outs):
            found.extend(_tensors(outs[index]))
    unique, seen = [], set()
    for tensor in found:
        if tensor.dtype in SIGNIFICAND_BITS and tensor.numel() > 0 and id(tensor) not in seen:
            seen.add(id(tensor))
            unique.append(tensor)
    return unique


class StochasticArithmetic(TorchDispatchMode):
    """Context manager that perturbs the floating-point result of every ATen op.

    Parameters
    ----------
    mode : {"ieee", "rr", "sr", "ud"} or Mode
        ``ieee`` leaves every result bitwise unchanged (the context installs nothing, so it
        costs nothing); ``rr`` MCA random rounding
        ``fl(y + 2^(e(y)-t) xi)`` and ``sr`` stochastic rounding, both of the op's result
        recomputed in the wider type (see ``wide``); ``ud`` one ulp up or down with probability
        1/2. See docs/design.md, "Arithmetic modes".
    precision : None, int or dict
        Virtual precision ``t`` (see :func:`~harness.perturb.modes.resolve_precision`). ``ud``
        ignores it (always one ulp of the working type).
    seed : int
        Seed of the engine's own random streams; torch's global RNG is never used.
    include, exclude : list of str, optional
        Op names (``"aten.convolution"``, or an overload ``"aten.add.Tensor"``). With
        ``include`` only those ops are perturbed; ``exclude`` ops are never perturbed.
    unknown_ops : Policy or {"perturb", "skip"}
        Policy for ops absent from :data:`~harness.perturb.registry.REGISTRY`.
    history : bool
        Record ``(counter, op)`` for every perturbed tensor in :attr:`history`.
    triton : {"cuda", "off", "interpret"} or TritonUse
        Which tensors go through the fused Triton kernels
        (:mod:`~harness.perturb.triton_kernels`): ``cuda`` (default) contiguous CUDA tensors
        when Triton imports; ``off`` none; ``interpret`` also contiguous CPU tensors, through
        Triton's CPU interpreter (needs ``TRITON_INTERPRET=1`` before Triton's first import;
        slow, for checking the kernels without a GPU). ``True``/``False`` mean cuda/off.
        Under ``interpret`` the fused CPU kernels (``native``) are not used.
    wide : bool
        ``rr`` and ``sr`` need the op's exact result ``y``: with ``wide=True`` (default) the op is
        recomputed in the wider type (fp64 for fp32, fp32 for fp16/bf16) and the perturbed value
        is rounded from it, as Verificarlo does. With ``wide=False`` the perturbation is applied
        to the already rounded working-precision result: cheaper (no recomputation), but at
        ``t = p`` it changes almost nothing (the noise is below half an ulp, and a rounded value
        is exactly representable), so use it with ``t < p``.
    native : bool
        Use the fused C++ kernels (:mod:`harness.perturb.native`) for contiguous CPU tensors.
        ``False`` (or ``HARNESS_PERTURB_NATIVE=0``) selects the torch/numpy fallback, which gives
        bitwise the same results, slower.

    Attributes
    ----------
    counter : int
        Number of tensors perturbed so far (the key of the next random stream).
    op_counts : collections.Counter
        Perturbed tensors per op name.
    unknown_seen : set of str
        Ops met that the registry does not list.
    sr_fallbacks : collections.Counter
        Ops with no kernel in the wider type, left round-to-nearest under ``sr``.

    Examples
    --------
    >>> with StochasticArithmetic(mode="sr", seed=3) as sa:  # doctest: +SKIP
    ...     loss = model(x).sum(); loss.backward(); opt.step()
    >>> sa.counter  # doctest: +SKIP
    """

    def __init__(
        self,
        mode: Mode | str = "rr",
        precision: int | dict | None = None,
        seed: int = 0,
        include=None,
        exclude=None,
        unknown_ops: Policy | str = Policy.PERTURB,
        history: bool = False,
        triton: TritonUse | str | bool = TritonUse.CUDA,
        wide: bool = True,
        native: bool = True,
    ):
        super().__init__()
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {seed!r}")
        self.mode = Mode.parse(mode)
        self.precision = resolve_precision(precision)
        self.seed = seed
        self.include = check_op_names("include", include)
        self.exclude = check_op_names("exclude", exclude)
        self.unknown_ops = Policy.parse(unknown_ops)
        self.record_history = bool(history)
        self.triton = triton_kernels.check_use(TritonUse.parse(triton))
        self.wide = bool(wide)
        self.native = bool(native)
        self.counter = 0
        self.op_counts: Counter[str] = Counter()
        self.unknown_seen: set[str] = set()
        self.sr_fallbacks: Counter[str] = Counter()
        self.history: list[tuple[int, str]] = []
        self._streams = KeyedStreams(seed)
        self._infos: dict[object, _OpInfo] = {}
        self._depth = 0
        self._extension = None  # the fused CPU kernels, resolved on first use

    # -- context management -------------------------------------------------------------------
    def __enter__(self):
        if self._depth == 0:
            active = _active_contexts()
            if active:
                raise InputError(
                    "StochasticArithmetic contexts cannot be nested: another one is already "
                    f"active (mode={active[0].mode.value!r})"
                )
            if self.mode is not Mode.IEEE:  # ieee changes nothing: skip the dispatch overhead
                super().__enter__()
            active.append(self)
        self._depth += 1
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self._depth -= 1
        if self._depth == 0:
            _active_contexts().remove(self)
            if self.mode is not Mode.IEEE:
                super().__exit__(exc_type, exc_val, exc_tb)
        return False

    # -- policy -------------------------------------------------------------------------------
    def _info(self, func) -> _OpInfo:
        info = self._infos.get(func)
        if info is None:
            info = self._build_info(func)
            self._infos[func] = info
        return info

    def _build_info(self, func) -> _OpInfo:
        schema = func._schema
        written = tuple(
            (i, a.name)
            for i, a in enumerate(schema.arguments)
            if a.alias_info is not None and a.alias_info.is_write
        ) + UNDECLARED_WRITES.get(packet_name(func), ())
        fresh = tuple(i for i, r in enumerate(schema.returns) if r.alias_info is None)
        returns_alias = len(fresh) < len(schema.returns)
        policy = self._policy(func, written, fresh)
        return _OpInfo(packet_name(func), policy, written, fresh, returns_alias)

    def _policy(self, func, written, fresh) -> Policy:
        name, overload = packet_name(func), str(func)
        if torch.Tag.nondeterministic_seeded in func.tags:
            return Policy.SKIP
        if not written and not fresh:  # views and metadata-only ops
            return Policy.SKIP
        if name in self.exclude or overload in self.exclude:
            return Policy.SKIP
        if self.include:
            return (
                Policy.PERTURB
                if (name in self.include or overload in self.include)
                else Policy.SKIP
            )
        if name == _TO_COPY:
            return Policy.PERTURB  # only narrowing conversions round; decided per call
        if name in REGISTRY:
            return REGISTRY[name]
        self.unknown_seen.add(name)
        return self.unknown_ops

    # -- dispatch -----------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.mode is Mode.IEEE:
            return func(*args, **kwargs)
        info = self._info(func)
        if info.policy is Policy.SKIP:
            return func(*args, **kwargs)
        if info.name == _TO_COPY:
            return self._to_copy(func, args, kwargs)
        if self.wide and self.mode in (Mode.SR, Mode.RR):
            return self._stochastic_call(func, info, args, kwargs)
        out = func(*args, **kwargs)
        targets = _written(info, args, kwargs, out)
        if targets:
            with _isolated():
                for tensor in targets:
                    self._perturb_in_place(tensor, info.name)
        return out

    def _next_stream(self, op: str) -> int:
        counter = self.counter
        self.counter += 1
        self.op_counts[op] += 1
        if self.record_history:
            self.history.append((counter, op))
        return counter

    def _perturb_in_place(self, y: torch.Tensor, op: str) -> None:
        """Apply the mode to a working-precision result, in place (sr: at ``t < p`` only)."""
        counter = self._next_stream(op)
        t = self.precision[y.dtype]
        if self.mode is Mode.SR and t >= SIGNIFICAND_BITS[y.dtype]:
            return  # fp64 results at full precision: nothing wider to round from
        ext = self._native(y)
        if ext is not None:
            ext.perturb_(y, native.KIND[self.mode.value], t, self._streams.kernel_seed(counter))
        elif self.mode is Mode.RR:
            if self._fused(y) and triton_kernels.random_rounding_(
                y, t, self._streams.kernel_seed(counter)
            ):
                return
            xi_dtype = y.dtype if y.dtype in (torch.float32, torch.float64) else torch.float64
            rounding.random_rounding_(y, t, self._streams.centred_uniform(y, counter, xi_dtype))
        elif self.mode is Mode.UD:
            if self._fused(y) and triton_kernels.up_down_(y, self._streams.kernel_seed(counter)):
                return
            rounding.up_down_(y, self._streams.bits(y, counter))
        elif self.mode is Mode.SR:
            y.copy_(self._stochastic_round(y, y.dtype, counter))

    def _fused(self, y: torch.Tensor) -> bool:
        if self.triton is TritonUse.OFF or not y.is_contiguous():
            return False
        if y.is_cuda:
            return triton_kernels.AVAILABLE
        return self.triton is TritonUse.INTERPRET and y.device.type == "cpu"

    def _native(self, y: torch.Tensor):
        """The fused CPU extension when it applies to ``y``, else None."""
        interpreted = self.triton is TritonUse.INTERPRET
        if self.native and not interpreted and y.device.type == "cpu" and y.is_contiguous():
            if self._extension is None:
                self._extension = native.extension() or False
            return self._extension or None
        return None

    def _stochastic_round(self, wide: torch.Tensor, dtype: torch.dtype, counter: int):
        t = self.precision[dtype]
        if self._fused(wide):
            out = triton_kernels.stochastic_rounding(
                wide, dtype, t, self._streams.kernel_seed(counter)
            )
            if out is not None:
                return out
        uniform = self._streams.uniform(wide, counter)
        return rounding.stochastic_rounding(wide, dtype, t, uniform)

    def _sr_from_wide(self, wide: torch.Tensor, dtype: torch.dtype, op: str) -> torch.Tensor:
        """Round an exact (wider-type) result into ``dtype`` under rr or sr."""
        counter = self._next_stream(op)
        t = self.precision[dtype]
        # the kernels read fp64 or fp32 results (an fp16 -> bf16 conversion has neither)
        ext = self._native(wide) if wide.dtype in (torch.float64, torch.float32) else None
        if ext is not None:
            kind = native.KIND[self.mode.value]
            return ext.round_from_wide(wide, dtype, kind, t, self._streams.kernel_seed(counter))
        if self.mode is Mode.RR:
            y = wide.clone()
            rounding.random_rounding_(y, t, self._streams.centred_uniform(y, counter, y.dtype))
            return y.to(dtype)  # round to nearest into the working type
        return self._stochastic_round(wide, dtype, counter)

    def _to_copy(self, func, args, kwargs):
        """Conversions round only when they narrow a float type."""
        out = func(*args, **kwargs)
        source = args[0] if args else kwargs.get("self")
        narrowing = (
            isinstance(out, torch.Tensor)
            and out.dtype in SIGNIFICAND_BITS
            and source.dtype in SIGNIFICAND_BITS
            and SIGNIFICAND_BITS[out.dtype] < SIGNIFICAND_BITS[source.dtype]
            and out.numel() > 0
        )
        if narrowing:
            with _isolated():
                if self.mode in (Mode.SR, Mode.RR):
                    out.copy_(self._sr_from_wide(source, out.dtype, _TO_COPY))
                else:
                    self._perturb_in_place(out, _TO_COPY)
        return out

    def _stochastic_call(self, func, info: _OpInfo, args, kwargs):
        """Recompute the op in the wider type and round each written result stochastically."""
        op = info.name
        leaves = _leaves((args, kwargs), [])
        dtypes = {x.dtype for x in leaves if isinstance(x, torch.Tensor)}
        widen = {d: WIDER[d] for d in dtypes if d in WIDER}
        if not widen:
            out = func(*args, **kwargs)
            targets = [y for y in _written(info, args, kwargs, out) if y.dtype == torch.float64]
            with _isolated():
                for y in targets:
                    self._perturb_in_place(y, op)
            return out
        narrow = {w: d for d, w in widen.items()}
        unambiguous = (
            len(narrow) == len(widen)
            and not (set(narrow) & dtypes)
            and not any(isinstance(x, torch.dtype) for x in leaves)
        )
        mutated = {id(t) for p, n in info.written_args for t in _tensors(_arg(args, kwargs, p, n))}

        def to_wide(x):
            if isinstance(x, torch.Tensor):
                if x.dtype in widen:
                    return x.to(widen[x.dtype])
                if id(x) in mutated:
                    return x.clone()
            return x

        with _isolated():
            wide_args, wide_kwargs = _map(to_wide, (args, kwargs))
        with _isolated():
            wide_out = wide_ops.call(op, wide_args, wide_kwargs)
        if wide_out is None:
            try:
                wide_out = func(*wide_args, **wide_kwargs)
            except (RuntimeError, NotImplementedError):  # no kernel for the wider dtype
                self.sr_fallbacks[op] += 1
                return func(*args, **kwargs)
        if unambiguous and not info.written_args and not info.returns_alias:
            with _isolated():
                return _map(
                    lambda x: (
                        self._sr_from_wide(x, narrow[x.dtype], op)
                        if isinstance(x, torch.Tensor) and x.dtype in narrow
                        else x
                    ),
                    wide_out,
                )
        out = func(*args, **kwargs)
        real = _written(info, args, kwargs, out)
        wide = _written(info, wide_args, wide_kwargs, wide_out)
        with _isolated():
            for target, exact in zip(real, wide, strict=False):
                if SIGNIFICAND_BITS[exact.dtype] > SIGNIFICAND_BITS[target.dtype]:
                    target.copy_(self._sr_from_wide(exact, target.dtype, op))
        return out

    # -- records ------------------------------------------------------------------------------
    def stats(self) -> dict:
        """JSON-serialisable summary: settings, counts and (if recorded) the history."""
        return {
            "mode": self.mode.value,
            "seed": self.seed,
            "precision": {str(d).removeprefix("torch."): t for d, t in self.precision.items()},
            "include": sorted(self.include),
            "exclude": sorted(self.exclude),
            "unknown_ops": self.unknown_ops.value,
            "wide": self.wide,
            "perturbed_tensors": self.counter,
            "op_counts": dict(sorted(self.op_counts.items())),
            "unknown_seen": sorted(self.unknown_seen),
            "sr_fallbacks": dict(sorted(self.sr_fallbacks.items())),
            "history": [[counter, op] for counter, op in self.history],
        }

    def history_json(self) -> str:
        """:meth:`stats` as a JSON string."""
        return json.dumps(self.stats(), sort_keys=True)


_ACTIVE = threading.local()


def _active_contexts() -> list:
    """This thread's entered StochasticArithmetic contexts (ieee ones install no dispatch mode,
    so the dispatch-mode stack alone would not see them)."""
    if not hasattr(_ACTIVE, "contexts"):
        _ACTIVE.contexts = []
    return _ACTIVE.contexts


def _arg(args, kwargs, position: int, name: str):
    return args[position] if position < len(args) else kwargs.get(name)


class _isolated:
    """Run the engine's own arithmetic without any outer dispatch mode seeing it."""

    def __enter__(self):
        self._inner = _disable_current_modes() if _len_torch_dispatch_stack() > 0 else None
        if self._inner is not None:
            self._inner.__enter__()

    def __exit__(self, *exc):
        if self._inner is not None:
            self._inner.__exit__(*exc)
        return False
