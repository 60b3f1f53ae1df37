"""``harness compare`` and ``harness check`` on the committed CPU results and modified copies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.compare import (
    SIG_BITS_RESOLUTION,
    DigitLossCheck,
    SlowdownCheck,
    ThresholdCheck,
    compare_results,
    parse_fail_if,
    run_checks,
    welch_p_value,
)
from harness.compare.checks import Op
from harness.compare.stats import Timing, sig_bits_verdict
from harness.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "results" / "bench-kernels-cpu.json"
PERTURB = ROOT / "results" / "bench-perturb-cpu.json"
SR_CONV = "test_conv2d_forward[cpu-small-3x3-harness-sr]"
RR_STEP = "test_bench_training_step_cpu[rr]"


def modified_copy(src: Path, dest: Path, name: str, *, bits: float = 0.0, slow: float = 1.0):
    """Copy a committed benchmark file, shifting one benchmark's sig bits and timings."""
    data = json.loads(src.read_text())
    (bench,) = [b for b in data["benchmarks"] if b["name"] == name]
    for key in ("sig_bits_mean", "sig_bits_median", "sig_bits_min"):
        if key in bench["extra_info"]:
            bench["extra_info"][key] += bits
    stats = bench["stats"]
    for key in ("min", "max", "mean", "stddev", "median", "q1", "q3", "iqr", "total"):
        stats[key] *= slow
    stats["ops"] /= slow
    stats["data"] = [v * slow for v in stats["data"]]
    dest.mkdir(parents=True, exist_ok=True)
    (dest / src.name).write_text(json.dumps(data))
    return dest / src.name


@pytest.mark.parametrize(
    ("text", "field", "op", "threshold"),
    [
        ("sig_bits.min<20", "sig_bits.min", Op.LT, 20.0),
        ("  sig_bits.mean <= 18.5 ", "sig_bits.mean", Op.LE, 18.5),
        ("slowdown>1.1", "slowdown", Op.GT, 1.1),
        ("delta.sig_bits.median<=-2", "delta.sig_bits.median", Op.LE, -2.0),
        ("time.mean>=1e-3", "time.mean", Op.GE, 1e-3),
        ("run.weights_sig_bits_min!=24", "run.weights_sig_bits_min", Op.NE, 24.0),
    ],
)
def test_parse_fail_if(text, field, op, threshold):
    assert parse_fail_if(text) == ThresholdCheck(field, op, threshold)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sig_bits.min<<20", "FIELD OP NUMBER"),
        ("sig_bits.min 20", "FIELD OP NUMBER"),
        ("sig_bits.min<twenty", "FIELD OP NUMBER"),
        ("", "FIELD OP NUMBER"),
        ("sigbits.min<20", "field must be one of"),
        ("run.<3", "field must be one of"),
    ],
)
def test_parse_fail_if_rejects(text, message):
    with pytest.raises(InputError, match=message):
        parse_fail_if(text)


def test_op_semantics():
    assert Op.LT.holds(19, 20) and not Op.LT.holds(20, 20) and Op.LE.holds(20, 20)
    assert Op.NE.holds(1, 2) and Op.EQ.holds(2, 2) and Op.GT.holds(3, 2) and Op.GE.holds(2, 2)


def test_welch_from_rounds_matches_summary():
    a = Timing(mean=1.0, data=(0.9, 1.0, 1.1, 1.0, 1.0))
    b = Timing(mean=1.5, data=(1.4, 1.5, 1.6, 1.5, 1.5))
    p_data = welch_p_value(a, b)
    # the same samples given only as mean / sample stddev / rounds
    sd = float(__import__("numpy").std(a.data, ddof=1))
    p_stats = welch_p_value(Timing(1.0, sd, 5), Timing(1.5, sd, 5))
    assert p_data == pytest.approx(p_stats) and p_data < 1e-4
    assert welch_p_value(a, a) == pytest.approx(1.0)
    assert welch_p_value(Timing(1.0, 0.0, 3), Timing(1.0, 0.0, 3)) == 1.0
    assert welch_p_value(Timing(1.0), Timing(2.0)) != welch_p_value(Timing(1.0), Timing(2.0))  # NaN


def test_sig_bits_resolution_rule():
    assert SIG_BITS_RESOLUTION == 1.0
    assert sig_bits_verdict(-1.0).startswith("same")
    assert sig_bits_verdict(-1.5) == "lost bits" and sig_bits_verdict(2.0) == "gained bits"


