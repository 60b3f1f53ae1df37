"""Docker images driven from harness (docker-py only, imported when first used).

>>> from harness.containers import connect, make_base, build_image, run_container, ImageKind
>>> client = connect()                                   # doctest: +SKIP
>>> make_base("harness/base:bookworm")                   # doctest: +SKIP
>>> tag = build_image(ImageKind.STANDARD, torch="2.13.0")   # doctest: +SKIP
>>> run_container(tag, ["harness", "env"]).logs          # doctest: +SKIP
>>> bench_images([tag], out="bench-out")                 # doctest: +SKIP

Builds stream through the low-level API with every chunk checked for errors; runs use network
mode ``none``; the standard image installs from a wheelhouse made on the host. See
``docs/containers.md``.
"""

from __future__ import annotations

import importlib

#: public name -> module that defines it (imported lazily: ``harness --help`` stays fast)
_EXPORTS = {
    "connect": "engine",
    "get_image": "engine",
    "make_base": "base",
    "build_image": "build",
    "build_context_dir": "build",
    "follow_build": "build",
    "run_container": "run",
    "ContainerResult": "run",
    "bench_images": "bench",
    "BenchResult": "bench",
    "Suite": "bench",
    "list_images": "listing",
    "ImageKind": "images",
    "ImageSpec": "images",
    "IMAGES": "images",
    "BuildNetwork": "images",
    "TorchVariant": "images",
    "ContextPart": "images",
    "EngineUnavailable": "errors",
    "ImageNotFound": "errors",
    "BuildFailed": "errors",
    "ContainerFailed": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harness.containers' has no attribute {name!r}")
    return getattr(importlib.import_module(f"harness.containers.{module}"), name)


def __dir__():
    return __all__
