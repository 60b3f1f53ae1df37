"""Running one command in a container: no network, the caller's uid where outputs are mounted,
the container removed afterwards, a non-zero exit turned into an error with the log tail."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.containers.errors import ContainerFailed
from harness.errors import InputError

TAIL_LINES = 30
#: written into every container's environment; HOME so an uid without a passwd entry can write
BASE_ENV = {"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}


@dataclass(frozen=True)
class ContainerResult:
    """What a finished container left: exit status, combined stdout+stderr, the image run."""

    exit_code: int
    logs: str
    image: str
    image_id: str

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        return self.logs.rstrip().splitlines()[-lines:]


def gpu_requests() -> list:
    """docker-py device requests for every GPU of the host (``docker run --gpus all``)."""
    from docker.types import DeviceRequest

    return [DeviceRequest(count=-1, capabilities=[["gpu"]])]


def refused(exc, gpus: bool) -> str:
    """Why the engine would not create or start a container, and what to do."""
    text = f"could not be started: {getattr(exc, 'explanation', None) or exc}"
    if gpus:
        text += (
            " (GPUs need the NVIDIA container toolkit on the host: nvidia-ctk runtime configure)"
        )
    return text


def check_mounts(mounts: Mapping[Path, str] | None) -> dict[str, dict]:
    """docker-py ``volumes=`` from ``{host path: container path}``; host folders must exist."""
    volumes = {}
    for host, target in (mounts or {}).items():
        host = Path(host).resolve()
        if not host.exists():
            raise InputError(f"mount source {host} does not exist")
        if not str(target).startswith("/"):
            raise InputError(f"mount target must be an absolute container path, got {target!r}")
        volumes[str(host)] = {"bind": str(target), "mode": "rw"}
    return volumes


def run_container(
    image: str,
    command: list[str],
    *,
    mounts: Mapping[Path, str] | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    timeout_s: float | None = None,
    check: bool = True,
    gpus: bool = False,
    client=None,
) -> ContainerResult:
    """Run ``command`` in a fresh container of ``image`` with network mode ``none``.

    Parameters
    ----------
    image : str
        Tag or id of a local image.
    command : list of str
        The command and its arguments (no shell).
    mounts : dict, optional
        ``{host path: container path}`` bind mounts (read-write). With mounts, the container
        runs as the calling user's uid:gid so that what it writes is not owned by root.
    env : dict, optional
        Environment variables, on top of ``HOME=/tmp`` and ``HARNESS_IMAGE`` / ``HARNESS_IMAGE_ID``
        (the reference run and its id, reported by the environment fingerprint inside).
    workdir : str, optional
        Working directory inside the container.
    timeout_s : float, optional
        Kill the container after this many seconds.
    check : bool
        Raise :class:`ContainerFailed` when the exit status is not 0.
    gpus : bool
        Give the container every GPU (``DeviceRequest(count=-1, capabilities=[["gpu"]])``; needs
        the NVIDIA container toolkit on the host and an image with a CUDA torch).

    Raises
    ------
    InputError
        Unknown image (the message names the build command), bad mount.
    ContainerFailed
        Exit status != 0 or time limit reached; carries the last log lines.
    """
    import docker
    import requests

    from harness.containers.engine import connect, get_image

    if not command or not all(isinstance(c, str) for c in command):
        raise InputError(f"command must be a non-empty list of strings, got {command!r}")
    if timeout_s is not None and not timeout_s > 0:
        raise InputError(f"timeout_s must be positive, got {timeout_s!r}")
    volumes = check_mounts(mounts)
    client = client or connect()
    found = get_image(client, image)
    user = f"{os.getuid()}:{os.getgid()}" if volumes else None
    try:
        container = client.containers.create(
            found.id, command, network_mode="none", user=user, volumes=volumes,
            device_requests=gpu_requests() if gpus else None,
            environment={**BASE_ENV, "HARNESS_IMAGE": image, "HARNESS_IMAGE_ID": found.id,
                         **dict(env or {})}, working_dir=workdir, detach=True,
        )  # fmt: skip
    except docker.errors.APIError as exc:
        raise ContainerFailed(image, list(command), -1, [], refused(exc, gpus)) from None
    try:
        try:
            container.start()
        except docker.errors.APIError as exc:
            raise ContainerFailed(image, list(command), -1, [], refused(exc, gpus)) from None
        why = ""
        try:
            status = container.wait(timeout=timeout_s)
            exit_code = int(status.get("StatusCode", -1))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            # docker-py's wait(timeout=...) is a read timeout of the HTTP call
            container.kill()
            exit_code, why = -1, f"ran past its time limit of {timeout_s} s and was killed"
        logs = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    result = ContainerResult(exit_code, logs, image, found.id)
    if check and exit_code != 0:
        raise ContainerFailed(image, list(command), exit_code, result.tail(), why)
    return result
