"""Build inputs of the Verificarlo image: the source (upstream tag, or a tarball for offline builds).

The Dockerfile (``containers/verificarlo/``) builds Verificarlo from ``VERIFICARLO_REF`` (a git
tag, cloned over the build's host network) unless ``VERIFICARLO_TARBALL`` names a file in the
context's ``vendor/`` folder; :func:`tarball_inputs` puts a local tarball there.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import InputError

VERIFICARLO_VERSION = "2.4.0"
VERIFICARLO_REF = f"v{VERIFICARLO_VERSION}"


def tarball_inputs(path: str | os.PathLike) -> tuple[dict[Path, str], dict[str, str]]:
    """``(context_files, build_args)`` that build Verificarlo from the tarball at ``path``.

    Raises
    ------
    InputError
        The file is missing or is not a ``.tar.gz`` / ``.tgz``.
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise InputError(f"--verificarlo-tarball {src} does not exist or is not a file")
    if not src.name.endswith((".tar.gz", ".tgz")):
        raise InputError(f"--verificarlo-tarball must be a .tar.gz or .tgz, got {src.name!r}")
    return {src: f"vendor/{src.name}"}, {"VERIFICARLO_TARBALL": src.name}
