"""User-facing errors.

Anything a user can cause (bad parameter, unreadable file, malformed table) raises
:class:`HarnessError` or one of its subclasses with a message that names the parameter, the rule
and the value. The CLI prints these without a traceback and exits with status 2.
"""

from __future__ import annotations


class HarnessError(Exception):
    """An error caused by the user's input or environment, reported without a traceback."""


class InputError(HarnessError, ValueError):
    """A parameter or input file violates a documented rule."""


class MissingDependencyError(HarnessError, RuntimeError):
    """An optional tool (compiler, Docker engine, CUDA) that a feature needs is absent."""


def check_choice(name: str, value: object, choices) -> None:
    """Raise :class:`InputError` unless ``value`` is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise InputError(f"{name} must be one of {choices}, got {value!r}")


def check_positive(name: str, value, *, allow_zero: bool = False) -> None:
    """Raise :class:`InputError` unless ``value`` is a positive (or non-negative) number."""
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        rule = "non-negative" if allow_zero else "positive"
        raise InputError(f"{name} must be {rule}, got {value!r}")
