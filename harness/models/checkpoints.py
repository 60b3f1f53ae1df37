"""FastSurferCNN checkpoints: FastSurfer v1's training-state files and harness's own.

FastSurfer v1 releases one ``Epoch_30_training_state.pkl`` per view: a ``torch.save`` dict with
``model_state_dict`` (and ``optimizer_state_dict``, ``scheduler_state_dict``, ``epoch``, ...),
whose parameter names follow v1's modules (``FastSurferCNN/models/networks.py`` and
``sub_module.py``): ``encode1`` .. ``encode4`` (``conv0..2``, ``bn0..3`` for the input block,
``bn1..3`` otherwise, ``prelu``), ``bottleneck``, ``decode4`` .. ``decode1`` (``decode4`` is the
first decoder applied, beside the deepest encoder) and ``classifier.conv``. A model saved from
``nn.DataParallel`` prefixes every name with ``module.``.

Every file is read with ``torch.load(weights_only=True)`` (:func:`harness.runs.checkpoints.
load_checkpoint`): a file that needs arbitrary unpickling is refused, never executed. The
architecture (classes, filters, kernel, depth) is read from the tensor shapes, then every name
and shape is checked before anything is loaded.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path

import torch

from harness.errors import InputError
from harness.models.fastsurfer import FastSurferCNN

#: keys of a v1 training-state file (``model_state_dict`` is the one read)
V1_MODEL_KEY = "model_state_dict"
#: the key of harness's own training checkpoints (:mod:`harness.train.trainer`)
HARNESS_MODEL_KEY = "model"
_DATA_PARALLEL = "module."


def v1_name(name: str, depth: int) -> str:
    """The v1 name of one of harness's parameter or buffer names.

    ``encoders.{i}.block.X`` -> ``encode{i+1}.X``, ``decoders.{j}.block.X`` ->
    ``decode{depth-j}.X``, ``bottleneck.X`` unchanged, ``classifier.{weight,bias}`` ->
    ``classifier.conv.{weight,bias}``.
    """
    if match := re.fullmatch(r"encoders\.(\d+)\.block\.(.+)", name):
        return f"encode{int(match.group(1)) + 1}.{match.group(2)}"
    if match := re.fullmatch(r"decoders\.(\d+)\.block\.(.+)", name):
        return f"decode{depth - int(match.group(1))}.{match.group(2)}"
    if name.startswith("classifier."):
        return "classifier.conv." + name.removeprefix("classifier.")
    if name.startswith("bottleneck."):
        return name
    raise InputError(f"parameter {name!r} has no FastSurfer v1 name")


def to_v1_state_dict(model: FastSurferCNN) -> OrderedDict:
    """The model's state dict under v1's names (tensors detached, on CPU)."""
    return OrderedDict(
        (v1_name(k, model.depth), v.detach().cpu().clone()) for k, v in model.state_dict().items()
    )


def _strip_data_parallel(state: dict) -> dict:
    if state and all(k.startswith(_DATA_PARALLEL) for k in state):
        return {k.removeprefix(_DATA_PARALLEL): v for k, v in state.items()}
    return state


def _shape(state: dict, key: str, path) -> tuple:
    value = state.get(key)
    if not isinstance(value, torch.Tensor):
        raise InputError(f"checkpoint {path} must hold tensor {key!r}, got none")
    return tuple(value.shape)


def infer_architecture(state: dict, path="<state>", *, v1: bool = True) -> dict:
    """Constructor kwargs of :class:`FastSurferCNN` read from a state dict's shapes."""
    first, classifier = (
        ("encode1.conv0.weight", "classifier.conv.weight")
        if v1 else ("encoders.0.block.conv0.weight", "classifier.weight")
    )  # fmt: skip
    filters, in_channels, kernel, _ = _shape(state, first, path)
    classes = _shape(state, classifier, path)[0]
    pattern = r"encode(\d+)\.conv0\.weight" if v1 else r"encoders\.(\d+)\.block\.conv0\.weight"
    depth = len([k for k in state if re.fullmatch(pattern, k)])
    return {"num_classes": classes, "in_channels": in_channels, "num_filters": filters,
            "kernel_size": kernel, "depth": depth}  # fmt: skip


