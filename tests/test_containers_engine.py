"""The container layer on a real Docker engine: base -> standard image -> benchmarks in two images
-> database -> image-vs-image comparison and check, and each error a user can meet.

Images are built once per session (fixtures in conftest.py) and come from the layer cache in later
sessions. Without an engine these tests skip (saying how to start one), except in CI where they fail.
"""

from __future__ import annotations

import json
import os

import pytest

from harness.containers import bench_images, build_context_dir, list_images, run_container
from harness.containers.errors import BuildFailed, ContainerFailed, ImageNotFound

pytestmark = pytest.mark.docker

GENERIC = "harness/standard:torch2.13.0-cpu-generic"


@pytest.fixture(scope="session")
def generic_image(docker_client, base_image, standard_image):
    """The standard image with torch's SIMD CPU kernels turned off (ATEN_CPU_CAPABILITY=default):
    a second image that genuinely differs, sharing every layer but the last few. Built through
    the CLI, so `harness containers build` is exercised end to end."""
    from harness.cli import main

    args = ["containers", "build", "standard", "--torch", "2.13.0", "--base", base_image,
            "--build-arg", "CPU_CAPABILITY=default", "--tag", GENERIC, "--quiet"]  # fmt: skip
    assert main(args) == 0
    return GENERIC


@pytest.fixture(scope="session")
def bench_run(tmp_path_factory, docker_client, standard_image, generic_image):
    out = tmp_path_factory.mktemp("bench-containers")
    return bench_images([standard_image, generic_image], suite="all", out=out, client=docker_client,
                        progress=False)  # fmt: skip


def _made_here(base_image: str) -> None:
    if not base_image.startswith("harness/"):
        pytest.skip(f"HARNESS_TEST_BASE={base_image} is not made by `harness containers base`")


def test_cli_base_reuses_an_existing_base(docker_client, base_image, run_cli):
    _made_here(base_image)
    code, out, err = run_cli("containers", "base", "--tag", base_image)
    assert code == 0 and out.startswith(base_image) and "exists" in err
    assert docker_client.images.get(base_image).id in out


def test_base_image_is_labelled_and_runs_python(docker_client, base_image):
    _made_here(base_image)
    image = docker_client.images.get(base_image)
    assert image.labels["org.harness.kind"] == "base"
    result = run_container(base_image, ["python3", "-c", "import sys; print(sys.version_info[:2])"],
                           client=docker_client)  # fmt: skip
    assert result.exit_code == 0 and result.logs.strip() == "(3, 11)"


def test_standard_image_reports_itself_in_the_fingerprint(docker_client, standard_image):
    image = docker_client.images.get(standard_image)
    assert image.labels["org.harness.kind"] == "standard"
    assert image.labels["org.harness.torch"] == "2.13.0"
    env = json.loads(run_container(standard_image, ["harness", "env"], client=docker_client).logs)
    assert env["container_image"] == standard_image
    assert env["container_image_id"] == image.id
    assert env["container_kind"] == "standard"
    assert env["torch"] == "2.13.0+cpu"
    from harness.fingerprint import git_commit

    assert env["git_commit"] == git_commit() == image.labels["org.harness.commit"]


def test_runs_have_no_network_and_no_wheelhouse(docker_client, standard_image):
    code = "import os; print(sorted(os.listdir('/sys/class/net')), os.path.exists('/wheels'))"
    result = run_container(standard_image, ["python", "-c", code], client=docker_client)
    assert result.logs.strip() == "['lo'] False"
    assert docker_client.containers.list(all=True, filters={"ancestor": standard_image}) == []


def test_outputs_in_a_mount_belong_to_the_caller(tmp_path, docker_client, base_image):
    run_container(base_image, ["python3", "-c", "open('/out/x', 'w').write('1')"],
                  mounts={tmp_path: "/out"}, client=docker_client)  # fmt: skip
    stat = (tmp_path / "x").stat()
    assert (stat.st_uid, stat.st_gid) == (os.getuid(), os.getgid())


def test_list_shows_the_images_with_labels(docker_client, standard_image, run_cli):
    rows = {r["tags"]: r for r in list_images(docker_client)}
    assert any(standard_image in tags for tags in rows)
    code, out, err = run_cli("containers", "list")
    assert code == 0 and standard_image in out and "standard" in out


