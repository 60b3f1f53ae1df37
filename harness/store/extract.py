"""Turning result files into database rows (pure functions: file contents in, records out).

Three shapes come out:

- one *run* record per run directory (from its ``manifest.json``),
- *metric* records in long (tidy) form — run_id, table_name, metric, labels, key_json, value — from
  the TSV tables of the run kinds listed in :data:`METRIC_TABLES`,
- one *benchmark* record per entry of a pytest-benchmark JSON file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harness.fingerprint import device_label


@dataclass(frozen=True)
class TableSpec:
    """How a run's TSV table becomes metric rows.

    ``keys`` are the columns identifying a row (besides the text columns, which are always keys);
    every other numeric column becomes one metric. ``kinds``: substrings of the run's kind or
    command for which the file is ingested (empty: any run).
    """

    keys: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()


#: file name inside a run directory -> how to read it as metrics
METRIC_TABLES: dict[str, TableSpec] = {
    # ensemble analysis (harness/ensemble/analyze.py)
    "region_summary.tsv": TableSpec(("factor", "label", "region", "kind")),
    "min_pairwise_dice.tsv": TableSpec(("factor", "subject", "label", "region", "kind")),
    "volume_sig_bits.tsv": TableSpec(("factor", "subject", "label", "region", "kind")),
    "prob_sig_bits.tsv": TableSpec(("factor", "subject")),
    "majority_vote.tsv": TableSpec(("factor", "subject", "label", "region", "kind")),
    "factor_correlation.tsv": TableSpec(("factor_a", "factor_b", "kind")),
    "stability_summary.tsv": TableSpec(("factor", "kind")),
    # brain age (harness/brainage/run.py)
    "summary.tsv": TableSpec(("regressor", "augmentation", "k"), kinds=("brainage",)),
    "results.tsv": TableSpec(("regressor", "augmentation", "k", "split"), kinds=("brainage",)),
    "robustness.tsv": TableSpec(("regressor", "k", "split"), kinds=("brainage",)),
    "comparison.tsv": TableSpec(("regressor", "k", "arm_a", "arm_b"), kinds=("brainage",)),
    # training runs and ensemble members (harness/train/run.py): loss per view and epoch
    "history.tsv": TableSpec(("view", "epoch"), kinds=("train",)),
    # experiments (harness/experiments/)
    "sweep.tsv": TableSpec(("mode",)),
    "granularity.tsv": TableSpec(("granularity", "mode", "quantity")),
    # introspection: statistics table; its columns are not fixed, text columns are the keys
    "stats.tsv": TableSpec(("epoch", "step", "layer", "group", "quantity"), kinds=("introspect",)),
}

#: spectra of an introspection run (docs/CONTRACTS.md), ingested into the ``spectra`` table
SPECTRA_FILE = "spectra.parquet"
SPECTRA_COLUMNS = (
    "run",
    "epoch",
    "step",
    "layer",
    "group",
    "quantity",
    "index",
    "value",
    "group_size",
)


def applies(spec: TableSpec, manifest: dict) -> bool:
    if not spec.kinds:
        return True
    text = f"{manifest.get('kind') or ''} {manifest.get('command') or ''}".lower()
    return any(k in text for k in spec.kinds)


def is_introspect(manifest: dict) -> bool:
    return applies(TableSpec(kinds=("introspect",)), manifest)


def _timestamp(value) -> datetime | None:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return datetime.fromtimestamp(value, tz=timezone.utc).replace(tzinfo=None)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
        return parsed
    return None


def _dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def run_record(run_id: str, path: Path, manifest: dict) -> dict:
    """One row of the ``runs`` table from a manifest."""
    env = manifest.get("environment") or manifest.get("fingerprint") or {}
    return {
        "run_id": run_id,
        "path": str(path),
        "kind": manifest.get("kind"),
        "command": manifest.get("command"),
        "status": manifest.get("status", "unknown"),
        "device": device_label(env) if env else None,
        "gpu_name": env.get("gpu_name"),
        "cpu_model": env.get("cpu_model"),
        "torch": env.get("torch"),
        "cuda": env.get("cuda"),
        "host": env.get("hostname"),
        "created": _timestamp(manifest.get("started")),
        "finished": _timestamp(manifest.get("finished")),
        "attempts": manifest.get("attempts"),
        "config": _dumps(manifest.get("config") or {}),
        "fingerprint": _dumps(env),
        "manifest": _dumps(manifest),
    }


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def metric_records(
    run_id: str, table_name: str, frame: pd.DataFrame, spec: TableSpec
) -> pd.DataFrame:
    """Melt a wide table into long metric rows: one per (row, numeric non-key column)."""
    keys = [c for c in frame.columns if c in spec.keys or not _is_number(frame[c])]
    values = [c for c in frame.columns if c not in keys]
    columns = ["run_id", "table_name", "metric", "labels", "key_json", "value"]
    if frame.empty or not values:
        return pd.DataFrame(columns=columns)
    key_dicts = frame[keys].astype(object).where(frame[keys].notna(), None).to_dict("records")
    key_json = [_dumps({k: _plain(v) for k, v in d.items()}) for d in key_dicts]
    labels = [" ".join(f"{k}={_plain(v)}" for k, v in d.items()) for d in key_dicts]
    parts = []
    for metric in values:
        parts.append(
            pd.DataFrame(
                {
                    "run_id": run_id,
                    "table_name": table_name,
                    "metric": metric,
                    "labels": labels,
                    "key_json": key_json,
                    "value": pd.to_numeric(frame[metric], errors="coerce").astype(float).to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[columns]


def _plain(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_DEVICE_TOKEN = re.compile(r"(?<![A-Za-z0-9])(cpu|cuda|gpu)(?![A-Za-z0-9])", re.IGNORECASE)


def match_key(name: str) -> str:
    """The benchmark's name with device words (cpu, cuda, gpu) blanked, for matching across devices.

    ``test_conv2d_forward[cpu-small-3x3-torch]`` and ``test_conv2d_forward[cuda-small-3x3-torch]``
    share the key ``test_conv2d_forward[*-small-3x3-torch]``.
    """
    return _DEVICE_TOKEN.sub("*", name)


def _stat(stats: dict, key: str) -> float | None:
    value = stats.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def benchmark_records(source: Path, data: dict) -> list[dict]:
    """One row of the ``benchmarks`` table per entry of a pytest-benchmark JSON file."""
    file_env = (data.get("machine_info") or {}).get("harness_fingerprint") or {}
    rows = []
    for bench in data["benchmarks"]:
        extra = dict(bench.get("extra_info") or {})
        env = extra.pop("fingerprint", None) or extra.pop("environment", None) or file_env
        stats = bench.get("stats") or {}
        raw = stats.get("data")
        name = str(bench.get("name", "?"))
        rows.append(
            {
                "source": str(source),
                "file_name": source.name,
                "name": name,
                "fullname": bench.get("fullname", name),
                "match_key": match_key(name),
                "group_name": bench.get("group"),
                "param": bench.get("param"),
                "params": _dumps(bench.get("params") or {}),
                "op": extra.get("op") or name.split("[", 1)[0],
                "case_name": extra.get("case"),
                "mode": extra.get("mode"),
                "implementation": extra.get("implementation"),
                "device": extra.get("device"),
                "device_name": device_label(env) if env else None,
                "gpu_name": env.get("gpu_name"),
                "cpu_model": env.get("cpu_model"),
                "torch": env.get("torch"),
                "cuda": env.get("cuda"),
                "host": env.get("hostname"),
                "git_commit": env.get("git_commit") or (data.get("commit_info") or {}).get("id"),
                "datetime": _timestamp(data.get("datetime")),
                "mean_s": _stat(stats, "mean"),
                "median_s": _stat(stats, "median"),
                "stddev_s": _stat(stats, "stddev"),
                "min_s": _stat(stats, "min"),
                "max_s": _stat(stats, "max"),
                "rounds": stats.get("rounds"),
                "iterations": stats.get("iterations"),
                "ops": _stat(stats, "ops"),
                "data": [float(v) for v in raw] if isinstance(raw, list) and raw else None,
                "gflops": _number(extra.get("gflops")),
                "sig_bits_mean": _number(extra.get("sig_bits_mean")),
                "sig_bits_median": _number(extra.get("sig_bits_median")),
                "sig_bits_min": _number(extra.get("sig_bits_min")),
                "ratio_vs_ieee": _number(extra.get("ratio_vs_ieee")),
                "extra": _dumps(extra),
                "fingerprint": _dumps(env),
            }
        )
    return rows


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
