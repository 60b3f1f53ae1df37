"""Statistics and wiring of ``harness kernels validate`` on the host (no Verificarlo needed).

The end-to-end check stands a native stochastic-rounding build of the kernels (ctypes, its own
seeds) in for a Verificarlo backend: the same distribution as harness-sr must pass every test,
and harness-rr must be told apart on exact inputs (it perturbs exact powers of two).
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.experiments.vfc_validate import validate
from harness.kernels.cases import OUTPUTS, Case, InputKind, Shapes, make_inputs, read_inputs
from harness.kernels.validate import (
    HarnessBuild,
    correct,
    exact_fraction,
    holm,
    sample_errors,
    two_sample_pvalues,
)


def test_holm_matches_the_hand_computed_values():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, 1*0.04, made monotone
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    assert holm(np.array([0.9, 0.8])).max() == 1.0


def test_constant_elements_have_defined_pvalues():
    a = np.array([[1.0, 2.0, 0.0], [1.0, 2.0, 1.0], [1.0, 2.0, 0.0]])
    b = np.array([[1.0, 3.0, 0.0], [1.0, 3.0, 0.0], [1.0, 3.0, 0.0]])
    p = two_sample_pvalues(a, b)
    assert p["welch"][0] == 1.0 and p["spread"][0] == 1.0  # both constant, equal
    assert p["welch"][1] == 0.0 and p["spread"][1] == 0.0  # both constant, different
    assert np.isfinite(p["welch"][2]) and np.isfinite(p["spread"][2])


def test_exactness_and_run_errors_in_ulps():
    ref = np.array([1.0, 3.0, 0.1], dtype=np.longdouble)
    one_up = np.nextafter(np.float32(3.0), np.float32(4.0))
    samples = np.array([[1.0, 3.0, 0.1], [1.0, one_up, 0.1]], dtype=np.float32)
    # 0.1 is not representable in float32: exactness counts only 1.0 and 3.0
    assert exact_fraction(samples, ref, np.float32) == 0.5
    np.testing.assert_allclose(sample_errors(samples, ref, np.float32), [0.0, 1.0 / 3.0])


def test_correction_is_over_all_elements_of_a_pair():
    raw = [
        {"harness": "h", "verificarlo": "v", "output": o, "welch": np.full(50, 0.01),
         "spread": np.full(50, 0.5), "pooled": 0.01, "elements": 50}
        for o in ("a", "b")
    ]  # fmt: skip
    rows = correct(raw)
    # 100 p-values of 0.01: Holm multiplies the smallest by 100 -> nothing rejected
    assert [r["welch_rejected"] for r in rows] == [0, 0]
    assert [r["pooled_rejected"] for r in rows] == [True, True]  # 2 * 0.01 < 0.05


def test_inputs_round_trip_and_structured_kinds_are_exact(tmp_path):
    from harness.kernels.cases import reference_outputs, write_inputs

    shapes = Shapes()
    cases = [Case(InputKind.EXACT_INT, "float32"), Case(InputKind.ZEROS, "float64")]
    write_inputs(tmp_path, cases, shapes, seed=3)
    read_shapes, read = read_inputs(tmp_path)
    assert read_shapes == shapes and [c for c, _ in read] == cases
    np.testing.assert_array_equal(read[0][1]["x"], make_inputs(cases[0], shapes, 3)["x"])
    ref = reference_outputs(read[0][1], shapes)
    # integer inputs: every convolution result is an integer, exactly representable
    for name in ("conv_fwd.y", "conv_bwd_input.gx", "conv_bwd_weight.gw", "conv_bwd_weight.gb"):
        assert np.all(ref[name] == np.round(ref[name]))
    assert np.all(read[1][1]["x"][:, 0] == 0) and np.all(read[1][1]["w"][0] == 0)


@pytest.fixture(scope="module")
def stand_in_run(tmp_path_factory):
    """validate() with a native sr build standing in for the Verificarlo backend."""
    from harness.kernels.cases import compute_outputs
    from harness.kernels.vfc import build_library, load_native_library
    from harness.kernels.vfc_runner import write_samples

    root = tmp_path_factory.mktemp("validate")
    lib = build_library(root / "libk_sr.so", "sr", "native")

    def executor(backend, run_dir, samples, seed):
        shapes, cases = read_inputs(run_dir)
        kernels = load_native_library(lib, seed=987654321)
        for case, arrays in cases:
            stacks = {name: [] for name in OUTPUTS}
            for _ in range(samples):
                for name, value in compute_outputs(kernels, arrays, shapes).items():
                    stacks[name].append(value)
            write_samples(run_dir, backend.engine, case.name,
                          {k: np.stack(v) for k, v in stacks.items()})  # fmt: skip
        return {"backend": backend.name}

    # the C-library build of harness's kernels: bitwise the torch extension (test_kernels_vfc.py)
    return validate(root / "run", executor, kinds=["random", "exact-int"], dtypes=["float32"],
                    backends=["mca-rr"], samples=24, seed=1,
                    harness_build=HarnessBuild.C_LIBRARY)  # fmt: skip


def test_same_distribution_passes_every_test(stand_in_run):
    tests = stand_in_run.tests
    same = tests[tests.harness == "harness-sr"]
    assert len(same) == 2 * len(OUTPUTS)
    assert same.welch_rejected.sum() == 0 and same.spread_rejected.sum() == 0
    assert not same.pooled_rejected.any()


def test_rr_on_exact_inputs_is_told_apart(stand_in_run):
    tests, table = stand_in_run.tests, stand_in_run.table
    rr = tests[(tests.harness == "harness-rr") & (tests.input == "exact-int")]
    assert rr.set_index("output").loc["conv_fwd.y", "pooled_rejected"]
    assert rr.spread_rejected.sum() > 0
    exact = table[(table.input == "exact-int") & (table.output == "conv_fwd.y")]
    frac = dict(zip(exact.engine, exact.exact_frac, strict=True))
    assert frac["harness-sr"] == 1.0 and frac["vfc-mca-rr"] == 1.0 and frac["harness-rr"] < 0.5


def test_vectorised_brown_forsythe_is_scipys_levene_median():
    from scipy import stats

    from harness.kernels.validate import brown_forsythe

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((20, 5)), rng.standard_normal((15, 5)) * 1.5
    expected = [stats.levene(a[:, j], b[:, j], center="median").pvalue for j in range(5)]
    np.testing.assert_allclose(brown_forsythe(a, b), expected, rtol=1e-10)


def test_brown_forsythe_of_two_even_splits_is_not_a_difference():
    """Two values drawn 16/16 in both groups: every deviation from the median (the midpoint) is
    the same, the ANOVA is 0/0, and the spreads are equal."""
    from harness.kernels.validate import brown_forsythe

    a = np.repeat([[0.1], [0.3]], 16, axis=0)
    b = np.repeat([[0.3], [0.1]], 16, axis=0)
    assert brown_forsythe(a, b)[0] == 1.0
    assert brown_forsythe(a, np.repeat([[0.0], [0.4]], 16, axis=0))[0] == 0.0


def _binade_edge_outputs(kernels):
    """4096 results of fma(2, 1, 0) then fma(2^-25, 1, acc): the exact sum is 2 + 2^-25."""
    from harness.kernels.clib import DEFAULT_GEOMETRY

    x = np.empty((1, 2, 64, 64), np.float32)
    x[:, 0], x[:, 1] = 2.0, 2.0**-25
    return kernels.conv2d_forward(x, np.ones((1, 2, 1, 1), np.float32), None, DEFAULT_GEOMETRY)


def test_rr_lowers_exact_powers_of_two_with_probability_a_quarter(tmp_path):
    """The documented difference with Verificarlo (docs/verificarlo.md, point 2): harness rr
    perturbs the exact 2 of the first fma; sr never leaves {2, 2 + 2^-22}."""
    from scipy import stats

    from harness.kernels.vfc import build_library, load_native_library

    out = {}
    for mode in ("sr", "rr"):
        lib = load_native_library(build_library(tmp_path / f"{mode}.so", mode, "native"), seed=3)
        out[mode] = _binade_edge_outputs(lib).ravel()
    assert set(np.unique(out["sr"])) == {np.float32(2.0), np.float32(2.0 + 2.0**-22)}
    assert stats.binomtest(int((out["sr"] > 2).sum()), out["sr"].size, 1 / 8).pvalue > 1e-4
    below = int((out["rr"] < 2).sum())
    # P(first result lowered) = 1/4, then about half of those stay below 2 after the addition
    assert 0.2 < below / out["rr"].size < 0.35


def test_run_validation_writes_a_complete_catalogued_run(tmp_path):
    """The stored run: manifest, tables, report, inputs and samples, every file declared."""
    from harness.experiments.vfc_validate import run_validation
    from harness.kernels.cases import compute_outputs
    from harness.kernels.vfc import build_library, load_native_library
    from harness.kernels.vfc_runner import write_samples
    from harness.runs import read_manifest
    from harness.runs.audit import audit

    lib = build_library(tmp_path / "lib" / "libk_sr.so", "sr", "native")

    def executor(backend, run_dir, samples, seed):
        shapes, cases = read_inputs(run_dir)
        kernels = load_native_library(lib, seed=seed + 99)
        for case, arrays in cases:
            outs = [compute_outputs(kernels, arrays, shapes) for _ in range(samples)]
            write_samples(run_dir, backend.engine, case.name,
                          {k: np.stack([o[k] for o in outs]) for k in OUTPUTS})  # fmt: skip
        return {"backend": backend.name, "seconds": 0.0}

    out = tmp_path / "run"
    summary = run_validation(out, image=None, executor=executor, kinds=["zeros"],
                             dtypes=["float64"], samples=4, backends=["mca-rr"])  # fmt: skip
    assert "harness-sr vs vfc-mca-rr" in summary["report"]
    manifest = read_manifest(out)
    assert manifest["status"] == "complete" and manifest["kind"] == "kernels-validate"
    assert manifest["config"]["backends"] == ["mca-rr@24,53"]
    assert [str(f) for f in audit(out)] == []
