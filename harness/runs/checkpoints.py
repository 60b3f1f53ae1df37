"""Checkpoints: tensors and plain data only, loaded with ``torch.load(weights_only=True)``.

A checkpoint found in an output directory may come from anyone who can write there; unpickling
arbitrary objects would run their code. ``weights_only=True`` admits only tensors, numbers,
strings, lists, tuples and dicts (RNG states are byte tensors), so such a file is refused.
"""

from __future__ import annotations

import os
import pickle
import struct
from enum import Enum
from pathlib import Path

from harness.errors import InputError


def plain_data(obj):
    """``obj`` with NumPy scalars and arrays, enums and paths turned into plain Python data
    (tensors are kept), so that ``weights_only=True`` can load it."""
    import numpy as np

    if isinstance(obj, dict):
        return {plain_data(k): plain_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain_data(v) for v in obj)
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, Enum):
        return plain_data(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` atomically with ``torch.save``, as tensors and plain data only."""
    import torch

    from harness.runs.rundir import atomic_path

    with atomic_path(path) as tmp:
        torch.save(plain_data(state), tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`, refusing anything but tensors and
    plain data.

    Raises
    ------
    InputError
        If the file holds other objects (a pickle that would run code, or an old checkpoint
        format), is not a torch file, or is not a dict.
    """
    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc):  # not an object reference: a damaged or foreign file
            raise InputError(
                f"checkpoint {path} is not a readable torch file: {_reason(exc)}"
            ) from None
        raise InputError(
            f"refusing to load checkpoint {path}: it holds objects other than tensors and plain "
            f"data (loaded with weights_only=True: {_reason(exc)}); delete it if you did not "
            "write it"
        ) from None
    except (RuntimeError, EOFError, ValueError, struct.error) as exc:
        raise InputError(f"checkpoint {path} is not a readable torch file: {exc}") from None
    if not isinstance(state, dict):
        raise InputError(f"checkpoint {path} must hold a dict, got {type(state).__name__}")
    return state


def _reason(exc: Exception) -> str:
    # torch's message wraps the one line that matters ("unsupported GLOBAL posix.system ...")
    # in advice to retry with weights_only=False, which is exactly what must not be done here
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = [line for line in lines if "GLOBAL" in line or line.startswith("Unsupported")]
    return (detail or lines or [type(exc).__name__])[0].rstrip(".")
