"""The sections of a report, each built from the results database when its data is present.

Every builder takes a :class:`harness.store.ResultsDB` (already holding the inputs) and returns a
:class:`Section`, or None when there is nothing to show. Only complete runs contribute results.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.fingerprint import named_image
from harness.report import figures
from harness.report.model import Figure, Section, Table
from harness.runs import Artifact, RunKind, catalogue
from harness.store.db import ResultsDB

SIG_BITS_STATS = ["sig_bits_mean", "sig_bits_median", "sig_bits_min"]
#: column headers with their units
DICE_UNITS = {"mean_min_dice": "mean min Dice (0-1)", "worst_min_dice": "worst min Dice (0-1)",
              "mean_dice_to_truth": "mean Dice to truth (0-1)"}  # fmt: skip
BRAINAGE_UNITS = {"k": "k (members)", "mae_mean": "MAE (years)", "mae_ci_low": "MAE CI low (years)",
                  "mae_ci_high": "MAE CI high (years)", "r2_mean": "R² (1)"}  # fmt: skip
MAX_ENTROPY_MAPS = 4


def _complete_runs(
    db: ResultsDB, artifact: Artifact | None = None, kinds: tuple[RunKind, ...] = ()
) -> pd.DataFrame:
    """Complete runs of ``kinds`` (default: the kinds that write ``artifact``) that hold
    ``artifact`` when one is given."""
    kinds = kinds or (artifact.kinds if artifact else ())
    runs = db.query(
        "SELECT run_id, path, kind, command, device FROM runs WHERE status = 'complete'"
    )
    runs = runs[runs["kind"].isin([k.value for k in kinds])]
    if artifact is not None:
        keep = [artifact.path(p).is_file() for p in runs["path"]]
        runs = runs[pd.Series(keep, index=runs.index, dtype=bool)]
    return runs.sort_values("run_id").reset_index(drop=True)


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _bench_label(row) -> str:
    """``op case implementation/mode`` for a chart axis, skipping what the benchmark lacks."""
    what = _text(row["case_name"]) or _text(row["param"])
    impl, mode = _text(row["implementation"]), _text(row["mode"])
    tail = f"{impl}/{mode}" if impl and mode else impl or mode
    return " ".join(part for part in (row["op"], what, tail) if part)


def overview(db: ResultsDB) -> Section | None:
    runs = db.query(
        "SELECT r.run_id AS run, r.kind, r.status, r.device, count(m.value) AS metric_rows "
        "FROM runs r LEFT JOIN metrics m USING (run_id) GROUP BY ALL ORDER BY run"
    )
    files = db.query(
        "SELECT file_name AS file, any_value(device_name) AS device, count(*) AS benchmarks "
        "FROM benchmarks GROUP BY file_name ORDER BY file_name"
    )
    if runs.empty and files.empty:
        return None
    section = Section("Inputs", "inputs")
    incomplete = runs[runs["status"] != "complete"]
    if len(incomplete):
        section.add(
            f"{len(incomplete)} run(s) are not complete (crashed, killed or still running): "
            "they are listed but none of their tables is used below."
        )
    if len(runs):
        section.add(Table(runs, f"Run directories ({catalogue.MANIFEST.name})"))
    if len(files):
        section.add(Table(files, "Benchmark files (pytest-benchmark JSON)"))
    return section


def significant_bits(db: ResultsDB) -> Section | None:
    bench = db.query(
        "SELECT * FROM benchmarks WHERE sig_bits_mean IS NOT NULL ORDER BY op, case_name, name, "
        "device_name"
    )
    if bench.empty:
        return None
    section = Section(
        "Significant bits per kernel, mode and device",
        "sig-bits",
        "Significant bits of each benchmark's output against its IEEE reference "
        "(significantdigits; higher is more stable; fp32 carries at most 24).",
    )
    table = pd.DataFrame(
        {
            "op": bench["op"],
            "case": bench["case_name"].fillna(bench["param"]),
            "implementation": bench["implementation"],
            "mode": bench["mode"],
            "device": bench["device_name"],
            "mean (bits)": bench["sig_bits_mean"],
            "median (bits)": bench["sig_bits_median"],
            "min (bits)": bench["sig_bits_min"],
        }
    )
    section.add(Table(table, "Significant bits (mean / median / min over output elements)", 3))
    labels = [_bench_label(r) for r in bench.to_dict("records")]
    devices = bench["device_name"].fillna("unknown").tolist()
    section.add(_chart(
        bench["sig_bits_mean"], "Mean significant bits per benchmark, coloured by device",
        lambda: figures.horizontal_bars(
            labels, bench["sig_bits_mean"].tolist(), devices, "mean sig. bits"
        ),
    ))  # fmt: skip
    return section


def throughput(db: ResultsDB) -> Section | None:
    bench = db.query("SELECT * FROM benchmarks WHERE mean_s IS NOT NULL ORDER BY op, name")
    if bench.empty:
        return None
    section = Section(
        "Throughput",
        "throughput",
        "Per-round timings from pytest-benchmark: mean and standard deviation over rounds.",
    )
    conditions = pd.DataFrame([_timing_conditions(f) for f in bench["fingerprint"]])
    table = pd.DataFrame(
        {
            "benchmark": bench["name"],
            "device": bench["device_name"],
            "mean (ms)": bench["mean_s"] * 1e3,
            "stddev (ms)": bench["stddev_s"] * 1e3,
            "rounds": bench["rounds"],
            "threads": conditions["threads"],
            "load (1 min)": conditions["load"],
            "cores": conditions["cores"],
            "ops (1/s)": bench["ops"],
            "GFLOP/s": bench["gflops"],
            "time vs IEEE (x)": bench["ratio_vs_ieee"],
        }
    ).dropna(axis=1, how="all")
    loaded = conditions["load"] > conditions["cores"]
    if loaded.any():
        section.add(
            f"Warning: {int(loaded.sum())} of {len(bench)} timings were taken under a load "
            "average above the core count (the machine was shared): compare them with care."
        )
    if conditions["load"].isna().any():
        section.add(
            f"{int(conditions['load'].isna().sum())} timings predate load recording: their load "
            "is unknown."
        )
    section.add(Table(table, "Timings"))
    labels = [_bench_label(r) for r in bench.to_dict("records")]
    devices = bench["device_name"].fillna("unknown").tolist()
    section.add(_chart(
        bench["mean_s"], "Mean time per round, coloured by device (log scale)",
        lambda: figures.horizontal_bars(
            labels, (bench["mean_s"] * 1e3).tolist(), devices, "mean time per round (ms, log)",
            log=True,
        ),
    ))  # fmt: skip
    return section


def _timing_conditions(text) -> dict:
    """Threads, load average and cores of a benchmark's fingerprint (None where not recorded)."""
    env = json.loads(text) if isinstance(text, str) and text else {}
    threads = env.get("threads") or {}
    return {
        "threads": threads.get("torch_intra_op", env.get("torch_num_threads")),
        "load": threads.get("load_avg_1m"),
        "cores": threads.get("cores_available", env.get("cpu_count")),
    }


