"""Two result sets side by side (``harness compare A B``).

Each side is one or more paths (run directories, result roots, benchmark JSON files), loaded into a
throw-away :class:`harness.store.ResultsDB`. Benchmarks are matched by name with the device words
blanked (:func:`harness.store.extract.match_key`), so a CPU result lines up with its GPU twin; run
metrics are matched by run kind, table, metric and key labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import pandas as pd

from harness.compare.stats import (
    DEFAULT_ALPHA,
    Timing,
    sig_bits_verdict,
    timing_verdict,
    welch_p_value,
)
from harness.errors import InputError
from harness.store.db import load_results

SIG_BITS_STATS = ("mean", "median", "min")
COLUMNS = [
    "section", "name", "metric", "a", "b", "delta", "ratio", "p_value", "verdict",
    "device_a", "device_b",
]  # fmt: skip


@dataclass
class Comparison:
    """Result of :func:`compare_results`: one row per (matched item, metric).

    Columns: section (``benchmark`` or ``run``), name, metric, a, b, delta (b - a), ratio
    (throughput of B over A, for timings), p_value (Welch), verdict, device_a, device_b.
    """

    rows: pd.DataFrame
    alpha: float = DEFAULT_ALPHA
    benchmarks_a: pd.DataFrame = field(default_factory=pd.DataFrame)
    benchmarks_b: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics_a: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics_b: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: one line per unreadable run manifest left out (``skip_bad``)
    warnings: list[str] = field(default_factory=list)

    def benchmarks(self) -> pd.DataFrame:
        return self.rows[self.rows["section"] == "benchmark"].reset_index(drop=True)

    def run_metrics(self) -> pd.DataFrame:
        return self.rows[self.rows["section"] == "run"].reset_index(drop=True)

    def differences(self) -> Comparison:
        """The same comparison restricted to rows whose verdict is not ``same ...``."""
        keep = ~self.rows["verdict"].astype(str).str.startswith("same")
        return replace(self, rows=self.rows[keep].reset_index(drop=True))


def _as_list(paths) -> list:
    return (
        [paths] if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__") else list(paths)
    )


def _latest(frame: pd.DataFrame, key: str, order: str) -> pd.DataFrame:
    return frame.sort_values(order, na_position="first").drop_duplicates(key, keep="last")


def _benchmark_rows(a: pd.DataFrame, b: pd.DataFrame, alpha: float) -> list[dict]:
    a, b = _latest(a, "match_key", "datetime"), _latest(b, "match_key", "datetime")
    merged = a.merge(b, on="match_key", how="outer", suffixes=("_a", "_b"), indicator=True)
    rows = []
    for rec in merged.sort_values("match_key").to_dict("records"):
        name = rec["name_a"] if isinstance(rec["name_a"], str) else rec["name_b"]
        common = {"section": "benchmark", "name": name,
                  "device_a": rec.get("device_name_a"), "device_b": rec.get("device_name_b")}  # fmt: skip
        if rec["_merge"] != "both":
            side = "A" if rec["_merge"] == "left_only" else "B"
            rows.append(common | {"metric": "-", "verdict": f"only in {side}"})
            continue
        ta = Timing.from_row({k[:-2]: v for k, v in rec.items() if k.endswith("_a")})
        tb = Timing.from_row({k[:-2]: v for k, v in rec.items() if k.endswith("_b")})
        ratio = ta.mean / tb.mean if tb.mean else float("nan")
        p = welch_p_value(ta, tb)
        rows.append(common | {
            "metric": "time.mean_s", "a": ta.mean, "b": tb.mean, "delta": tb.mean - ta.mean,
            "ratio": ratio, "p_value": p, "verdict": timing_verdict(ratio, p, alpha)})  # fmt: skip
        for stat in SIG_BITS_STATS:
            va, vb = rec[f"sig_bits_{stat}_a"], rec[f"sig_bits_{stat}_b"]
            if _nan(va) or _nan(vb):
                continue
            rows.append(common | {
                "metric": f"sig_bits.{stat}", "a": va, "b": vb, "delta": vb - va,
                "verdict": sig_bits_verdict(vb - va)})  # fmt: skip
    return rows


def _nan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


RUN_METRICS_SQL = """
SELECT r.kind, m.table_name, m.metric, m.labels, m.value, r.device, r.created
FROM metrics m JOIN runs r USING (run_id) WHERE r.status = 'complete'
"""


def _run_rows(a: pd.DataFrame, b: pd.DataFrame) -> list[dict]:
    key = ["kind", "table_name", "metric", "labels"]
    if a.empty or b.empty:
        return []
    for frame in (a, b):
        frame["_key"] = frame[key].astype(str).agg("|".join, axis=1)
    a, b = _latest(a, "_key", "created"), _latest(b, "_key", "created")
    merged = a.merge(b, on=key, how="inner", suffixes=("_a", "_b"))
    rows = []
    for rec in merged.sort_values(key).to_dict("records"):
        va, vb = rec["value_a"], rec["value_b"]
        delta = vb - va if not (_nan(va) or _nan(vb)) else float("nan")
        if "sig_bits" in rec["metric"]:
            verdict = sig_bits_verdict(delta)
        elif _nan(delta):
            verdict = "-"
        else:
            verdict = "same" if delta == 0 else "changed"
        rows.append({
            "section": "run", "name": f"{rec['kind']}:{rec['table_name']} {rec['labels']}",
            "metric": rec["metric"], "a": va, "b": vb, "delta": delta, "verdict": verdict,
            "device_a": rec["device_a"], "device_b": rec["device_b"]})  # fmt: skip
    return rows


def compare_results(
    a_paths, b_paths, alpha: float = DEFAULT_ALPHA, skip_bad: bool = False
) -> Comparison:
    """Compare result set A against B (each: a path or a list of paths).

    ``skip_bad`` leaves out unreadable run manifests (named in the result's ``warnings``)
    instead of failing.

    Raises
    ------
    InputError
        If a path is missing or unreadable (a run manifest: unless ``skip_bad``), or the two
        sets share nothing to compare.
    """
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}")
    sides, warnings = [], []
    for paths in (a_paths, b_paths):
        db = load_results(_as_list(paths), skip_bad=skip_bad)
        sides.append((db.table("benchmarks"), db.query(RUN_METRICS_SQL)))
        warnings += db.warnings
        db.close()
    (bench_a, runs_a), (bench_b, runs_b) = sides
    rows = _benchmark_rows(bench_a, bench_b, alpha) + _run_rows(runs_a.copy(), runs_b.copy())
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if not (~frame["verdict"].astype(str).str.startswith("only in")).any():
        raise InputError(
            f"nothing to compare: {list(map(str, _as_list(a_paths)))} and "
            f"{list(map(str, _as_list(b_paths)))} share no benchmark and no run metric"
        )
    numeric = ["a", "b", "delta", "ratio", "p_value"]
    frame[numeric] = frame[numeric].astype(float)
    return Comparison(frame, alpha, bench_a, bench_b, runs_a, runs_b, warnings)


def display_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The comparison as people read it: change as a throughput ratio or a bit difference."""

    def change(rec) -> str:
        if rec["metric"] == "time.mean_s" and not _nan(rec["ratio"]):
            return f"{rec['ratio']:.3g}x throughput"
        if "sig_bits" in str(rec["metric"]) and not _nan(rec["delta"]):
            return f"{rec['delta']:+.2f} bits"
        return "-" if _nan(rec["delta"]) else f"{rec['delta']:+.4g}"

    def p_text(value) -> str:
        return "-" if _nan(value) else f"{value:.2g}"

    return pd.DataFrame(
        {
            "name": rows["name"],
            "metric": rows["metric"],
            "A": rows["a"],
            "B": rows["b"],
            "change (B vs A)": [change(r) for r in rows.to_dict("records")],
            "p (Welch)": [p_text(v) for v in rows["p_value"]],
            "verdict": rows["verdict"],
        }
    )


def render_comparison(comparison: Comparison, fmt: str = "table") -> str:
    """Text of a comparison: ``table`` or ``md`` (readable), ``tsv`` or ``json`` (all columns)."""
    from harness.store.tables import TableFormat, render

    fmt = TableFormat.parse(fmt)
    if fmt in (TableFormat.TSV, TableFormat.JSON):
        return render(comparison.rows, fmt)
    parts = []
    devices = comparison.rows[["device_a", "device_b"]].dropna().drop_duplicates()
    for section, title in (("benchmark", "Benchmarks"), ("run", "Run metrics")):
        rows = comparison.rows[comparison.rows["section"] == section]
        if rows.empty:
            continue
        heading = f"## {title}" if fmt is TableFormat.MD else f"{title}:"
        parts += [heading, "", render(display_frame(rows), fmt), ""]
    if len(devices):
        pairs = "; ".join(f"A: {a} / B: {b}" for a, b in devices.itertuples(index=False))
        parts.append(f"devices: {pairs}")
    parts.append(
        f"time: Welch t-test on per-round timings, 'same' unless p < {comparison.alpha}; "
        "throughput ratio > 1 means B is faster. sig bits: a difference is real only beyond "
        "1 bit (the estimator's resolution)."
    )
    return "\n".join(parts)
