"""Regression gates as small parsed objects (``harness check``).

Three kinds of check, each evaluated on a :class:`harness.compare.Comparison` of a baseline (A)
against a current result set (B):

- :class:`DigitLossCheck` — fails when a significant-bits statistic drops by more than ``max_bits``
  (``--max-digit-loss``);
- :class:`SlowdownCheck` — fails when a benchmark's mean time grows by more than ``max_ratio``
  *and* Welch's test says the difference is real (``--max-slowdown``);
- :class:`ThresholdCheck` — ``--fail-if "FIELD OP NUMBER"``: fails when any value of FIELD in the
  current set satisfies the comparison (``sig_bits.min<20`` fails if some benchmark keeps fewer
  than 20 bits). :data:`FIELDS` lists the fields; ``run.<metric>`` reads a run metric.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import pandas as pd

from harness.compare.compare import Comparison
from harness.compare.stats import DEFAULT_ALPHA
from harness.errors import InputError


class Op(Enum):
    """Comparison operators of ``--fail-if``."""

    LE = "<="
    GE = ">="
    EQ = "=="
    NE = "!="
    LT = "<"
    GT = ">"

    def holds(self, value: float, threshold: float) -> bool:
        funcs = {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
                 "<": operator.lt, ">": operator.gt}  # fmt: skip
        return funcs[self.value](value, threshold)


#: ``--fail-if`` field -> (where it is read, column or metric, meaning)
FIELDS: dict[str, tuple[str, str, str]] = {
    "sig_bits.mean": ("current", "sig_bits_mean", "mean significant bits of a benchmark"),
    "sig_bits.median": ("current", "sig_bits_median", "median significant bits"),
    "sig_bits.min": ("current", "sig_bits_min", "minimum significant bits"),
    "time.mean": ("current", "mean_s", "mean seconds per round"),
    "time.median": ("current", "median_s", "median seconds per round"),
    "time.min": ("current", "min_s", "fastest round, seconds"),
    "gflops": ("current", "gflops", "GFLOP/s recorded by the benchmark"),
    "ops": ("current", "ops", "rounds per second"),
    "ratio_vs_ieee": ("current", "ratio_vs_ieee", "time relative to the IEEE run"),
    "delta.sig_bits.mean": ("delta", "sig_bits.mean", "current minus baseline mean bits"),
    "delta.sig_bits.median": ("delta", "sig_bits.median", "current minus baseline median bits"),
    "delta.sig_bits.min": ("delta", "sig_bits.min", "current minus baseline minimum bits"),
    "slowdown": ("slowdown", "time.mean_s", "current mean time / baseline mean time"),
}

_EXPR = re.compile(
    r"^\s*(?P<field>[A-Za-z_][\w.]*)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?P<num>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$"
)


class Check(Protocol):
    """What every check offers."""

    def describe(self) -> str: ...

    def evaluate(self, comparison: Comparison) -> tuple[list[dict], int]:
        """Return (violations, number of values examined)."""
        ...


def _violation(check: Check, name: str, baseline, current, value: float, limit: str) -> dict:
    return {"name": name, "check": check.describe(), "baseline": baseline, "current": current,
            "value": value, "limit": limit}  # fmt: skip


def _finite(*values) -> bool:
    return all(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in values)


@dataclass(frozen=True)
class DigitLossCheck:
    """Fail when baseline bits minus current bits exceeds ``max_bits`` (any sig-bits statistic)."""

    max_bits: float

    def describe(self) -> str:
        return f"digit loss <= {self.max_bits:g} bits"

    def evaluate(self, comparison: Comparison) -> tuple[list[dict], int]:
        rows = comparison.rows[comparison.rows["metric"].astype(str).str.contains("sig_bits")]
        found, n = [], 0
        for rec in rows.to_dict("records"):
            if not _finite(rec["a"], rec["b"]):
                continue
            n += 1
            loss = rec["a"] - rec["b"]
            if loss > self.max_bits:
                name = f"{rec['name']} [{rec['metric']}]"
                found.append(_violation(self, name, rec["a"], rec["b"], loss, f"{self.max_bits:g}"))
        return found, n


@dataclass(frozen=True)
class SlowdownCheck:
    """Fail when current/baseline mean time exceeds ``max_ratio`` and Welch's p < ``alpha``.

    When neither side kept enough rounds for the test, the ratio alone decides.
    """

    max_ratio: float
    alpha: float = DEFAULT_ALPHA

    def describe(self) -> str:
        return f"slowdown <= {self.max_ratio:g}x (Welch p < {self.alpha:g})"

    def evaluate(self, comparison: Comparison) -> tuple[list[dict], int]:
        rows = comparison.rows[comparison.rows["metric"] == "time.mean_s"]
        found, n = [], 0
        for rec in rows.to_dict("records"):
            if not _finite(rec["a"], rec["b"]) or rec["a"] <= 0:
                continue
            n += 1
            slowdown = rec["b"] / rec["a"]
            real = not _finite(rec["p_value"]) or rec["p_value"] < self.alpha
            if slowdown > self.max_ratio and real:
                found.append(
                    _violation(
                        self, rec["name"], rec["a"], rec["b"], slowdown, f"{self.max_ratio:g}x"
                    )
                )
        return found, n


@dataclass(frozen=True)
class ThresholdCheck:
    """``FIELD OP THRESHOLD``: fail where the field's value satisfies the comparison."""

    field: str
    op: Op
    threshold: float

    def describe(self) -> str:
        return f"fail if {self.field} {self.op.value} {self.threshold:g}"

    def _values(self, comparison: Comparison) -> list[tuple[str, object, float]]:
        """(name, baseline value or None, value) triples the expression is tested on."""
        if self.field.startswith("run."):
            metrics = comparison.metrics_b
            rows = metrics[metrics["metric"] == self.field[4:]]
            return [(f"{r['kind']}:{r['table_name']} {r['labels']}", None, r["value"])
                    for r in rows.to_dict("records")]  # fmt: skip
        where, column, _ = FIELDS[self.field]
        if where == "current":
            bench = comparison.benchmarks_b
            return [(r["name"], None, r[column]) for r in bench.to_dict("records")]
        rows = comparison.rows[comparison.rows["metric"] == column].to_dict("records")
        if where == "delta":
            return [(r["name"], r["a"], r["delta"]) for r in rows]
        return [(r["name"], r["a"], r["b"] / r["a"]) for r in rows if _finite(r["a"]) and r["a"]]

    def evaluate(self, comparison: Comparison) -> tuple[list[dict], int]:
        found, n = [], 0
        for name, baseline, value in self._values(comparison):
            if not _finite(value):
                continue
            n += 1
            if self.op.holds(float(value), self.threshold):
                limit = f"not {self.op.value} {self.threshold:g}"
                found.append(_violation(self, name, baseline, value, float(value), limit))
        return found, n