def _chart(values: pd.Series, caption: str, draw) -> Figure | str:
    """The figure ``draw()`` makes, or a sentence saying why there is nothing to draw."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().all():
        return f"{caption}: no chart, every value is missing (NaN)."
    if (numbers.fillna(0) == 0).all():
        return f"{caption}: no chart, every value is 0."
    return Figure(draw(), caption)


def _read_tsv(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path, sep="\t")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None


def experiment_tables(db: ResultsDB) -> Section | None:
    section = Section(
        "Perturbation sweep and granularity",
        "experiments",
        "Significant bits of trained weights and loss per perturbation mode (sweep), and of a "
        "conv/BN block's outputs at op level vs kernel level (granularity).",
    )
    for artifact, caption in ((catalogue.SWEEP, "Mode sweep"), (catalogue.GRANULARITY, "Op vs kernel level")):
        for run in _complete_runs(db, artifact).to_dict("records"):
            frame = _read_tsv(artifact.path(run["path"]))
            if frame is not None:
                section.add(Table(frame, f"{caption} — {run['run_id']} ({run['device']})", 3))
    return section if section.blocks else None


#: columns of ``stability_summary.tsv`` shown in the report
STABILITY_COLUMNS = (
    "factor", "kind", "n_members", "n_subjects", "min_dice", "min_dice_low", "min_dice_high",
    "matched_size", "matched_min_dice", "matched_min_dice_low", "matched_min_dice_high",
    "dice_to_truth", "dice_to_truth_low", "dice_to_truth_high",
)  # fmt: skip


def ensemble(db: ResultsDB) -> Section | None:
    section = Section(
        "Ensemble agreement",
        "ensemble",
        "Per-region minimum pairwise Dice across ensemble members (the stability metric: 1 means "
        "every member agrees) and Dice to the ground truth, averaged over subjects.",
    )
    for run in _complete_runs(db, catalogue.REGION_SUMMARY).to_dict("records"):
        folder = Path(run["path"])
        summary = _read_tsv(catalogue.REGION_SUMMARY.path(folder))
        if summary is None or summary.empty:
            continue
        per_factor = summary.groupby("factor", as_index=False).agg(
            regions=("region", "nunique"),
            mean_min_dice=("mean_min_dice", "mean"),
            worst_min_dice=("mean_min_dice", "min"),
            mean_dice_to_truth=("mean_dice_to_truth", "mean"),
        ).rename(columns=DICE_UNITS)
        section.add(Table(per_factor, f"Per factor — {run['run_id']}", 3))
        stability = _read_tsv(catalogue.STABILITY_SUMMARY.path(folder))
        if stability is not None and not stability.empty:
            section.add(Table(
                stability[[c for c in STABILITY_COLUMNS if c in stability]],
                "Stability by tissue kind: median over regions of the minimum pairwise Dice (all "
                "members, and at the matched member count), with the members' Dice to truth; "
                f"95% bootstrap intervals over subjects — {run['run_id']}", 3,
            ))  # fmt: skip
        worst = summary.dropna(subset=["mean_min_dice"]).nsmallest(10, "mean_min_dice")
        cols = ["factor", "region", "kind", "mean_min_dice", "mean_dice_to_truth"]
        section.add(Table(worst[cols].rename(columns=DICE_UNITS),
                          "The 10 least stable (factor, region) pairs", 3))  # fmt: skip
        zero = int((summary["mean_min_dice"] == 0).sum())
        missing = int(summary["mean_min_dice"].isna().sum())
        if zero or missing:
            section.add(
                f"{zero} (factor, region) pairs have mean minimum Dice 0 (some two members share "
                f"no voxel of the region; drawn as '0'), {missing} are NaN (the region is absent "
                "from the members' segmentations of every subject; not drawn)."
            )
        section.add(_chart(
            summary["mean_min_dice"], "Mean minimum pairwise Dice per region (least stable first)",
            lambda s=summary: figures.region_stability(s.dropna(subset=["mean_min_dice"])),
        ))  # fmt: skip
        for path in catalogue.ENTROPY_MAP.glob(folder)[:MAX_ENTROPY_MAPS]:
            try:
                png = figures.entropy_montage(path)
            except Exception as exc:  # an unreadable map should not sink the report
                section.add(f"{path.name}: not shown ({exc})")
                continue
            what = "_".join(catalogue.ENTROPY_MAP.parse(path).values())
            section.add(Figure(png, f"Voxel-wise label entropy across members, {what}"))
    return section if section.blocks else None


def brain_age(db: ResultsDB) -> Section | None:
    section = Section(
        "Brain age",
        "brainage",
        "Test MAE of brain-age regressors against the number of ensemble members used as "
        "training augmentation (k = 0: no augmentation), with the Gaussian-noise control.",
    )
    for run in _complete_runs(db, catalogue.BRAINAGE_SUMMARY).to_dict("records"):
        folder = Path(run["path"])
        summary = _read_tsv(catalogue.BRAINAGE_SUMMARY.path(folder))
        if summary is None or summary.empty:
            continue
        cols = [c for c in ("regressor", "augmentation", "k", "mae_mean", "mae_ci_low",
                            "mae_ci_high", "r2_mean") if c in summary]  # fmt: skip
        table = summary[cols].copy()
        if "r2_mean" in table:
            # the mean/median baselines sit at R^2 ~ 0 by construction: flag only models
            from harness.brainage.regressors import BASELINE_KINDS

            names = [k.value for k in BASELINE_KINDS]
            baseline = table["regressor"].isin(names) if "regressor" in table else False
            worse = (table["r2_mean"] < 0) & ~baseline
            table["worse than the mean"] = worse.map({True: "yes (R² < 0)", False: ""})
            if worse.any():
                section.add(
                    f"Warning: {int(worse.sum())} of {len(table)} rows have R² < 0 — "
                    "predicting every subject's age as the mean age would do better."
                )
        table = table.rename(columns=BRAINAGE_UNITS)
        section.add(Table(table, f"MAE by ensemble size — {run['run_id']}", 3))
        comparison = _read_tsv(catalogue.BRAINAGE_COMPARISON.path(folder))
        if comparison is not None and not comparison.empty:
            section.add(Table(
                comparison, "Paired per-subject comparison at the largest k (diff = MAE a - MAE b, "
                "95% bootstrap interval over subjects; mde_80: smallest difference detectable "
                "with 80% power; power to detect the anchor's 0.78 years)", 3,
            ))  # fmt: skip
        saved = catalogue.MAE_FIGURE.path(folder)
        png = saved.read_bytes() if saved.is_file() else figures.mae_vs_k(summary)
        section.add(Figure(png, "MAE against ensemble size (95% CI over splits)"))
    return section if section.blocks else None


def spectra(db: ResultsDB) -> Section | None:
    section = Section(
        "Gradient spectra",
        "spectra",
        "Singular values of per-group gradients, activations and adjoints during training "
        "(introspection runs).",
    )
    frame = db.query(
        'SELECT run_id, step, layer, "group", quantity, "index", value, group_size FROM spectra'
    )
    for run_id, part in frame.groupby("run_id", sort=True):
        section.add(
            Figure(
                figures.spectra_trajectories(part),
                f"Largest singular value per layer over training — {run_id}",
            )  # fmt: skip
        )
    for run in _complete_runs(db, kinds=(RunKind.INTROSPECT,)).to_dict("records"):
        folder = Path(run["path"])
        stats_path = catalogue.INTROSPECT_STATS.path(folder)
        stats = _read_tsv(stats_path) if stats_path.is_file() else None
        if stats is not None:
            section.add(Table(stats, f"Statistics — {run['run_id']}", 3))
        for png in catalogue.SPECTRA_FIGURE.glob(folder):
            section.add(Figure(png.read_bytes(), f"{png.name} — {run['run_id']}"))
    return section if section.blocks else None


ENV_FIELDS = ["cpu_model", "threads", "gpu_name", "torch", "cuda", "cudnn", "tf32_matmul",
              "tf32_cudnn", "hostname", "container_image", "git_commit"]  # fmt: skip
#: fields that describe a GPU: blank for an environment without one
GPU_FIELDS = ("gpu_name", "cuda", "cudnn", "tf32_matmul", "tf32_cudnn")


def _applicable(env: dict) -> dict:
    """The fingerprint's :data:`ENV_FIELDS`, blank where they do not apply to its device."""
    row = {k: env.get(k) for k in ENV_FIELDS}
    row["threads"] = (env.get("threads") or {}).get("torch_intra_op", env.get("torch_num_threads"))
    if not env.get("cuda_available") and not env.get("gpu_name"):
        row.update(dict.fromkeys(GPU_FIELDS))
    row["container_image"] = named_image(row.get("container_image"))
    return row


