"""The benchmark suites run inside images, and their results ingested for image comparisons.

Each image runs ``python -m pytest <suite> --benchmark-json /out/<image>.json`` with network mode
``none`` and the output folder bind-mounted; :mod:`harness.containers.benchplugin` records the
image and the fingerprint taken inside. The JSON files then go into a results database
(:class:`harness.store.ResultsDB`), and ``harness compare A.json B.json`` matches the same
benchmark names across two images.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from harness.errors import InputError

#: where the suites live inside the images (containers/standard/Dockerfile copies them there)
BENCH_ROOT = "/opt/bench"
OUT_MOUNT = "/out"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Suite(Enum):
    """Benchmark suites an image can run, each with a small default selection (seconds)."""

    KERNELS = "kernels"
    PERTURB = "perturb"
    ALL = "all"

    @classmethod
    def parse(cls, value) -> Suite:
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise InputError(
                f"--suite must be one of {[s.value for s in cls]}, got {value!r}"
            ) from None

    @property
    def files(self) -> list[str]:
        files = {Suite.KERNELS: ["test_bench_kernels.py"], Suite.PERTURB: ["test_bench_perturb.py"]}
        names = files.get(self) or files[Suite.KERNELS] + files[Suite.PERTURB]
        return [f"benchmarks/{name}" for name in names]

    @property
    def default_k(self) -> str:
        # torch's own conv2d/batchnorm on the CPU (the harness kernels need a compiler) and the
        # training step without perturbation and with the IEEE engine
        kernels = "cpu and -torch]"
        perturb = "training_step_cpu[plain] or training_step_cpu[ieee]"
        return {Suite.KERNELS: kernels, Suite.PERTURB: perturb}.get(
            self, f"({kernels}) or ({perturb})"
        )


@dataclass
class BenchResult:
    """What :func:`bench_images` produced: one JSON per image, and the database it fed."""

    files: dict[str, Path]
    db_path: Path | None
    summary: str = ""
    logs: dict[str, str] = field(default_factory=dict)


def parse_env(pairs: Sequence[str], option: str = "--env") -> dict[str, str]:
    """``["K=V", ...]`` -> dict; :class:`InputError` naming the option and the bad item."""
    env = {}
    for item in pairs:
        name, sep, value = str(item).partition("=")
        if not sep or not _ENV_NAME.match(name):
            raise InputError(
                f"{option} must be NAME=VALUE with NAME a variable name (letters, digits, _; "
                f"not starting with a digit), got {item!r}"
            )
        env[name] = value
    return env


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` whose names and values were checked like ``--env``."""
    for name, value in env.items():
        if not isinstance(value, str):
            raise InputError(f"env value of {name!r} must be a string, got {value!r}")
    return parse_env([f"{name}={value}" for name, value in env.items()])


def parse_mounts(pairs: Sequence[str]) -> dict[Path, str]:
    """``["HOST:CONTAINER", ...]`` -> ``{Path(HOST): CONTAINER}``."""
    mounts = {}
    for item in pairs:
        host, sep, target = str(item).rpartition(":")
        if not sep or not host or not target.startswith("/"):
            raise InputError(f"--mount must be HOST:/CONTAINER/PATH, got {item!r}")
        mounts[Path(host)] = target
    return mounts


def json_name(image: str) -> str:
    """File name of an image's results: the reference with ``/`` and ``:`` replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", image).strip("_") + ".json"


def bench_command(
    suite: Suite, k: str | None, json_path: str, extra: Sequence[str] = ()
) -> list[str]:
    """The pytest command run inside an image."""
    cmd = ["python", "-m", "pytest", *suite.files, "-p", "harness.containers.benchplugin",
           "-p", "no:cacheprovider", "-q", "--benchmark-json", json_path]  # fmt: skip
    k = suite.default_k if k is None else k
    return [*cmd, *(["-k", k] if k else []), *extra]


def bench_images(
    images: Sequence[str],
    *,
    suite: Suite | str = Suite.KERNELS,
    k: str | None = None,
    out: Path | str = "bench-containers",
    db: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = 1800,
    pytest_args: Sequence[str] = (),
    gpus: bool = False,
    client=None,
    progress=True,
) -> BenchResult:
    """Run ``suite`` in each image; write ``OUT/<image>.json``; ingest them into ``db``.

    Parameters
    ----------
    images : list of str
        Image tags or ids (checked before anything runs).
    suite : Suite or str
        ``kernels``, ``perturb`` or ``all``.
    k : str, optional
        pytest ``-k`` expression; default: the suite's small CPU selection; ``""``: every case.
    out : path
        Output folder (created), bind-mounted at ``/out``.
    db : path, optional
        Results database to ingest into; default ``OUT/harness.duckdb``.
    env : dict, optional
        Extra environment inside the containers (e.g. ``VFC_BACKENDS``, ``OMP_NUM_THREADS``).
    timeout_s : float, optional
        Time limit of each container.
    pytest_args : list of str
        More pytest arguments.
    gpus : bool
        Give the containers every GPU (CUDA images; the suites then run their CUDA cases too,
        select them with ``k``).
    """
    from harness.containers.engine import connect, get_image
    from harness.containers.progress import reporter
    from harness.containers.run import run_container
    from harness.store import ResultsDB

    suite = Suite.parse(suite)
    if not images:
        raise InputError("bench needs at least one image")
    env = check_env(env or {})
    out = Path(out).resolve()
    client = client or connect()
    found = {image: get_image(client, image) for image in images}  # all checked before running
    out.mkdir(parents=True, exist_ok=True)
    show = reporter(progress, steps_only=False)
    files, logs = {}, {}
    for image, obj in found.items():
        name = json_name(image)
        show(f"benchmarking {image} ({suite.value}) -> {out / name}")
        run_env = {"HARNESS_IMAGE": image, "HARNESS_IMAGE_ID": obj.id, **env}
        result = run_container(
            image, bench_command(suite, k, f"{OUT_MOUNT}/{name}", pytest_args),
            mounts={out: OUT_MOUNT}, env=run_env, workdir=BENCH_ROOT, timeout_s=timeout_s,
            gpus=gpus, client=client,
        )  # fmt: skip
        logs[image] = result.logs
        if not (out / name).is_file():
            raise InputError(
                f"the benchmark run in {image} wrote no {name}: did -k {k!r} select no case? "
                f"last lines:\n" + "\n".join(result.tail(10))
            )
        files[image] = out / name
    db_path = Path(db) if db else out / "harness.duckdb"
    with ResultsDB(db_path) as database:
        summary = database.ingest(list(files.values()), progress=False).describe()
    return BenchResult(files, db_path, summary, logs)
