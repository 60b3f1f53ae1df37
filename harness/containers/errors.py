"""Errors of the container layer, each telling the user what to do next."""

from __future__ import annotations

from harness.errors import HarnessError, InputError, MissingDependencyError

#: how to start an engine on a Debian machine without a registry or a bridge network
START_ENGINE = (
    "start one as root with `dockerd --bridge=none --iptables=false --ip-masq=false &` "
    "(Debian package docker.io, installed with `apt-get install --no-install-recommends "
    "docker.io`), or point DOCKER_HOST at a running engine"
)


class EngineUnavailable(MissingDependencyError):
    """No Docker engine answers on the socket docker-py was pointed at."""


class ImageNotFound(InputError):
    """The image to run is not in the engine's image store."""


class BuildFailed(HarnessError):
    """An image build stopped at a step; the message has the step and the log tail."""

    def __init__(self, tag: str, step: str | None, error: str, tail: list[str]):
        self.tag, self.step, self.error, self.tail = tag, step, error, list(tail)
        where = f" at {step!r}" if step else ""
        lines = "\n".join(f"  | {line}" for line in self.tail)
        super().__init__(
            f"building image {tag} failed{where}: {error.strip()}\nlast build log lines:\n{lines}"
        )


class ContainerFailed(HarnessError):
    """A container exited with a non-zero status (or ran past its time limit)."""

    def __init__(self, image: str, command: list[str], exit_code: int, tail: list[str], why=""):
        self.image, self.command, self.exit_code, self.tail = image, command, exit_code, tail
        lines = "\n".join(f"  | {line}" for line in tail) or "  | (no output)"
        reason = why or f"exited with status {exit_code}"
        super().__init__(
            f"container of image {image} running {' '.join(command)!r} {reason}; "
            f"last log lines:\n{lines}"
        )