def environment(db: ResultsDB) -> Section | None:
    rows = db.query(
        "SELECT run_id AS source, fingerprint FROM runs "
        "UNION ALL SELECT DISTINCT file_name AS source, fingerprint FROM benchmarks"
    )
    if rows.empty:
        return None
    records: dict[str, dict] = {}
    for source, text in rows.itertuples(index=False):
        row = _applicable(json.loads(text) if text else {})
        key = json.dumps(row, sort_keys=True, default=str)
        entry = records.setdefault(key, row | {"sources": []})
        if source not in entry["sources"]:
            entry["sources"].append(source)
    table = pd.DataFrame(list(records.values()))
    table["git_commit"] = table["git_commit"].map(lambda c: c[:10] if isinstance(c, str) else c)
    table["sources"] = table["sources"].map(lambda s: ", ".join(sorted(s)))
    table = table[["sources", *ENV_FIELDS]].sort_values("sources").reset_index(drop=True)
    table = table.dropna(axis=1, how="all")
    section = Section(
        "Environment",
        "environment",
        "The environment fingerprint recorded with each result (one row per distinct environment).",
    )
    section.add(Table(table))
    return section


BUILDERS = [overview, significant_bits, throughput, ensemble, brain_age, spectra,
            experiment_tables, environment]  # fmt: skip
