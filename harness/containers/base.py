"""The base image when no registry is reachable: Debian bookworm by mmdebstrap, imported.

``mmdebstrap --variant=minbase`` with python3, python3-venv and ca-certificates, sped up by the
eatmydata hook (about 30 s instead of 2 min), writes a root file-system tarball that the engine
imports (docker-py ``import_image``) with a ``CMD`` and labels. A user with a registry skips this
and builds on an official image instead (``--base python:3.11-slim-bookworm``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.containers.images import DEFAULT_BASE, KIND_LABEL, LABEL_PREFIX, check_tag
from harness.containers.progress import Progress, reporter
from harness.errors import MissingDependencyError

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
EATMYDATA_HOOKS = Path("/usr/share/mmdebstrap/hooks/eatmydata")


def mmdebstrap_command(out: Path, suite: str = SUITE, packages=PACKAGES) -> list[str]:
    """The mmdebstrap command line writing the base file system to the tarball ``out``."""
    cmd = ["mmdebstrap", "--variant=minbase", f"--include={','.join(packages)}"]
    if EATMYDATA_HOOKS.is_dir():
        cmd.append(f"--hook-dir={EATMYDATA_HOOKS}")
    return [*cmd, suite, str(out)]


def import_changes(tag: str, suite: str = SUITE) -> list[str]:
    """Dockerfile instructions applied to the imported file system."""
    return [
        'CMD ["python3"]',
        "ENV LANG=C.UTF-8",
        f"LABEL {KIND_LABEL}=base {LABEL_PREFIX}suite={suite} {LABEL_PREFIX}tag={tag}",
    ]


def make_base(
    tag: str = DEFAULT_BASE, *, rebuild: bool = False, client=None, progress: Progress = True
) -> str:
    """Create the base image ``tag`` with mmdebstrap (unless it exists); return its id.

    Raises
    ------
    MissingDependencyError
        mmdebstrap is missing, fails (it needs root and a Debian mirror), or no engine answers.
    """
    from harness.containers.engine import connect

    check_tag("tag", tag)
    client = client or connect()
    show = reporter(progress, steps_only=False)
    if not rebuild:
        existing = [im for im in client.images.list(name=tag.split(":")[0]) if tag in im.tags]
        if existing:
            show(f"base image {tag} exists ({existing[0].short_id}); --rebuild makes it again")
            return existing[0].id
    if shutil.which("mmdebstrap") is None:
        raise MissingDependencyError(
            "making the base image needs mmdebstrap: apt-get install --no-install-recommends "
            "mmdebstrap eatmydata (or build on a registry image: --base python:3.11-slim-bookworm)"
        )
    with tempfile.TemporaryDirectory(prefix="harness-base-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        cmd = mmdebstrap_command(tarball)
        show(f"$ {' '.join(cmd)}")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise MissingDependencyError(
                f"mmdebstrap failed (exit {proc.returncode}; it needs root and a reachable "
                f"Debian mirror):\n{tail}"
            )
        repository, _, name = tag.partition(":")
        show(f"importing {tarball.stat().st_size / 1e6:.0f} MB as {tag}")
        client.api.import_image(
            src=str(tarball), repository=repository, tag=name or "latest",
            changes=import_changes(tag),
        )  # fmt: skip
    image = client.images.get(tag)
    show(f"Successfully made base image {tag} ({image.short_id})")
    return image.id
