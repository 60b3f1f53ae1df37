import json

import harness


def test_env_prints_fingerprint(run_cli, tmp_path):
    out_file = tmp_path / "env.json"
    code, out, err = run_cli("env", "-o", out_file)
    assert code == 0, err
    info = json.loads(out)
    assert info["torch"]
    assert info["python"].count(".") == 2
    assert info["cuda_available"] in (True, False)
    assert json.loads(out_file.read_text()) == info


def test_help_lists_commands(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0
    assert "env" in out


def test_version(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and harness.__version__ in out


def test_unknown_command_is_an_error(run_cli):
    code, _, err = run_cli("no-such-command")
    assert code == 2
    assert "No such command" in err
    assert "Traceback" not in err
