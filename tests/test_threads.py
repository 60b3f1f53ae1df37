"""The thread policy: one --threads option on every compute command, validated, applied at the
command-line edge, recorded in every manifest."""

import json
import subprocess
import sys

import click
import pytest

from harness.cli import COMMANDS, LazyGroup, cli
from harness.errors import InputError
from harness.threads import available_cores, default_threads, resolve_threads, thread_record

#: commands (and sub-commands) that compute; each must take --threads
COMPUTE = ["demo", "train", "ensemble run", "ensemble analyze", "sweep", "brainage",
           "introspect", "data synth", "kernels validate", "data import", "segment"]  # fmt: skip


def _command(path):
    group = LazyGroup()
    command = group.get_command(None, path.split()[0])
    for name in path.split()[1:]:
        command = command.get_command(None, name)
    return command


@pytest.mark.parametrize("path", COMPUTE)
def test_every_compute_command_has_the_shared_threads_option(path):
    options = {p.name: p for p in _command(path).params if isinstance(p, click.Option)}
    assert "threads" in options, path
    assert options["threads"].callback.__name__ == "_apply_threads"  # the one definition


def test_compute_list_names_real_commands():
    assert {p.split()[0] for p in COMPUTE} <= set(COMMANDS)
    assert cli is not None


def test_resolve_threads_bounds(monkeypatch):
    cores = available_cores()
    assert resolve_threads(1) == 1 and resolve_threads(cores) == cores
    for bad in (0, -1, cores + 1, True, 1.5):
        with pytest.raises(InputError, match=rf"--threads must be an integer from 1 to {cores}"):
            resolve_threads(bad)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert resolve_threads(None) == default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", str(cores + 50))
    assert default_threads() == cores  # never more than the cores available
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads() == cores


def test_bad_threads_is_a_usage_error(run_cli, tmp_path):
    code, _, err = run_cli("data", "synth", "-n", "1", "--out", tmp_path / "c", "--threads", "0")
    assert code == 2 and "--threads must be an integer from 1 to" in err
    assert not (tmp_path / "c").exists()


def test_threads_recorded_in_the_manifest(run_cli, tmp_path):
    out = tmp_path / "c"
    code, _, err = run_cli("data", "synth", "-n", "1", "--grid", "24", "--out", out,
                           "--threads", "1", "--cache-dir", tmp_path / "cache")  # fmt: skip
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    threads = manifest["environment"]["threads"]
    assert threads["torch_intra_op"] == 1 and threads["omp_num_threads"] == "1"
    assert threads["cores_available"] == available_cores()
    assert set(thread_record()) == set(threads)


def test_policy_reaches_subprocesses_and_torch():
    script = (
        "import subprocess, sys, torch\n"
        "from harness.threads import apply_thread_policy\n"
        "policy = apply_thread_policy(1)\n"
        "child = subprocess.run([sys.executable, '-c', 'import os; "
        'print(os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"])\'],'
        " capture_output=True, text=True, check=True).stdout.strip()\n"
        "print(torch.get_num_threads(), policy.interop_threads, child)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.endswith("NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env=env, timeout=120).stdout.split()  # fmt: skip
    assert out == ["1", "1", "1", "1"]
