"""Environment fingerprint: what a result was computed with.

Every result record carries this dictionary so that results from different GPUs, library versions
and container images can be compared (``harness compare``) and gated (``harness check``).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

SCHEMA_VERSION = 1


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


_git_commit = git_commit  # the name other modules used before it was public


def _blas_info(torch) -> str | None:
    try:
        cfg = torch.__config__.show()
    except Exception:  # pragma: no cover - very old torch
        return None
    for key in ("BLAS_INFO", "LAPACK_INFO"):
        for part in cfg.replace("\n", ",").split(","):
            part = part.strip()
            if part.startswith(key):
                return part.split("=", 1)[-1]
    return None


#: what a container not made by harness reports as its image (it cannot be named)
UNKNOWN_IMAGE = "unknown-docker-image"


def named_image(value: str | None) -> str | None:
    """The image tag when one is known: None outside containers and for :data:`UNKNOWN_IMAGE`."""
    return None if not value or value == UNKNOWN_IMAGE else value


def container_info(environ=None, in_docker: bool | None = None) -> dict:
    """The container image a process runs in, from what harness images set.

    The Dockerfiles under ``containers/`` set ``HARNESS_IMAGE`` (tag) and ``HARNESS_IMAGE_KIND``;
    ``harness containers run/bench`` add ``HARNESS_IMAGE_ID``; ``VFC_BACKENDS`` is Verificarlo's
    backend choice. A container not made by harness reports ``unknown-docker-image``.
    """
    environ = os.environ if environ is None else environ
    if in_docker is None:
        in_docker = Path("/.dockerenv").exists()
    image = environ.get("HARNESS_IMAGE") or (UNKNOWN_IMAGE if in_docker else None)
    return {
        "container_image": image,
        "container_image_id": environ.get("HARNESS_IMAGE_ID") if image else None,
        "container_kind": environ.get("HARNESS_IMAGE_KIND") if image else None,
        "vfc_backends": environ.get("VFC_BACKENDS"),
    }


def fingerprint() -> dict:
    """Return a JSON-serialisable description of the software and hardware environment."""
    import numpy
    import torch

    from harness.threads import thread_record

    cuda = torch.cuda.is_available()
    info = {
        "schema_version": SCHEMA_VERSION,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "threads": thread_record(),
        "blas": _blas_info(torch),
        "cuda_available": cuda,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gpu_name": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        **container_info(),
        # inside a harness image there is no git: the commit the image was built from
        "git_commit": git_commit() or os.environ.get("HARNESS_GIT_COMMIT") or None,
    }
    try:
        import harness

        info["harness"] = harness.__version__
    except Exception:  # pragma: no cover
        info["harness"] = None
    return info


def device_label(info: dict) -> str:
    """A short human name for the device a fingerprint describes (GPU name or CPU model)."""
    return info.get("gpu_name") or info.get("cpu_model") or "unknown"