def test_bench_records_image_torch_and_fingerprint(docker_client, bench_run, standard_image,
                                                   generic_image):  # fmt: skip
    assert list(bench_run.files) == [standard_image, generic_image]
    for image, path in bench_run.files.items():
        data = json.loads(path.read_text())
        image_id = docker_client.images.get(image).id
        assert data["machine_info"]["harness_image"]["id"] == image_id
        assert data["machine_info"]["harness_fingerprint"]["container_image"] == image
        names = [b["name"] for b in data["benchmarks"]]
        assert "test_conv2d_forward[cpu-small-3x3-torch]" in names and len(names) == 5
        assert "test_bench_training_step_cpu[ieee]" in names
        for record in data["benchmarks"]:
            assert record["extra_info"]["image"]["tag"] == image
            assert record["extra_info"]["image"]["torch"] == "2.13.0+cpu"
    generic = json.loads(bench_run.files[generic_image].read_text())
    assert generic["machine_info"]["harness_image"]["cpu_capability"] == "DEFAULT"
    standard = json.loads(bench_run.files[standard_image].read_text())
    assert standard["machine_info"]["harness_image"]["cpu_capability"] != "DEFAULT"


def test_bench_folder_is_a_catalogued_run(bench_run, standard_image, generic_image):
    from harness.runs import RunDir
    from harness.runs.audit import audit

    out = bench_run.db_path.parent
    manifest = RunDir(out).manifest()
    assert manifest["kind"] == "container-bench" and manifest["status"] == "complete"
    assert manifest["config"]["images"] == [standard_image, generic_image]
    assert [str(f) for f in audit(out)] == []  # every file declared in the catalogue


def test_bench_results_are_in_the_database(bench_run, standard_image, generic_image):
    from harness.store import ResultsDB

    with ResultsDB(bench_run.db_path, read_only=True) as db:
        rows = db.query("SELECT image, count(*) AS n FROM benchmarks GROUP BY image ORDER BY image")
    assert dict(zip(rows["image"], rows["n"], strict=True)) == {standard_image: 5, generic_image: 5}


def test_image_against_image_compare_and_check(bench_run, standard_image, generic_image, run_cli):
    from harness.compare import compare_results

    a, b = bench_run.files[standard_image], bench_run.files[generic_image]
    rows = compare_results(a, b).benchmarks()
    timed = rows[rows["metric"] == "time.mean_s"]
    assert len(timed) == 5 and not timed["verdict"].str.startswith("only in").any()
    assert timed["device_a"].str.endswith(f"[{standard_image}]").all()
    assert timed["device_b"].str.endswith(f"[{generic_image}]").all()
    code, out, err = run_cli("compare", a, b)
    assert code == 0 and "test_conv2d_forward[cpu-small-3x3-torch]" in out and generic_image in out
    # the gate agrees with the comparison: it fails exactly when some statistic lost > 1 bit
    bits = rows[rows["metric"].str.startswith("sig_bits")]
    lost = bits[bits["delta"] < -1.0]
    code, out, err = run_cli("check", "--baseline", a, "--current", b, "--max-slowdown", "1000")
    assert code == (1 if len(lost) else 0), out + err
    for name in lost["name"]:
        assert name in out
    code, out, err = run_cli("check", "--baseline", a, "--current", b, "--max-slowdown", "1000",
                             "--max-digit-loss", "64")  # fmt: skip
    assert code == 0 and "check passed" in out


def test_cli_bench_prints_the_comparison(tmp_path, standard_image, generic_image, run_cli):
    code, out, err = run_cli("containers", "bench", standard_image, generic_image, "--out",
                             tmp_path, "-k", "cpu-small-3x3-torch")  # fmt: skip
    assert code == 0, err
    assert "(A) vs" in out and "test_conv2d_forward[cpu-small-3x3-torch]" in out


def test_unknown_image_names_the_build_command(docker_client, run_cli):
    with pytest.raises(ImageNotFound, match="harness containers build standard"):
        run_container("harness/standard:no-such-tag", ["true"], client=docker_client)
    code, out, err = run_cli("containers", "bench", "harness/standard:no-such-tag")
    assert code == 2 and "not found" in err and "Traceback" not in err


