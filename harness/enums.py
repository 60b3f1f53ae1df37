"""Strings to enums, once, at the boundary; and the policy for things a component cannot handle.

Every option that names one of a fixed set of values (a mode, an engine, a format) is an
:class:`~enum.Enum` inside the package. :func:`parse_enum` turns a user's string into it (or
raises :class:`~harness.errors.InputError` naming the option, the value and the choices);
:func:`choices` gives the spellings a command line offers, so the two never drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import TypeVar

from harness.errors import InputError

E = TypeVar("E", bound=Enum)


class OnUnknown(Enum):
    """What a component does with a thing it has no rule for: a layer without a spectrum
    handler (:class:`harness.introspect.SpectralProbe`), a convolution the instrumented kernels
    do not cover (:func:`harness.kernels.instrument_model`)."""

    SKIP = "skip"
    RAISE = "raise"


def parse_enum(enum_type: type[E], value: E | str, option: str) -> E:
    """The member of ``enum_type`` that ``value`` names (case and surrounding blanks ignored).

    Parameters
    ----------
    enum_type : Enum subclass
        Whose members have string values.
    value : enum_type or str
        A member (returned as is) or its value's spelling.
    option : str
        The parameter's name as the user wrote it (``"--mode"``, ``"mode"``), for the error.

    Raises
    ------
    InputError
        ``"<option> must be one of [...], got <value>"`` when ``value`` names no member.
    """
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        try:
            return enum_type(value.strip().lower())
        except ValueError:
            pass
    raise InputError(f"{option} must be one of {choices(enum_type)}, got {value!r}")


def choices(enum_type: type[Enum], exclude: Iterable[Enum] = ()) -> list[str]:
    """The values of ``enum_type``'s members, in definition order, without ``exclude``."""
    left_out = set(exclude)
    return [member.value for member in enum_type if member not in left_out]