def check_state(expected: dict, found: dict, path) -> None:
    """Raise :class:`InputError` unless ``found`` has exactly ``expected``'s names and shapes."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise InputError(
            f"checkpoint {path} must hold exactly FastSurferCNN's {len(expected)} tensors: "
            f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, unexpected "
            f"{unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}"
        )
    wrong = [
        f"{k} {tuple(found[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if not isinstance(found[k], torch.Tensor) or found[k].shape != v.shape
    ]
    if wrong:
        raise InputError(f"checkpoint {path} has tensors of the wrong shape: {wrong[:5]}")


def model_from_state(state: dict, path="<state>", *, v1: bool = True) -> FastSurferCNN:
    """A FastSurferCNN (eval mode) holding ``state`` (v1 or harness names), checked first."""
    state = _strip_data_parallel(dict(state))
    architecture = infer_architecture(state, path, v1=v1)
    with torch.random.fork_rng(devices=[]):  # the init draws are overwritten: keep torch's RNG
        model = FastSurferCNN(**architecture)
    own = model.state_dict()
    if v1:
        names = {v1_name(k, model.depth): k for k in own}
        check_state({names_k: own[k] for names_k, k in names.items()}, state, path)
        state = {names[k]: v for k, v in state.items()}
    else:
        check_state(own, state, path)
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_model_checkpoint(path: str | os.PathLike, *, num_classes: int | None = None):
    """Load a FastSurfer v1 training-state file or a harness checkpoint into a FastSurferCNN.

    Parameters
    ----------
    path : path-like
        ``Epoch_30_training_state.pkl`` (v1: ``model_state_dict``), a harness training
        checkpoint (``checkpoints/<view>.pt``: ``model``), or a bare state dict of either naming.
    num_classes : int, optional
        Classes the caller needs (79 axial/coronal, 51 sagittal); checked when given.

    Returns
    -------
    model : FastSurferCNN (eval mode)
    layout : str
        ``"v1"`` or ``"harness"``.

    Raises
    ------
    InputError
        Missing file, a file that needs arbitrary unpickling (refused with the reason), missing
        or unexpected tensors, wrong shapes, or the wrong number of classes.
    """
    from harness.runs.checkpoints import load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint must be an existing file, got {str(path)!r}")
    state = load_checkpoint(path)
    if isinstance(state.get(V1_MODEL_KEY), dict):
        state = state[V1_MODEL_KEY]
    elif isinstance(state.get(HARNESS_MODEL_KEY), dict):
        state = state[HARNESS_MODEL_KEY]
    state = _strip_data_parallel(state)
    v1 = any(k.startswith("encode1.") for k in state)
    if not v1 and not any(k.startswith("encoders.0.") for k in state):
        raise InputError(
            f"checkpoint {path} must hold a FastSurferCNN state dict ({V1_MODEL_KEY!r} of a "
            f"FastSurfer v1 training state, or a harness checkpoint), got keys {sorted(state)[:5]}"
        )
    model = model_from_state(state, path, v1=v1)
    if num_classes is not None and model.num_classes != num_classes:
        raise InputError(
            f"checkpoint {path} must have {num_classes} classes for this view, got "
            f"{model.num_classes}"
        )
    return model, "v1" if v1 else "harness"


def save_v1_checkpoint(path: str | os.PathLike, model: FastSurferCNN, *, epoch: int = 30) -> Path:
    """Write ``model`` as a FastSurfer v1 training-state file (v1 names, tensors and plain data
    only: ``epoch``, ``model_state_dict``, empty optimizer and scheduler states)."""
    from harness.runs.checkpoints import save_checkpoint

    state = {
        "epoch": int(epoch),
        V1_MODEL_KEY: to_v1_state_dict(model),
        "optimizer_state_dict": {"state": {}, "param_groups": []},
        "scheduler_state_dict": {},
    }
    return save_checkpoint(path, state)
