"""Turning result files into database rows (pure functions: file contents in, records out).

Three shapes come out:

- one *run* record per run directory (from its ``manifest.json``),
- *metric* records in long (tidy) form — run_id, table_name, metric, labels, key_json, value — from
  the table artifacts that :mod:`harness.runs.catalogue` maps to :attr:`DbTable.METRICS`, for the
  run kinds that own them,
- one *benchmark* record per entry of a pytest-benchmark JSON file.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harness.fingerprint import device_label, named_image
from harness.runs import Artifact, RunKind
from harness.runs.catalogue import database_artifacts


def run_artifacts(manifest: dict) -> tuple[Artifact, ...]:
    """The artifacts the database loads from a run with this manifest (by its ``kind``; none
    for a run of an unknown kind)."""
    return database_artifacts(RunKind.of_manifest(manifest))


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
    kind = RunKind.of_manifest(manifest)
    return {
        "run_id": run_id,
        "path": str(path),
        "kind": kind.value if kind else manifest.get("kind"),
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


def metric_records(run_id: str, artifact: Artifact, frame: pd.DataFrame) -> pd.DataFrame:
    """Melt a wide table into long metric rows: one per (row, numeric non-key column).

    The artifact's declared ``keys`` and every text column identify a row; ``table_name`` is the
    artifact's name.
    """
    table_name = artifact.name
    keys = [c for c in frame.columns if c in artifact.keys or not _is_number(frame[c])]
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


def image_fields(extra_image, file_image, env: dict) -> dict:
    """Container image of a benchmark record: its ``extra_info.image``, else the file's
    ``machine_info.harness_image`` (both written by ``harness containers bench``), else the
    fingerprint's ``container_image``."""
    image = extra_image if isinstance(extra_image, dict) else file_image
    image = image if isinstance(image, dict) else {}
    return {
        "image": image.get("tag") or named_image(env.get("container_image")),
        "image_id": image.get("id") or env.get("container_image_id"),
        "vfc_backends": image.get("vfc_backends") or env.get("vfc_backends"),
    }


def device_name(env: dict, image: str | None, vfc_backends: str | None = None) -> str | None:
    """Device label of a record, with the container image (and Verificarlo backends) when there
    are: the same CPU in two images, or under two backends, is two result sets to compare."""
    context = "; ".join(
        part for part in (image, f"VFC_BACKENDS={vfc_backends}" if vfc_backends else None) if part
    )
    if not env:
        return context or None
    label = device_label(env)
    return f"{label} [{context}]" if context else label


def benchmark_records(source: Path, data: dict) -> list[dict]:
    """One row of the ``benchmarks`` table per entry of a pytest-benchmark JSON file."""
    machine = data.get("machine_info") or {}
    file_env = machine.get("harness_fingerprint") or {}
    rows = []
    for bench in data["benchmarks"]:
        extra = dict(bench.get("extra_info") or {})
        env = extra.pop("fingerprint", None) or extra.pop("environment", None) or file_env
        image = image_fields(extra.pop("image", None), machine.get("harness_image"), env)
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
                "device_name": device_name(env, image["image"], image["vfc_backends"]),
                **image,
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
