"""``SpectralProbe``: per-group singular values of weight gradients, inputs and adjoints, on the fly.

Usage (two lines in a training loop)::

    with SpectralProbe(model, top_k=10) as probe:
        for step, (x, y, labels) in enumerate(loader):
            probe.set_groups(labels)                  # one group label per sample
            loss = loss_fn(model(x), y); opt.zero_grad(); loss.backward()
            probe.step(epoch, step); opt.step()       # spectra of this step -> probe rows

``probe.table()`` returns the tidy rows collected so far (``run, epoch, step, layer, group,
quantity, index, value, group_size``); ``probe.pop_table()`` also forgets them (flush per epoch).
Hooks only read tensors; every spectrum is computed under ``torch.no_grad()`` after backward, and
nothing draws random numbers, so training with the probe is bitwise identical to training without.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from harness.enums import OnUnknown, parse_enum
from harness.errors import InputError, check_positive
from harness.introspect.handlers import Handler, Quantity, handler_for
from harness.runs.catalogue import SPECTRA

#: columns of the probe's table (the declared spectra artifact)
COLUMNS = list(SPECTRA.columns)


def parse_quantities(quantities: Iterable[str | Quantity]) -> tuple[Quantity, ...]:
    """Strings or :class:`Quantity` members -> a tuple of members (validated)."""
    out = [parse_enum(Quantity, q, "quantities") for q in quantities]
    if not out:
        raise InputError("quantities must not be empty")
    return tuple(dict.fromkeys(out))


#: why per-group spectra of some layers are not those of the group's own loss
BATCHNORM_CAVEAT = (
    "layers {layers} come before a batch norm in training mode: batch statistics couple the "
    "samples of a batch, so a group's rows A_g^T Delta_g are its share of the batch gradient, "
    "not the gradient of the group's own loss"
)


def layers_before_training_batchnorm(model: nn.Module, names: Sequence[str]) -> list[str]:
    """Probed layers registered before a batch-norm module that is in training mode.

    In training mode a batch norm normalises with the batch's mean and variance, so every
    adjoint upstream of it depends on every sample of the batch: ``Delta_g`` of a group mixes
    in the other groups' samples. Registration order stands in for data flow (exact for
    sequential and encoder/decoder nets built in forward order); a layer after the last
    training-mode batch norm is unaffected.
    """
    order = [name for name, _ in model.named_modules()]
    positions = [
        i for i, (_, module) in enumerate(model.named_modules())
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training
    ]  # fmt: skip
    if not positions:
        return []
    last = max(positions)
    return [name for name in names if order.index(name) < last]


class SpectralProbe:
    """Collect per-group spectra of selected layers during training.

    Per-group gradients of layers before a training-mode batch norm are not the gradient of the
    group's own loss (:func:`layers_before_training_batchnorm`); :meth:`caveats` names them.

    Parameters
    ----------
    model : nn.Module
        The model; its batch dimension must be the first of every probed layer's input.
    layers : sequence of str, optional
        Module names (``model.named_modules()``) to probe; all supported layers when None.
    quantities : sequence of {"grad", "act", "adj"}
        Singular values of the group's weight gradient ``A_g^T Delta_g``, inputs ``A_g`` and
        adjoints ``Delta_g``.
    top_k : int or None
        Keep the ``top_k`` largest singular values per spectrum (None: all).
    every : int
        Probe every ``every``-th call of :meth:`step` (the first one included).
    unknown : OnUnknown or {"skip", "raise"}
        With ``layers=None``: what to do with a module that owns parameters but has no handler.
    group_names : mapping, optional
        Label -> group name for the table (default ``str(label)``).
    run : str
        Value of the table's ``run`` column.
    dtype : torch.dtype, optional
        Precision of the spectra computations (default: the layer's own dtype).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str] | None = None,
        quantities: Sequence[str | Quantity] = ("grad", "act", "adj"),
        top_k: int | None = 10,
        every: int = 1,
        unknown: OnUnknown | str = OnUnknown.SKIP,
        group_names: Mapping | None = None,
        run: str = "",
        dtype: torch.dtype | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if top_k is not None:
            check_positive("top_k", top_k)
        check_positive("every", every)
        self.model = model
        self.quantities = parse_quantities(quantities)
        self.top_k = top_k
        self.every = int(every)
        self.unknown = parse_enum(OnUnknown, unknown, "unknown")
        self.group_names = dict(group_names or {})
        self.run = run
        self.dtype = dtype
        self.handlers = self._select(layers)
        self._hooks: list = []
        self._count = 0
        self._labels: list = []
        self._masks: list[torch.Tensor] | None = None
        self._rows: dict[str, list] = {c: [] for c in COLUMNS}

    def _select(self, layers: Sequence[str] | None) -> list[Handler]:
        modules = dict(self.model.named_modules())
        if layers is not None:
            missing = [name for name in layers if name not in modules]
            if missing:
                raise InputError(f"layers not found in the model: {missing}")
            chosen = [(name, modules[name]) for name in layers]
        else:
            chosen = list(modules.items())
        handlers = []
        for name, module in chosen:
            handler_cls = handler_for(module)
            if handler_cls is None:
                owns_params = any(True for _ in module.parameters(recurse=False))
                if layers is not None:
                    raise InputError(
                        f"layer {name!r} ({type(module).__name__}) has no spectral handler"
                    )
                if owns_params and self.unknown is OnUnknown.RAISE:
                    raise InputError(
                        f"layer {name!r} ({type(module).__name__}) has parameters but no spectral "
                        "handler; pass unknown='skip' or choose layers"
                    )
                continue
            handler_cls.check_supported(module, name)
            handlers.append(handler_cls(module, name))
        if not handlers:
            raise InputError("the model has no layer the probe supports (Linear, Conv, RNN)")
        return handlers

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> SpectralProbe:
        self.attach()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def attach(self) -> None:
        if self._hooks:
            return
        try:
            for handler in self.handlers:
                self._hooks.append(handler.attach(self.active))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Remove every hook and drop collected tensors (safe to call twice)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        for handler in self.handlers:
            handler.clear()

    @property
    def layer_names(self) -> list[str]:
        return [h.name for h in self.handlers]

    def caveats(self) -> list[str]:
        """Warnings about how to read this probe's spectra (empty when there are none)."""
        coupled = layers_before_training_batchnorm(self.model, self.layer_names)
        return [BATCHNORM_CAVEAT.format(layers=coupled)] if coupled else []

    def active(self) -> bool:
        """True when the coming forward/backward pass is probed."""
        return self._count % self.every == 0 and torch.is_grad_enabled()

    # -- per step ----------------------------------------------------------------------------
    def resume_at(self, count: int) -> None:
        """Continue the ``every`` schedule as if :meth:`step` had been called ``count`` times."""
        check_positive("count", count, allow_zero=True)
        self._count = int(count)

    def set_groups(self, labels) -> None:
        """Group label per sample of the next batch (tensor, array or list; ints or strings)."""
        values = labels.tolist() if hasattr(labels, "tolist") else list(labels)
        if not values or any(isinstance(v, list) for v in values):
            raise InputError("group labels must be a non-empty 1-D sequence, one per sample")
        self._labels = sorted(set(values), key=lambda v: (str(type(v)), v))
        array = np.asarray(values, dtype=object)
        self._masks = [torch.as_tensor(array == label) for label in self._labels]

    def step(self, epoch: int = 0, step: int | None = None) -> int:
        """Compute the spectra of the pass just back-propagated; returns the rows added.

        Call after ``loss.backward()``. Without :meth:`set_groups` all samples form one group
        ``"all"``.
        """
        probed = self._count % self.every == 0
        step = self._count if step is None else step
        self._count += 1
        added = 0
        try:
            if probed:
                added = self._compute(epoch, step)
        finally:
            for handler in self.handlers:
                handler.clear()
        return added

    def _compute(self, epoch: int, step: int) -> int:
        pending = []  # (layer, group, quantity, size, values on the device)
        with torch.no_grad():
            for handler in self.handlers:
                calls = handler.complete_calls()
                if not calls:
                    continue
                masks, names = self._group_masks(calls[0].inputs[0], handler)
                sizes = [int(m.sum()) for m in masks]  # CPU masks: no device sync
                present = [i for i, size in enumerate(sizes) if size > 0]  # absent in this batch
                masks, names, sizes = ([seq[i] for i in present] for seq in (masks, names, sizes))
                device = calls[0].inputs[0].device
                masks = [m.to(device) for m in masks]
                results = handler.spectra(masks, self.quantities, self.top_k, self.dtype)
                for index, layer, quantity, values in results:
                    pending.append((layer, names[index], quantity, sizes[index], values))
        if not pending:
            return 0
        # one device-to-host copy per step
        flat = torch.cat([v.detach().double().flatten().cpu() for *_, v in pending]).numpy()
        offset = 0
        for layer, group, quantity, size, values in pending:
            n = values.numel()
            self._add(epoch, step, layer, group, quantity, flat[offset : offset + n], size)
            offset += n
        return offset

    def _group_masks(self, first_input, handler):
        if self._masks is None:
            batch = handler_batch(first_input, handler)
            return [torch.ones(batch, dtype=torch.bool)], ["all"]
        names = [str(self.group_names.get(label, label)) for label in self._labels]
        return list(self._masks), names

    def _add(self, epoch, step, layer, group, quantity, values, size) -> None:
        n = len(values)
        rows = self._rows
        rows["run"] += [self.run] * n
        rows["epoch"] += [int(epoch)] * n
        rows["step"] += [int(step)] * n
        rows["layer"] += [layer] * n
        rows["group"] += [group] * n
        rows["quantity"] += [quantity.value] * n
        rows["index"] += list(range(n))
        rows["value"] += values.tolist()
        rows["group_size"] += [size] * n

    def table(self):
        """The rows collected so far as a pandas DataFrame (columns :data:`COLUMNS`)."""
        import pandas as pd

        return pd.DataFrame(self._rows, columns=COLUMNS)

    def pop_table(self):
        """:meth:`table`, then forget the rows (call once per epoch to bound memory)."""
        frame = self.table()
        self._rows = {c: [] for c in COLUMNS}
        return frame


def handler_batch(first_input: torch.Tensor, handler: Handler) -> int:
    """Batch size seen by a handler's first input (batch-first except non-batch-first RNNs)."""
    module = handler.module
    if isinstance(module, nn.RNNBase) and not module.batch_first and first_input.ndim == 3:
        return first_input.shape[1]
    return first_input.shape[0]
