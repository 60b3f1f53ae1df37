"""Pure parts of the container layer: registry, build-stream handling, contexts, parsing,
wheelhouse keys, fingerprint and database image fields, and the no-engine error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.containers import bench, build, context, images, wheelhouse
from harness.containers.errors import BuildFailed, ContainerFailed, EngineUnavailable
from harness.errors import InputError, MissingDependencyError

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- registry
def test_every_kind_is_registered_with_a_folder_under_containers():
    assert set(images.IMAGES) == set(images.ImageKind)
    assert images.IMAGES_DIR.resolve() == (ROOT / "containers").resolve()
    standard = images.spec("standard")
    assert (standard.directory / "Dockerfile").is_file()
    assert standard.network is images.BuildNetwork.NONE
    assert images.ContextPart.WHEELHOUSE in standard.parts


def test_verificarlo_builds_from_the_standard_image_with_host_network():
    vfc = images.spec(images.ImageKind.VERIFICARLO)
    assert vfc.directory == images.IMAGES_DIR / "verificarlo"
    assert vfc.default_base("2.13.0") == images.spec("standard").default_tag("2.13.0")
    assert vfc.network is images.BuildNetwork.HOST


def test_default_tags_name_torch_and_variant():
    tag = images.spec("standard").default_tag("2.13.0", images.TorchVariant.CUDA)
    assert tag == "harness/standard:torch2.13.0-cuda"
    assert images.check_tag("tag", tag) == tag
    for ref in ["python:3.11-slim-bookworm", "registry.example.org:5000/team/harness:1",
                "harness/base@sha256:" + "a" * 64]:  # fmt: skip
        assert images.check_tag("base", ref) == ref


@pytest.mark.parametrize("bad", ["Harness/X", "a b", "x:", ":tag", "x::y", ""])
def test_bad_tags_are_refused_naming_the_parameter(bad):
    with pytest.raises(InputError, match="--tag|tag must be an image reference"):
        images.check_tag("tag", bad)


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(InputError, match=r"\['standard', 'verificarlo'\].*'gpu'"):
        images.ImageKind.parse("gpu")


def test_build_command_of_a_missing_image():
    assert images.build_command("harness/base:bookworm") == "harness containers base"
    assert images.build_command("harness/standard:x").startswith(
        "harness containers build standard"
    )
    assert "verificarlo" in images.build_command("harness/verificarlo:torch2.13.0-cpu")


# ----------------------------------------------------------------------------- build stream
def test_follow_build_returns_the_image_id_and_streams_lines():
    chunks = [
        {"stream": "Step 1/2 : FROM base\n"},
        {"stream": " ---> abc\n"},
        {"stream": "Step 2/2 : RUN true\n"},
        {"aux": {"ID": "sha256:feed"}},
        {"stream": "Successfully built feed\n"},
    ]
    lines = []
    assert build.follow_build(chunks, "t:1", lines.append) == "sha256:feed"
    assert lines[0] == "Step 1/2 : FROM base" and lines[-1] == "Successfully built feed"


def test_follow_build_raises_on_an_error_chunk_with_step_and_tail():
    chunks = [
        {"stream": "Step 1/2 : FROM base\n"},
        {"stream": "Step 2/2 : RUN make\n"},
        {"stream": "make: *** no rule\n"},
        {"errorDetail": {"code": 2, "message": "returned a non-zero code: 2"},
         "error": "The command '/bin/sh -c make' returned a non-zero code: 2"},
        {"stream": "never read\n"},
    ]  # fmt: skip
    with pytest.raises(BuildFailed) as info:
        build.follow_build(iter(chunks), "t:1")
    err = info.value
    assert err.step == "Step 2/2 : RUN make"
    assert "make: *** no rule" in err.tail and "never read" not in str(err)
    assert "non-zero code: 2" in str(err) and "t:1" in str(err)


def test_follow_build_accepts_error_detail_alone():
    with pytest.raises(BuildFailed, match="disk full"):
        build.follow_build([{"errorDetail": {"message": "disk full"}}], "t:1")


# ----------------------------------------------------------------------------- parsing
def test_parse_env_and_its_errors():
    assert bench.parse_env(["A=1", "VFC_BACKENDS=libinterflop_mca.so --mode=rr", "E="]) == {
        "A": "1", "VFC_BACKENDS": "libinterflop_mca.so --mode=rr", "E": ""}  # fmt: skip
    for bad in ["NOVALUE", "1A=2", "=x", "A-B=1"]:
        with pytest.raises(InputError, match=f"--env must be NAME=VALUE.*{bad!r}"):
            bench.parse_env([bad])
    with pytest.raises(InputError, match="--build-arg"):
        bench.parse_env(["x y=1"], option="--build-arg")


def test_parse_mounts():
    assert bench.parse_mounts(["/tmp/a:/out"]) == {Path("/tmp/a"): "/out"}
    with pytest.raises(InputError, match="--mount must be HOST:/CONTAINER"):
        bench.parse_mounts(["/tmp/a:out"])


def test_suite_selection_and_command():
    assert bench.Suite.parse("ALL").files == [
        "benchmarks/test_bench_kernels.py", "benchmarks/test_bench_perturb.py"]  # fmt: skip
    cmd = bench.bench_command(bench.Suite.KERNELS, None, "/out/x.json")
    assert cmd[:3] == ["python", "-m", "pytest"]
    assert cmd[cmd.index("-k") + 1] == bench.Suite.KERNELS.default_k
    assert "harness.containers.benchplugin" in cmd and "/out/x.json" in cmd
    assert "-k" not in bench.bench_command(bench.Suite.KERNELS, "", "/out/x.json")
    with pytest.raises(InputError, match="--suite must be one of"):
        bench.Suite.parse("train")


def test_default_selection_picks_small_cpu_cases_of_the_suites():
    """The default -k keeps torch's CPU cases of the real suites and drops CUDA and TF32 ones."""
    pytest.importorskip("pytest_benchmark")
    import subprocess
    import sys

    suite = bench.Suite.ALL
    out = subprocess.run(
        [sys.executable, "-m", "pytest", *suite.files, "--collect-only", "-q", "-k", suite.default_k,
         "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    assert ids, out.stdout + out.stderr
    assert all("cuda" not in i and "tf32" not in i and "harness-" not in i for i in ids)
    assert any("conv2d" in i for i in ids) and any("training_step_cpu[plain]" in i for i in ids)
    assert len(ids) <= 6


def test_json_name_tells_backends_apart():
    name = bench.json_name(
        "harness/verificarlo:t", "libinterflop_mca.so --mode=rr --precision-binary32=24"
    )
    assert name == "bench-harness_verificarlo_t-vfc-mca_--mode_rr_--precision-binary32_24.json"
    assert name != bench.json_name("harness/verificarlo:t", "libinterflop_ieee.so")


def test_device_name_names_image_and_backends():
    from harness.store.extract import device_name

    env = {"cpu_model": "CPU X"}
    assert device_name(env, None) == "CPU X"
    assert device_name(env, "img:1") == "CPU X [img:1]"
    assert device_name(env, "img:1", "libinterflop_ieee.so") == (
        "CPU X [img:1; VFC_BACKENDS=libinterflop_ieee.so]")  # fmt: skip
    assert device_name({}, None) is None


def test_json_name_is_a_plain_file_name():
    assert (
        bench.json_name("harness/standard:torch2.13.0-cpu")
        == "bench-harness_standard_torch2.13.0-cpu.json"
    )


def test_bench_checks_env_before_touching_the_engine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(InputError, match="--env must be NAME=VALUE"):
        bench.bench_images(["x"], env={"1BAD": "v"})
    with pytest.raises(InputError, match="at least one image"):
        bench.bench_images([])


# ----------------------------------------------------------------------------- wheelhouse
def test_requirements_pin_torch_and_add_the_test_tools():
    lines = wheelhouse.requirements("2.13.0")
    assert "torch==2.13.0" in lines and not any(r.startswith("torch>=") for r in lines)
    assert {"pytest>=8", "pytest-benchmark>=4"} <= set(lines)
    assert any(r.startswith("numpy") for r in lines)


def test_cache_key_follows_the_requirement_set():
    cpu = images.TorchVariant.CPU
    a = wheelhouse.cache_key(wheelhouse.requirements("2.13.0"), cpu)
    assert a == wheelhouse.cache_key(list(reversed(wheelhouse.requirements("2.13.0"))), cpu)
    assert a != wheelhouse.cache_key(wheelhouse.requirements("2.12.1"), cpu)
    assert a != wheelhouse.cache_key(wheelhouse.requirements("2.13.0"), images.TorchVariant.CUDA)


@pytest.mark.parametrize("bad", ["latest", "2", "2.13.0; rm -rf /", ""])
def test_bad_torch_versions(bad):
    with pytest.raises(InputError, match="--torch must be a torch release"):
        wheelhouse.check_torch_version(bad)


def test_a_cuda_torch_is_refused_for_a_cpu_image(tmp_path):
    (tmp_path / "torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl").touch()
    (tmp_path / "nvidia_cudnn_cu13-9.24-py3-none-manylinux_2_28_x86_64.whl").touch()
    with pytest.raises(MissingDependencyError, match="CUDA build.*download.pytorch.org/whl/cpu"):
        wheelhouse.check_torch_wheel(tmp_path, images.TorchVariant.CPU)
    assert wheelhouse.check_torch_wheel(tmp_path, images.TorchVariant.CUDA).name.startswith(
        "torch-"
    )


def test_cuda_pip_settings_drop_local_cpu_wheels(tmp_path):
    import os

    env = wheelhouse.cuda_pip_env(tmp_path)
    assert env["PIP_CONFIG_FILE"] == os.devnull
    assert Path(env["PIP_FIND_LINKS"]).is_dir() and not any(Path(env["PIP_FIND_LINKS"]).iterdir())


def test_a_cpu_torch_is_refused_for_a_cuda_image(tmp_path):
    (tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").touch()
    with pytest.raises(MissingDependencyError, match="without CUDA"):
        wheelhouse.check_torch_wheel(tmp_path, images.TorchVariant.CUDA)


def test_pyproject_for_an_installed_harness_is_valid_toml():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    text = wheelhouse.pyproject_text("0.1.0", ["numpy>=1.24", "setuptools<81"])
    project = tomllib.loads(text)["project"]
    assert project["name"] == "harness" and project["dependencies"] == [
        "numpy>=1.24",
        "setuptools<81",
    ]


def test_harness_wheel_from_an_installed_package(tmp_path, monkeypatch):
    """Without a source tree the wheel is rebuilt from the installed package and its metadata,
    image recipes and benchmark suites included."""
    import importlib.metadata
    import zipfile

    monkeypatch.setattr(wheelhouse, "source_root", lambda: None)
    wheel = wheelhouse.harness_wheel(tmp_path / "w")
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    assert "harness/containers/recipes/standard/Dockerfile" in names
    assert "harness/containers/suites/test_bench_kernels.py" in names
    assert not any("__pycache__" in n for n in names)
    (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    requires = [line for line in archive.read(meta).decode().splitlines()
                if line.startswith("Requires-Dist:")]  # fmt: skip
    installed = [r for r in importlib.metadata.requires("harness") if "extra ==" not in r]
    assert len(requires) == len(installed) and any("torch" in r for r in requires)


# ----------------------------------------------------------------------------- context
@pytest.fixture
def fake_deps(tmp_path, monkeypatch):
    deps = tmp_path / "deps"
    deps.mkdir()
    (deps / "numpy-2.0-cp311-none-any.whl").write_bytes(b"wheel")
    (deps / wheelhouse.REQUIREMENTS_FILE).write_text("numpy\n")
    (deps / "requested.txt").write_text("numpy\n")
    monkeypatch.setattr(wheelhouse, "dependency_wheelhouse", lambda *a, **k: deps)
    return deps


def test_assemble_context_of_the_standard_image(tmp_path, fake_deps):
    extra = tmp_path / "extra.txt"
    extra.write_text("x")
    ctx = context.assemble_context(
        images.spec("standard"),
        tmp_path / "ctx",
        torch="2.13.0",
        context_files={extra: "more/extra.txt"},
    )
    assert (ctx / "Dockerfile").is_file() and (ctx / "README.md").is_file()
    assert sorted(p.name for p in (ctx / "wheelhouse" / "deps").iterdir()) == [
        "numpy-2.0-cp311-none-any.whl", "requirements.txt"]  # fmt: skip
    (wheel,) = (ctx / "wheelhouse" / "harness").glob("harness-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "harness/containers/recipes/standard/Dockerfile" in names
    assert "harness/kernels/csrc/kernels_cpu.c" in names
    assert (ctx / "benchmarks" / "test_bench_kernels.py").is_file()
    assert not list(ctx.rglob("__pycache__"))
    assert (ctx / "more" / "extra.txt").read_text() == "x"


@pytest.mark.parametrize("target", ["/abs", "../out", ""])
def test_context_files_must_stay_inside_the_context(tmp_path, target):
    with pytest.raises(InputError, match="context_files target"):
        context.assemble_context(images.spec("standard"), tmp_path / "c", torch="2.13.0",
                                 context_files={tmp_path: target})  # fmt: skip


# ----------------------------------------------------------------------------- base
def test_mmdebstrap_command_and_import_changes(tmp_path):
    from harness.containers import base

    cmd = base.mmdebstrap_command(tmp_path / "r.tar")
    assert cmd[:3] == ["mmdebstrap", "--variant=minbase",
                       "--include=python3,python3-venv,ca-certificates"]  # fmt: skip
    assert cmd[-2:] == ["bookworm", str(tmp_path / "r.tar")]
    changes = base.import_changes("harness/base:bookworm")
    assert 'CMD ["python3"]' in changes
    assert any("org.harness.kind=base" in c for c in changes)


def test_gpu_requests_ask_for_every_gpu():
    from harness.containers.run import gpu_requests

    (request,) = gpu_requests()
    assert request["Count"] == -1 and request["Capabilities"] == [["gpu"]]


# ----------------------------------------------------------------------------- errors
def test_container_failed_message_has_exit_code_and_tail():
    err = ContainerFailed("img:1", ["python", "-c", "x"], 3, ["a", "Traceback", "boom"])
    assert "exited with status 3" in str(err) and "| boom" in str(err)


def test_no_engine_says_how_to_start_one(monkeypatch):
    from harness.containers import connect

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(EngineUnavailable, match="no Docker engine answers at unix:///nonexistent"):
        connect(timeout=5)
    with pytest.raises(MissingDependencyError, match="dockerd --bridge=none"):
        connect(timeout=5)


def test_cli_without_engine_exits_2(run_cli, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    code, out, err = run_cli("containers", "run", "harness/standard:x", "--", "true")
    assert code == 2 and "no Docker engine answers" in err and "Traceback" not in err
    code, out, err = run_cli("containers", "list")
    assert code == 2 and "dockerd" in err


def test_cli_bad_env_exits_2_before_the_engine(run_cli, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    code, out, err = run_cli("containers", "bench", "img:1", "--env", "NOEQUALS")
    assert code == 2 and "--env must be NAME=VALUE" in err
    code, out, err = run_cli("containers", "build", "standard", "--torch", "latest")
    assert code == 2 and "--torch must be a torch release" in err


def test_cli_help_lists_the_subcommands(run_cli):
    code, out, err = run_cli("containers", "--help")
    assert code == 0
    for name in ("base", "build", "run", "list", "bench"):
        assert name in out


# ----------------------------------------------------------------------------- fingerprint
def test_fingerprint_reports_the_harness_image():
    from harness.fingerprint import container_info

    env = {"HARNESS_IMAGE": "harness/standard:t", "HARNESS_IMAGE_ID": "sha256:ab",
           "HARNESS_IMAGE_KIND": "standard", "VFC_BACKENDS": "libinterflop_ieee.so"}  # fmt: skip
    info = container_info(env, in_docker=True)
    assert info == {"container_image": "harness/standard:t", "container_image_id": "sha256:ab",
                    "container_kind": "standard", "vfc_backends": "libinterflop_ieee.so"}  # fmt: skip
    assert container_info({}, in_docker=True)["container_image"] == "unknown-docker-image"
    assert container_info({}, in_docker=False)["container_image"] is None


# ----------------------------------------------------------------------------- store
def _bench_json(path: Path, image: dict | None, name="test_conv2d_forward[cpu-small-3x3-torch]"):
    env = {"cpu_model": "CPU X", "torch": "2.13.0+cpu", "container_image": (image or {}).get("tag")}
    record = {"name": name, "stats": {"mean": 0.01, "min": 0.009, "max": 0.012, "stddev": 0.001,
              "median": 0.01, "rounds": 3, "data": [0.01, 0.009, 0.012]},
              "extra_info": {"environment": env, **({"image": image} if image else {})}}  # fmt: skip
    data = {"machine_info": {"harness_fingerprint": env, "harness_image": image},
            "datetime": "2026-12-01T10:00:00", "benchmarks": [record]}  # fmt: skip
    path.write_text(json.dumps(data))
    return path


def test_benchmark_records_carry_the_image(tmp_path):
    from harness.store.extract import benchmark_records

    image = {"tag": "harness/standard:a", "id": "sha256:1", "vfc_backends": None}
    path = _bench_json(tmp_path / "a.json", image)
    (row,) = benchmark_records(path, json.loads(path.read_text()))
    assert (row["image"], row["image_id"]) == ("harness/standard:a", "sha256:1")
    assert row["device_name"] == "CPU X [harness/standard:a]"
    assert "image" not in json.loads(row["extra"])
    (plain,) = benchmark_records(path, {**json.loads(path.read_text()), "benchmarks": [
        {"name": "b", "stats": {}, "extra_info": {"environment": {"cpu_model": "CPU X"}}}]})  # fmt: skip
    assert plain["device_name"] == "CPU X [harness/standard:a]"  # the file's machine_info


def test_image_vs_image_comparison_matches_names(tmp_path):
    from harness.compare import compare_results

    a = _bench_json(tmp_path / "a.json", {"tag": "harness/standard:a", "id": "sha256:1"})
    b = _bench_json(tmp_path / "b.json", {"tag": "harness/standard:b", "id": "sha256:2"})
    rows = compare_results(a, b).benchmarks()
    (row,) = rows[rows["metric"] == "time.mean_s"].to_dict("records")
    assert row["device_a"].endswith("[harness/standard:a]")
    assert row["device_b"].endswith("[harness/standard:b]")


def test_an_older_database_gains_the_image_columns(tmp_path):
    import duckdb

    from harness.store.db import SCHEMA, ResultsDB

    old = SCHEMA.replace(", image VARCHAR, image_id VARCHAR, vfc_backends VARCHAR", "")
    assert old != SCHEMA
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(old)
    con.close()
    with ResultsDB(path) as db:
        cols = set(db.query("SELECT * FROM benchmarks").columns)
        assert {"image", "image_id", "vfc_backends"} <= cols
        db.ingest([_bench_json(tmp_path / "a.json", {"tag": "harness/standard:a"})], progress=False)
        assert db.query("SELECT image FROM benchmarks")["image"].tolist() == ["harness/standard:a"]
