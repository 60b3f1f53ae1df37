"""Image builds over docker-py's low-level API, streamed, with every chunk checked for errors.

docker-py does not raise when a build step fails: the failure arrives as a chunk with an ``error``
key. :func:`follow_build` turns the chunk stream into log lines, remembers the current step and the
last lines, and raises :class:`~harness.containers.errors.BuildFailed` on the first error.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

from harness.containers.errors import BuildFailed
from harness.containers.images import BuildNetwork, check_tag
from harness.containers.progress import Progress, reporter

TAIL_LINES = 25
#: repositories of the images harness makes itself (never pulled: built here or missing)
HARNESS_REPOSITORIES = ("harness/",)


def follow_build(chunks: Iterable[dict], tag: str, on_line=None) -> str | None:
    """Consume the decoded chunks of a build; return the image id the engine reported.

    Raises
    ------
    BuildFailed
        A chunk carries ``error`` (or ``errorDetail``): the step it happened in and the tail.
    """
    on_line = on_line or (lambda line: None)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    step, image_id = None, None
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            raise BuildFailed(tag, step, str(chunk.get("error") or detail.get("message")), tail)
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = aux["ID"]
        for line in str(chunk.get("stream") or chunk.get("status") or "").splitlines():
            line = line.rstrip()
            if not line:
                continue
            if line.startswith("Step "):
                step = line
            tail.append(line)
            on_line(line)
    return image_id


def build_context_dir(
    client,
    context: Path,
    tag: str,
    *,
    build_args: Mapping[str, str] | None = None,
    network: BuildNetwork = BuildNetwork.NONE,
    labels: Mapping[str, str] | None = None,
    progress: Progress = True,
) -> str:
    """Build the Dockerfile of ``context`` into ``tag``; return the new image's id.

    The build never pulls (no registry is assumed), removes intermediate containers, and runs with
    network mode ``network`` (``none`` unless the image installs system packages).
    """
    import docker

    check_tag("tag", tag)
    try:
        chunks = client.api.build(
            path=str(context),
            tag=tag,
            buildargs=dict(build_args or {}),
            labels=dict(labels or {}),
            network_mode=BuildNetwork(network).value,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        image_id = follow_build(chunks, tag, reporter(progress))
    except docker.errors.APIError as exc:  # refused before streaming (e.g. bad Dockerfile)
        raise BuildFailed(tag, None, str(exc.explanation or exc), []) from None
    return image_id or client.images.get(tag).id


def image_labels(kind, tag: str, base: str, torch: str, variant) -> dict[str, str]:
    """Labels of a harness image (read back by ``harness containers list``)."""
    from harness import __version__
    from harness.containers.images import KIND_LABEL, LABEL_PREFIX

    return {
        KIND_LABEL: kind.value,
        LABEL_PREFIX + "tag": tag,
        LABEL_PREFIX + "base": base,
        LABEL_PREFIX + "torch": torch,
        LABEL_PREFIX + "torch-variant": variant.value,
        LABEL_PREFIX + "harness": __version__,
    }


def build_image(
    kind,
    tag: str | None = None,
    base: str | None = None,
    torch: str = "2.13.0",
    build_args: Mapping[str, str] | None = None,
    network=None,
    progress: Progress = True,
    *,
    variant="cpu",
    context_files: Mapping[Path, str] | None = None,
    client=None,
) -> str:
    """Build the image of ``kind``; return its tag.

    Parameters
    ----------
    kind : ImageKind or str
        ``standard`` or ``verificarlo`` (see :data:`harness.containers.images.IMAGES`).
    tag : str, optional
        Default: the kind's tag for this torch version, e.g. ``harness/standard:torch2.13.0-cpu``.
    base : str, optional
        Image to build ``FROM`` (``ARG BASE``). Default: the kind's base (``harness/base:bookworm``
        for the standard image, made by :func:`make_base`; the standard image for Verificarlo).
    torch : str
        torch release installed from the host-made wheelhouse.
    build_args : dict, optional
        Extra ``--build-arg`` values (override the kind's defaults).
    network : BuildNetwork or str, optional
        Build network; default: the kind's (``none``, ``host`` only for system packages).
    progress : bool or callable
        True: build steps on stderr; a callable receives every log line.
    variant : TorchVariant or str
        ``cpu`` (default) or ``cuda`` torch build.
    context_files : dict, optional
        ``{host path: path in the context}`` files an image needs besides the standard parts.

    Raises
    ------
    InputError
        Bad kind, tag, torch version or variant; the base image is missing.
    BuildFailed
        A build step failed (the step and the log tail are in the message).
    """
    import tempfile

    from harness.containers.context import assemble_context
    from harness.containers.engine import connect, get_image
    from harness.containers.images import BuildNetwork, TorchVariant, spec
    from harness.containers.wheelhouse import check_torch_version
    from harness.fingerprint import git_commit

    image = spec(kind)
    variant = TorchVariant.parse(variant)
    check_torch_version(torch)
    tag = check_tag("tag", tag or image.default_tag(torch, variant))
    base = check_tag("base", base or image.default_base(torch, variant))
    network = BuildNetwork(network or image.network)
    client = client or connect()
    if base.startswith(HARNESS_REPOSITORIES):
        get_image(client, base)  # a missing harness base fails here, naming its build command
    # any other base (python:3.11-slim-bookworm ...) is pulled by the engine if it has a registry
    show = reporter(progress)
    commit = git_commit() or ""
    args = {**image.build_args, **dict(build_args or {})}
    args |= {"BASE": base, "TORCH": torch, "TORCH_VARIANT": variant.value, "HARNESS_IMAGE": tag,
             "HARNESS_IMAGE_KIND": image.kind.value, "HARNESS_GIT_COMMIT": commit}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="harness-context-") as tmp:
        context = assemble_context(
            image, Path(tmp), torch=torch, variant=variant, context_files=context_files,
            progress=show,
        )  # fmt: skip
        labels = image_labels(image.kind, tag, base, torch, variant) | {
            "org.harness.commit": commit
        }
        build_context_dir(client, context, tag, build_args=args, network=network,
                          labels=labels, progress=progress)  # fmt: skip
    return tag