def test_failing_build_names_the_step_and_the_log_tail(tmp_path, docker_client, base_image):
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE\nFROM ${BASE}\nRUN echo about-to-fail && exit 7\n"
    )
    with pytest.raises(BuildFailed) as info:
        build_context_dir(docker_client, tmp_path, "harness/test:failing",
                          build_args={"BASE": base_image}, progress=False)  # fmt: skip
    assert info.value.step.startswith("Step 3/3 : RUN echo about-to-fail")
    assert "about-to-fail" in info.value.tail and "non-zero code: 7" in str(info.value)


def test_missing_base_names_the_base_command(docker_client, run_cli):
    code, out, err = run_cli("containers", "build", "standard", "--base", "harness/base:missing")
    assert code == 2 and "harness containers base" in err


def test_container_exit_code_and_tail(docker_client, base_image, run_cli):
    cmd = ["python3", "-c", "print('boom-line'); raise SystemExit(3)"]
    with pytest.raises(ContainerFailed) as info:
        run_container(base_image, cmd, client=docker_client)
    assert info.value.exit_code == 3 and "boom-line" in str(info.value)
    code, out, err = run_cli("containers", "run", base_image, "--", *cmd)
    assert code == 2 and "exited with status 3" in err and "boom-line" in err


def test_time_limit_kills_the_container(docker_client, base_image):
    with pytest.raises(ContainerFailed, match="time limit of 1.0 s"):
        run_container(base_image, ["sleep", "60"], timeout_s=1.0, client=docker_client)


def test_a_command_missing_from_the_image_is_a_clear_error(docker_client, base_image, run_cli):
    code, out, err = run_cli("containers", "run", base_image, "--", "no-such-program")
    assert code == 2 and "could not be started" in err and "no-such-program" in err


def test_gpus_without_a_gpu_runtime_say_what_is_missing(docker_client, base_image):
    if any("nvidia" in r for r in (docker_client.info().get("Runtimes") or {})):
        pytest.skip("this engine has the NVIDIA runtime: the GPU request would succeed")
    with pytest.raises(ContainerFailed, match="NVIDIA container toolkit"):
        run_container(base_image, ["true"], gpus=True, client=docker_client)


def test_an_empty_selection_says_how_to_list_the_cases(tmp_path, standard_image, run_cli):
    code, out, err = run_cli("containers", "bench", standard_image, "--out", tmp_path, "-k",
                             "no_such_case")  # fmt: skip
    assert code == 2 and "selects no benchmark" in err and "--collect-only" in err


def test_vfc_backends_are_recorded_and_name_the_file(tmp_path, docker_client, standard_image):
    backends = "libinterflop_ieee.so"
    result = bench_images([standard_image], k="cpu-small-3x3-torch", out=tmp_path,
                          env={"VFC_BACKENDS": backends}, client=docker_client,
                          progress=False)  # fmt: skip
    (path,) = result.files.values()
    assert path.name == "bench-harness_standard_torch2.13.0-cpu-vfc-ieee.json"
    (record,) = json.loads(path.read_text())["benchmarks"]
    assert record["extra_info"]["image"]["vfc_backends"] == backends
    from harness.store import ResultsDB

    with ResultsDB(result.db_path, read_only=True) as db:
        rows = db.query("SELECT vfc_backends, device_name FROM benchmarks")
    assert rows["vfc_backends"].tolist() == [backends]
    assert rows["device_name"][0].endswith(f"[{standard_image}; VFC_BACKENDS={backends}]")


def test_bench_images_as_jobs_on_a_dask_cluster(tmp_path, standard_image, run_cli):
    """Each image is a job on a local Dask cluster; its worker talks to the engine itself."""
    out = tmp_path / "b"
    code, stdout, err = run_cli("containers", "bench", standard_image, "--out", out, "-k",
                                "cpu-small-3x3-torch", "--workers", "1")  # fmt: skip
    assert code == 0, err
    assert "dask: 1 workers at tcp://127.0.0.1:" in err
    (path,) = out.glob("bench-*.json")
    assert json.loads(path.read_text())["benchmarks"] and str(path) in stdout
