"""Connection to the Docker engine (docker-py, imported only when a container feature runs)."""

from __future__ import annotations

import os

from harness.containers.errors import START_ENGINE, EngineUnavailable, ImageNotFound
from harness.containers.images import build_command
from harness.errors import MissingDependencyError

#: seconds docker-py waits for one API answer (builds and runs stream, so this bounds a stall)
API_TIMEOUT_S = 600


def connect(timeout: float = API_TIMEOUT_S):
    """A docker-py client talking to the engine of ``DOCKER_HOST`` (default: the local socket).

    Raises
    ------
    MissingDependencyError
        docker-py is not installed, or no engine answers (the message says how to start one).
    """
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a dependency
        raise MissingDependencyError(
            "the container commands need docker-py: pip install 'docker>=7'"
        ) from exc
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # docker-py wraps socket errors in several exception types
        raise EngineUnavailable(
            f"no Docker engine answers at {where} ({type(exc).__name__}); {START_ENGINE}"
        ) from None
    return client


def get_image(client, image: str):
    """The engine's image object for ``image`` (a tag or an id).

    Raises
    ------
    InputError
        The image does not exist; the message names the command that builds it.
    """
    import docker

    try:
        return client.images.get(image)
    except docker.errors.ImageNotFound:
        raise ImageNotFound(
            f"image {image!r} not found in the Docker engine; build it with "
            f"`{build_command(image)}`"
        ) from None
