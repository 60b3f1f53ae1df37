"""The Verificarlo build path of the kernels, host side: backends, command lines, refusals, ctypes.

The three bugs of the old path each have a test here: the compile line lacked ``--inst-fma``, the
object was linked by another linker, and the library could load with ``VFC_BACKENDS`` unset. The
parts that need ``verificarlo-c`` itself run in the image (tests/test_vfc_image.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from harness.errors import InputError, MissingDependencyError
from harness.kernels import reference
from harness.kernels.build import BuildVariant, KernelMode, load_extension
from harness.kernels.cases import OUTPUTS, Case, InputKind, Shapes, compute_outputs, make_inputs
from harness.kernels.clib import ConvGeometry
from harness.kernels.vfc import (
    build_library,
    library_commands,
    load_library,
    load_native_library,
)
from harness.kernels.vfc_backends import (
    Library,
    McaMode,
    VfcBackend,
    backend_from_vfc_backends,
    parse_backend,
)

# ---------------------------------------------------------------- backends


def test_backend_strings_are_verificarlo_command_lines():
    assert parse_backend("ieee").vfc_backends("/opt/v/lib") == "/opt/v/lib/libinterflop_ieee.so"
    rr = parse_backend("mca-rr@24,53", seed=7)
    assert rr == VfcBackend(Library.MCA, McaMode.RR, 24, 53, 7)
    assert rr.vfc_backends() == (
        "libinterflop_mca.so --mode=rr --precision-binary32=24 --precision-binary64=53 --seed=7"
    )
    sr = parse_backend("mca_int-rr@23,52")
    assert sr.vfc_backends().startswith("libinterflop_mca_int.so --mode=rr --precision-binary32=23")
    assert parse_backend("mca-pb").name == "mca-pb@24,53"


@pytest.mark.parametrize(
    "text, match",
    [
        ("prism", "unknown Verificarlo backend 'prism'"),
        ("mca-sr", "unknown mode 'sr'"),
        ("mca", "needs a mode"),
        ("ieee-rr", "takes no mode"),
        ("mca-rr@25,53", r"precision_binary32 must be an int in \[1, 24\]"),
        ("mca-rr@x", "precisions after '@' must be integers"),
        ("", "non-empty string"),
    ],
)
def test_bad_backends_are_refused_with_the_rule(text, match):
    with pytest.raises(InputError, match=match):
        parse_backend(text)


def test_vfc_backends_round_trip_and_unset_is_refused():
    spec = VfcBackend(Library.MCA_INT, McaMode.RR, 24, 53, 3)
    assert backend_from_vfc_backends(spec.vfc_backends("/x/lib")) == spec
    assert backend_from_vfc_backends("libinterflop_mca.so --mode rr").mode is McaMode.RR
    for unset in (None, "", "  "):
        with pytest.raises(InputError, match="VFC_BACKENDS is unset"):
            backend_from_vfc_backends(unset)
    with pytest.raises(InputError, match="one backend"):
        backend_from_vfc_backends("libinterflop_ieee.so; libinterflop_mca.so")
    with pytest.raises(InputError, match="not modelled"):
        backend_from_vfc_backends("libinterflop_mca.so --sparsity=0.5")


# ---------------------------------------------------------------- command lines (bugs 1 and 2)


def test_verificarlo_build_compiles_with_inst_fma_and_links_with_verificarlo(tmp_path):
    cmds = library_commands(
        tmp_path / "lib.so", KernelMode.IEEE, BuildVariant.VERIFICARLO, "/opt/v/bin/verificarlo-c"
    )
    assert cmds.compile[:2] == ["/opt/v/bin/verificarlo-c", "--inst-fma"]
    assert "-c" in cmds.compile and "-DHARNESS_MODE_IEEE" in cmds.compile
    assert "-ffp-contract=off" in cmds.compile
    # the link step is verificarlo-c too (it adds the wrapper that defines _floatmul & co.)
    assert cmds.link[:3] == ["/opt/v/bin/verificarlo-c", "--inst-fma", "-shared"]
    assert str(tmp_path / "lib.o") in cmds.link and cmds.link[-3:] == ["-o", str(tmp_path / "lib.so"), "-lm"]
    assert "-fopenmp" not in cmds.compile + cmds.link


def test_verificarlo_build_only_instruments_the_ieee_source(tmp_path):
    with pytest.raises(InputError, match="ieee source"):
        library_commands(tmp_path / "l.so", KernelMode.SR, BuildVariant.VERIFICARLO, "vc")


def test_torch_extension_refuses_the_verificarlo_variant():
    with pytest.raises(InputError, match="standalone C library"):
        load_extension("ieee", variant="verificarlo")


def test_missing_verificarlo_compiler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match="verificarlo-c on PATH"):
        build_library(tmp_path / "l.so", "ieee", "verificarlo")


# ---------------------------------------------------------------- loading (bug 3)


@pytest.fixture(scope="module")
def native_ieee(tmp_path_factory):
    return build_library(tmp_path_factory.mktemp("lib") / "libk_ieee.so", "ieee", "native")


def test_load_refuses_an_unset_backend_before_loading(native_ieee, monkeypatch):
    monkeypatch.delenv("VFC_BACKENDS", raising=False)
    with pytest.raises(InputError, match="backend is required"):
        load_library(None, native_ieee)
    assert "VFC_BACKENDS" not in os.environ


def test_load_sets_vfc_backends_only_while_loading_and_fixes_the_backend(native_ieee, tmp_path):
    copy = tmp_path / "libcopy.so"  # a fresh path: the process-wide registry starts empty for it
    copy.write_bytes(native_ieee.read_bytes())
    before = os.environ.get("VFC_BACKENDS")
    kernels = load_library("mca-rr", copy)
    assert os.environ.get("VFC_BACKENDS") == before
    assert kernels.mode_name == "ieee"
    load_library("mca-rr", copy)  # the same backend again is fine
    with pytest.raises(InputError, match="needs a process of its own"):
        load_library("mca_int-rr", copy)


def test_missing_library_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_VFC_LIBRARY", raising=False)
    with pytest.raises(MissingDependencyError, match="HARNESS_VFC_LIBRARY is unset"):
        load_library("ieee")
    monkeypatch.setenv("HARNESS_VFC_LIBRARY", str(tmp_path / "nope.so"))
    with pytest.raises(MissingDependencyError, match="does not exist"):
        load_library("ieee")


def test_runner_exits_2_on_a_bad_backend(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "harness.kernels.vfc_runner", "--run", str(tmp_path),
         "--backend", "prism"],
        capture_output=True, text=True, cwd=os.getcwd(),
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown Verificarlo backend 'prism'" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- the ctypes binding


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ctypes_binding_matches_the_reference(native_ieee, dtype):
    kernels = load_native_library(native_ieee)
    rng = np.random.default_rng(0)
    g = ConvGeometry((2, 1), (1, 2), (1, 2))
    x = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    y = kernels.conv2d_forward(x, w, b, g)
    np.testing.assert_allclose(y, reference.conv2d_forward(x, w, b, g).astype(float), atol=tol)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = kernels.conv2d_backward_input(gy, w, x.shape, g)
    ref_gx = reference.conv2d_backward_input(gy, w, x.shape, g)
    np.testing.assert_allclose(gx, ref_gx.astype(float), atol=tol)
    gw, gb = kernels.conv2d_backward_weight(x, gy, w.shape, True, g)
    ref_gw, ref_gb = reference.conv2d_backward_weight(x, gy, w.shape, g)
    np.testing.assert_allclose(gw, ref_gw.astype(float), atol=tol * 10)
    np.testing.assert_allclose(gb, ref_gb.astype(float), atol=tol * 10)


def test_ctypes_binding_rejects_mixed_dtypes(native_ieee):
    kernels = load_native_library(native_ieee)
    x = np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(InputError, match="w must have dtype float32"):
        kernels.conv2d_forward(x, np.zeros((1, 1, 1, 1), np.float64))


@pytest.mark.parametrize("mode", ["ieee", "sr"])
def test_ctypes_build_is_bitwise_the_torch_extension(tmp_path, mode):
    """Same C source, same flags, same (seed, call) streams: the standalone library and the torch
    extension give identical bits, so validation compares engines, not bindings."""
    from harness.kernels.validate import TorchKernels

    lib = load_native_library(build_library(tmp_path / f"k_{mode}.so", mode, "native"), seed=5)
    shapes = Shapes()
    arrays = make_inputs(Case(InputKind.RANDOM, "float32"), shapes, 1)
    ours = compute_outputs(lib, arrays, shapes)
    theirs = compute_outputs(TorchKernels(KernelMode(mode), 5), arrays, shapes)
    for name in OUTPUTS:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


def test_validate_cli_refuses_bad_backends_before_any_work(run_cli, tmp_path):
    code, _, err = run_cli("kernels", "validate", "--out", tmp_path / "v", "--backend", "prism")
    assert code == 2 and "unknown Verificarlo backend 'prism'" in err and "Traceback" not in err
    code, _, err = run_cli("kernels", "validate", "--out", tmp_path / "v", "--backend", "")
    assert code == 2 and "non-empty string" in err
    code, _, err = run_cli("kernels", "validate", "--out", tmp_path / "v", "--samples", "1")
    assert code == 2 and "--samples must be >= 2" in err
    assert not (tmp_path / "v").exists()


def test_validate_local_without_the_image_says_where_the_library_comes_from(
    run_cli, tmp_path, monkeypatch
):
    monkeypatch.delenv("HARNESS_VFC_LIBRARY", raising=False)
    code, _, err = run_cli("kernels", "validate", "--local", "--out", tmp_path / "v")
    assert code == 2 and "harness containers build verificarlo" in err
