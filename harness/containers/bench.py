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

from harness.enums import parse_enum
from harness.errors import InputError
from harness.runs import RunDir, RunKind, catalogue

#: where the suites live inside the images (containers/standard/Dockerfile copies them there)
BENCH_ROOT = "/opt/bench"
OUT_MOUNT = "/out"
#: pytest's exit status when the selection is empty
NO_TESTS_COLLECTED = 5
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Suite(Enum):
    """Benchmark suites an image can run, each with a small default selection (seconds)."""

    KERNELS = "kernels"
    PERTURB = "perturb"
    ALL = "all"

    @classmethod
    def parse(cls, value) -> Suite:
        return parse_enum(cls, value, "--suite")

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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def image_slug(image: str, vfc_backends: str | None = None) -> str:
    """An image's name in file names: the reference with ``/`` and ``:`` replaced, and the
    Verificarlo backends when set (two backends in one image are two result files)."""
    name = _slug(image)
    if vfc_backends:
        backends = _slug(vfc_backends.replace("libinterflop_", "").replace(".so", ""))
        name += "-vfc-" + backends[:60]
    return name


def json_name(image: str, vfc_backends: str | None = None) -> str:
    """File name of an image's results inside the bench run directory (``bench-<slug>.json``)."""
    return catalogue.CONTAINER_BENCH.relpath(image=image_slug(image, vfc_backends))


def bench_command(
    suite: Suite, k: str | None, json_path: str, extra: Sequence[str] = ()
) -> list[str]:
    """The pytest command run inside an image."""
    cmd = ["python", "-m", "pytest", *suite.files, "-p", "harness.containers.benchplugin",
           "-p", "no:cacheprovider", "-q", "--benchmark-json", json_path]  # fmt: skip
    k = suite.default_k if k is None else k
    return [*cmd, *(["-k", k] if k else []), *extra]


def _run_suites(run, found, suite, k, env, timeout_s, pytest_args, gpus, client, show,
                executor=None):  # fmt: skip
    """Run the suite in each image of ``found`` (tag -> image); the JSON paths and logs.

    Without ``executor`` the images run one after another through ``client``; with one, each
    image is a job (:func:`bench_image_job`) that talks to the Docker engine of the host it
    runs on.
    """
    if executor is None:
        files, logs = {}, {}
        for image, obj in found.items():
            files[image], logs[image] = _bench_one(run, image, obj.id, suite, k, env, timeout_s,
                                                   pytest_args, gpus, client, show)  # fmt: skip
        return files, logs
    from harness.executors import Job, raise_for_failures, run_jobs

    jobs = [
        Job(image, "harness.containers.bench:bench_image_job", {
            "out": str(run.path), "image": image, "image_id": obj.id, "suite": suite.value,
            "k": k, "env": dict(env), "timeout_s": timeout_s, "pytest_args": list(pytest_args),
            "gpus": gpus,
        })  # fmt: skip
        for image, obj in found.items()
    ]
    outcomes = run_jobs(executor, jobs, desc="images")
    raise_for_failures(outcomes, "image benchmarks")
    return ({o.key: Path(o.value[0]) for o in outcomes}, {o.key: o.value[1] for o in outcomes})


def bench_image_job(out: str, image: str, image_id: str, suite: str, k: str | None, env: dict,
                    timeout_s: float | None, pytest_args: list[str],
                    gpus: bool) -> tuple[str, str]:  # fmt: skip
    """One image's benchmark run as a job: its JSON path (in the shared ``out``) and logs."""
    from harness.containers.engine import connect

    path, logs = _bench_one(RunDir(out), image, image_id, Suite.parse(suite), k, env, timeout_s,
                            pytest_args, gpus, connect(), lambda text: None)  # fmt: skip
    return str(path), logs


def _bench_one(run, image, image_id, suite, k, env, timeout_s, pytest_args, gpus, client, show):
    from harness.containers.errors import ContainerFailed
    from harness.containers.run import run_container

    path = run.file(catalogue.CONTAINER_BENCH, image=image_slug(image, env.get("VFC_BACKENDS")))
    show(f"benchmarking {image} ({suite.value}) -> {path}")
    run_env = {"HARNESS_IMAGE": image, "HARNESS_IMAGE_ID": image_id, **env}
    path.unlink(missing_ok=True)  # a failed run must not leave an older file behind
    result = run_container(
        image, bench_command(suite, k, f"{OUT_MOUNT}/{path.name}", pytest_args),
        mounts={run.path: OUT_MOUNT}, env=run_env, workdir=BENCH_ROOT, timeout_s=timeout_s,
        gpus=gpus, check=False, client=client,
    )  # fmt: skip
    if result.exit_code == NO_TESTS_COLLECTED:
        raise InputError(
            f"-k {k if k is not None else suite.default_k!r} selects no benchmark of suite "
            f"{suite.value!r} in {image}; see the case names with `harness containers run "
            f"{image} -- python -m pytest {' '.join(suite.files)} --collect-only -q`"
        )
    if result.exit_code != 0:
        raise ContainerFailed(image, ["pytest", *suite.files], result.exit_code, result.tail())
    if not path.is_file():
        raise InputError(f"the benchmark run in {image} wrote no {path}")
    return path, result.logs


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
    executor=None,
) -> BenchResult:
    """Run ``suite`` in each image; write ``OUT/bench-<image>.json``; ingest them into ``db``.

    ``OUT`` is a run directory (kind ``container-bench``, its ``manifest.json`` lists the images,
    their ids and the settings).

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
    executor : harness.executors.Executor, optional
        Run each image as a job (on a Dask cluster: each worker uses its own host's Docker
        engine, and ``out`` must be a folder every worker sees). Images benchmarked side by
        side on one machine disturb each other's timings: use one worker per machine.
    """
    from harness.containers.engine import connect, get_image
    from harness.containers.progress import reporter
    from harness.store import ResultsDB

    suite = Suite.parse(suite)
    if not images:
        raise InputError("bench needs at least one image")
    env = check_env(env or {})
    out = Path(out).resolve()
    client = client or connect()
    found = {image: get_image(client, image) for image in images}  # all checked before running
    config = {"images": list(found), "image_ids": [obj.id for obj in found.values()],
              "suite": suite.value, "k": suite.default_k if k is None else k, "env": env,
              "timeout_s": timeout_s, "pytest_args": list(pytest_args), "gpus": gpus}  # fmt: skip
    run = RunDir(out, RunKind.CONTAINER_BENCH)
    run.start("harness containers bench", config)
    show = reporter(progress, steps_only=False)
    try:
        files, logs = _run_suites(run, found, suite, k, env, timeout_s, pytest_args, gpus,
                                  client, show, executor)  # fmt: skip
    except BaseException:
        run.finish("failed")
        raise
    run.finish(files={image: path.name for image, path in files.items()})
    db_path = Path(db) if db else run.file(catalogue.CONTAINER_BENCH_DB)
    with ResultsDB(db_path) as database:
        summary = database.ingest([run.path], progress=False).describe()
    return BenchResult(files, db_path, summary, logs)
