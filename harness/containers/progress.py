"""Where build and run progress goes: nowhere, step lines on stderr, or a caller's function."""

from __future__ import annotations

import sys
from collections.abc import Callable

#: what ``progress=`` accepts: False/None (silent), True (step lines on stderr), or a callable
Progress = bool | None | Callable[[str], None]


def reporter(progress: Progress, steps_only: bool = True) -> Callable[[str], None]:
    """A function taking one log line, following the ``progress`` convention."""
    if callable(progress):
        return progress
    if not progress:
        return lambda line: None

    def show(line: str) -> None:
        if not steps_only or line.startswith(("Step ", "Successfully", " ---> Using cache")):
            print(line, file=sys.stderr, flush=True)

    return show