def parse_fail_if(expression: str) -> ThresholdCheck:
    """Parse ``"FIELD OP NUMBER"`` (e.g. ``"sig_bits.min<20"``) into a :class:`ThresholdCheck`.

    Raises
    ------
    InputError
        If the expression is malformed or names an unknown field.
    """
    match = _EXPR.match(expression or "")
    if match is None:
        raise InputError(
            f"--fail-if must look like FIELD OP NUMBER (OP one of < <= > >= == !=), "
            f"e.g. 'sig_bits.min<20'; got {expression!r}"
        )
    field = match["field"]
    if field not in FIELDS and not (field.startswith("run.") and len(field) > 4):
        raise InputError(
            f"--fail-if field must be one of {sorted(FIELDS)} or run.<metric>, got {field!r}"
        )
    return ThresholdCheck(field, Op(match["op"]), float(match["num"]))


@dataclass
class CheckReport:
    """Outcome of :func:`run_checks`."""

    violations: pd.DataFrame
    examined: dict[str, int]

    @property
    def passed(self) -> bool:
        return self.violations.empty


def run_checks(comparison: Comparison, checks: list[Check]) -> CheckReport:
    """Evaluate every check; a ``--fail-if`` that finds no value to test is an error (a gate that
    tests nothing must not pass silently)."""
    violations, examined = [], {}
    for check in checks:
        found, n = check.evaluate(comparison)
        examined[check.describe()] = n
        if n == 0 and isinstance(check, ThresholdCheck):
            raise InputError(
                f"{check.describe()}: no value of {check.field} in the current results"
            )
        violations += found
    columns = ["name", "check", "baseline", "current", "value", "limit"]
    return CheckReport(pd.DataFrame(violations, columns=columns), examined)
