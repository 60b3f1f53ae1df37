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


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


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


def _container_image() -> str | None:
    if "HARNESS_IMAGE" in os.environ:
        return os.environ["HARNESS_IMAGE"]
    if Path("/.dockerenv").exists():
        return "unknown-docker-image"
    return None


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
        "container_image": _container_image(),
        "git_commit": _git_commit(),
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
