"""pytest plugin loaded inside the images (``-p harness.containers.benchplugin``).

It writes what the container knows about itself into the pytest-benchmark JSON: the environment
fingerprint (taken inside) into ``machine_info.harness_fingerprint``, and the image (tag, id, kind,
torch inside, ``VFC_BACKENDS``) into ``machine_info.harness_image`` and every record's
``extra_info.image``.
"""

from __future__ import annotations

import os


def image_info() -> dict:
    """The image this process runs in, from the variables the Dockerfile and the run set."""
    import torch

    return {
        "tag": os.environ.get("HARNESS_IMAGE"),
        "id": os.environ.get("HARNESS_IMAGE_ID"),
        "kind": os.environ.get("HARNESS_IMAGE_KIND"),
        "torch": torch.__version__,
        "torch_variant": os.environ.get("HARNESS_TORCH_VARIANT"),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "vfc_backends": os.environ.get("VFC_BACKENDS"),
    }


def pytest_benchmark_update_machine_info(config, machine_info):
    from harness.fingerprint import fingerprint

    machine_info["harness_fingerprint"] = fingerprint()
    machine_info["harness_image"] = image_info()


def pytest_benchmark_update_json(config, benchmarks, output_json):
    info = image_info()
    for record in output_json.get("benchmarks", []):
        record.setdefault("extra_info", {})["image"] = info
