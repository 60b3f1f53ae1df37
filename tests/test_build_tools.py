"""Kernel builds find ninja beside the running interpreter, and name the fix when it is missing."""

import os
import shutil
import stat
import sys

import pytest

from harness.errors import MissingDependencyError
from harness.kernels import build


def _executable(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho 1.11.1\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """PATH holding only a C++ compiler, an interpreter in a non-activated venv, no ninja module."""
    cxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if cxx is None:
        pytest.skip("no C++ compiler on this machine (apt install g++)")
    only_cxx = tmp_path / "path-bin"
    only_cxx.mkdir()
    (only_cxx / "c++").symlink_to(cxx)
    monkeypatch.setenv("PATH", str(only_cxx))
    monkeypatch.setenv("CXX", "c++")
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    monkeypatch.setitem(sys.modules, "ninja", None)  # `import ninja` raises ImportError
    return venv_bin


def test_ninja_beside_the_interpreter_is_found_and_put_on_path(isolated):
    _executable(isolated / "ninja")
    build._check_cxx_toolchain()  # no error although PATH has no ninja
    before = os.environ["PATH"]
    with build.build_tools_on_path():
        assert shutil.which("ninja") == str(isolated / "ninja")
    assert os.environ["PATH"] == before


def test_missing_ninja_names_the_fix(isolated):
    with pytest.raises(MissingDependencyError, match=r"-m pip install ninja"):
        build._check_cxx_toolchain()


def test_missing_compiler_names_the_fix(isolated, monkeypatch):
    _executable(isolated / "ninja")
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(MissingDependencyError, match=r"no-such-compiler.*apt install g\+\+"):
        build._check_cxx_toolchain()


def test_ninja_is_a_declared_dependency():
    from pathlib import Path

    import tomllib

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert any(d.startswith("ninja") for d in pyproject["project"]["dependencies"])