def test_compare_committed_vs_modified(tmp_path, run_cli):
    modified = modified_copy(KERNELS, tmp_path / "b", SR_CONV, bits=-2.0, slow=1.5)
    comparison = compare_results(KERNELS, modified)
    rows = comparison.benchmarks().set_index(["name", "metric"])
    assert len(comparison.benchmarks()["name"].unique()) == 12
    time_row = rows.loc[(SR_CONV, "time.mean_s")]
    assert time_row["ratio"] == pytest.approx(1 / 1.5)
    assert time_row["p_value"] < 0.05 and time_row["verdict"] == "slower"
    assert rows.loc[(SR_CONV, "sig_bits.mean")]["delta"] == pytest.approx(-2.0)
    assert rows.loc[(SR_CONV, "sig_bits.min")]["verdict"] == "lost bits"
    untouched = rows.drop(index=SR_CONV, level="name")
    assert set(untouched["verdict"]) == {"same", "same (within 1 bit)"}

    out_file = tmp_path / "cmp.md"
    code, out, err = run_cli("compare", KERNELS, modified, "--format", "md", "-o", out_file)
    assert code == 0, err
    assert "| name | metric | A | B | change (B vs A) | p (Welch) | verdict |" in out
    assert "0.667x throughput" in out and "-2.00 bits" in out and "lost bits" in out
    assert out_file.read_text().strip() == out.strip()
    code, out, _ = run_cli("compare", PERTURB, PERTURB)
    assert code == 0 and RR_STEP in out and "1x throughput" in out
    code, out, _ = run_cli("compare", KERNELS, modified, "--only-differences")
    assert code == 0 and "lost bits" in out and "slower" in out
    assert "cpu-16ch-5x5" not in out and "same" not in out.split("devices:")[0]


def test_check_gate(tmp_path, run_cli):
    same = run_cli("check", "--baseline", ROOT / "results", "--current", ROOT / "results")
    assert same[0] == 0 and "check passed" in same[1]

    lost = modified_copy(KERNELS, tmp_path / "lost", SR_CONV, bits=-2.0)
    code, out, _ = run_cli("check", "--baseline", KERNELS, "--current", lost)
    assert code == 1 and "check FAILED" in out
    assert SR_CONV in out and "digit loss <= 1 bits" in out
    # the loss is tolerated when the bound allows it
    assert run_cli("check", "--baseline", KERNELS, "--current", lost, "--max-digit-loss", 2)[0] == 0

    slow = modified_copy(PERTURB, tmp_path / "slow", RR_STEP, slow=1.5)
    code, out, _ = run_cli("check", "--baseline", PERTURB, "--current", slow)
    assert code == 1 and RR_STEP in out and "slowdown <= 1.25x" in out
    assert run_cli("check", "--baseline", PERTURB, "--current", slow, "--max-slowdown", 1.6)[0] == 0

    code, out, _ = run_cli(
        "check", "--baseline", KERNELS, "--current", KERNELS, "--fail-if", "sig_bits.min<5"
    )
    assert code == 1 and "fail if sig_bits.min < 5" in out and "cpu-bn-16x32x32" in out


def test_checks_as_objects(tmp_path):
    lost = modified_copy(KERNELS, tmp_path / "lost", SR_CONV, bits=-2.0, slow=1.5)
    comparison = compare_results(KERNELS, lost)
    report = run_checks(
        comparison,
        [DigitLossCheck(1.0), SlowdownCheck(1.25), parse_fail_if("delta.sig_bits.min<-1.5")],
    )
    assert not report.passed
    assert set(report.violations["check"]) == {
        "digit loss <= 1 bits",
        "slowdown <= 1.25x (Welch p < 0.05)",
        "fail if delta.sig_bits.min < -1.5",
    }
    assert report.examined["slowdown <= 1.25x (Welch p < 0.05)"] == 12
    assert run_checks(comparison, [DigitLossCheck(2.0), SlowdownCheck(1.6)]).passed


def test_cli_errors(tmp_path, run_cli):
    code, _, err = run_cli("compare", KERNELS, tmp_path / "missing")
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli("check", "--baseline", KERNELS, "--current", KERNELS, "--fail-if", "x")
    assert code == 2 and "FIELD OP NUMBER" in err
    # a gate that would test nothing is an error, not a pass
    code, _, err = run_cli("check", "--baseline", PERTURB, "--current", PERTURB,
                           "--fail-if", "sig_bits.min<20")  # fmt: skip
    assert code == 2 and "no value of sig_bits.min" in err
    code, _, err = run_cli("compare", KERNELS, ROOT / "tests" / "data" / "store" / "runs")
    assert code == 2 and "nothing to compare" in err
