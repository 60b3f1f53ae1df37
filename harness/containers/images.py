"""The images harness builds: one :class:`ImageKind` each, registered in :data:`IMAGES`.

A kind names its folder under ``containers/`` (shipped inside the package as
``harness/containers/recipes``), its default tag, its build arguments, the network its build may
use and the parts its build context needs. Adding an image is one folder and one entry here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from harness.enums import parse_enum
from harness.errors import InputError

#: Dockerfiles and READMEs of the images (``containers/`` of the source tree, through a symlink)
IMAGES_DIR = Path(__file__).resolve().parent / "recipes"
#: the benchmark suites copied into the images (``benchmarks/`` of the source tree)
BENCH_DIR = Path(__file__).resolve().parent / "suites"
#: label keys every harness image carries (``harness containers list`` reads them)
LABEL_PREFIX = "org.harness."
KIND_LABEL = LABEL_PREFIX + "kind"
DEFAULT_BASE = "harness/base:bookworm"
DEFAULT_TORCH = "2.13.0"


class ImageKind(Enum):
    """Images that ``harness containers build`` knows."""

    STANDARD = "standard"
    VERIFICARLO = "verificarlo"

    @classmethod
    def parse(cls, value) -> ImageKind:
        return parse_enum(cls, value, "image kind")


class BuildNetwork(Enum):
    """Network of an image build: none (from the wheelhouse) or the host's (Debian packages)."""

    NONE = "none"
    HOST = "host"


class TorchVariant(Enum):
    """Which torch build goes into the wheelhouse."""

    CPU = "cpu"
    CUDA = "cuda"

    @classmethod
    def parse(cls, value) -> TorchVariant:
        return parse_enum(cls, value, "torch variant")


class ContextPart(Enum):
    """What a build context holds besides the image's own folder."""

    WHEELHOUSE = "wheelhouse"  # deps/ (pip download on the host) and harness/ (its own wheel)
    BENCHMARKS = "benchmarks"  # the pytest-benchmark suites
    KERNELS = "kernels"  # the C/CUDA kernel sources (kernels/ of the source tree)


@dataclass(frozen=True)
class ImageSpec:
    """How one kind of image is built.

    ``tag`` and ``base`` are format strings over ``torch`` (the torch version) and ``variant``.
    ``build_args`` are defaults that the caller's ``build_args`` override.
    """

    kind: ImageKind
    folder: str
    tag: str
    base: str
    network: BuildNetwork
    parts: tuple[ContextPart, ...]
    build_args: dict[str, str] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return IMAGES_DIR / self.folder

    def default_tag(self, torch: str, variant: TorchVariant = TorchVariant.CPU) -> str:
        return self.tag.format(torch=torch, variant=variant.value)

    def default_base(self, torch: str, variant: TorchVariant = TorchVariant.CPU) -> str:
        return self.base.format(torch=torch, variant=variant.value)


IMAGES: dict[ImageKind, ImageSpec] = {
    ImageKind.STANDARD: ImageSpec(
        kind=ImageKind.STANDARD,
        folder="standard",
        tag="harness/standard:torch{torch}-{variant}",
        base=DEFAULT_BASE,
        network=BuildNetwork.NONE,
        parts=(ContextPart.WHEELHOUSE, ContextPart.BENCHMARKS),
    ),
    # built FROM the standard image (ARG BASE); installs Debian packages, hence host networking
    ImageKind.VERIFICARLO: ImageSpec(
        kind=ImageKind.VERIFICARLO,
        folder="verificarlo",
        tag="harness/verificarlo:torch{torch}-{variant}",
        base="harness/standard:torch{torch}-{variant}",
        network=BuildNetwork.HOST,
        parts=(ContextPart.KERNELS,),
        # Verificarlo itself builds on the plain base, so a new standard image reuses its layers
        build_args={"BUILD_BASE": DEFAULT_BASE, "VERIFICARLO_REF": "v2.4.0"},
    ),
}


def spec(kind) -> ImageSpec:
    """The :class:`ImageSpec` of ``kind`` (an :class:`ImageKind` or its name)."""
    return IMAGES[ImageKind.parse(kind)]


#: [registry[:port]/]repository[:tag][@digest], repository in lower case
_TAG = re.compile(
    r"^([A-Za-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._/-][a-z0-9]+)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)


def check_tag(name: str, tag: str) -> str:
    """Raise :class:`InputError` unless ``tag`` is a valid image reference ``repo[:tag]``."""
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise InputError(
            f"{name} must be an image reference like 'harness/standard:torch2.13.0-cpu' "
            f"(lower-case repository, optional ':tag'), got {tag!r}"
        )
    return tag


def build_command(tag: str) -> str:
    """The command that builds the image ``tag`` (for "image not found" messages)."""
    repo = tag.split(":", 1)[0]
    if repo == DEFAULT_BASE.split(":", 1)[0]:
        return "harness containers base"
    for kind, image in IMAGES.items():
        if repo == image.tag.split(":", 1)[0]:
            return f"harness containers build {kind.value} --tag {tag}"
    return "harness containers build standard (or `harness containers list` for the images built)"
