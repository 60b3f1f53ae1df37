"""Agreement analysis of an ensemble's segmentations (``harness ensemble analyze``).

Inputs: each member's predicted label maps (:data:`harness.runs.catalogue.PREDICTION`, integer
FreeSurfer ids on the cohort's grid) and the cohort (ground truth
:data:`~harness.runs.catalogue.DSEG`, :data:`~harness.runs.catalogue.LABELS`); optionally each
member's class probabilities (:data:`~harness.runs.catalogue.PROBABILITIES`) for significant bits
of probabilities.

Outputs in ``ENS/analysis/``: the artifacts of kind ``ensemble-analysis`` declared in
:mod:`harness.runs.catalogue` (names and columns there) — regional volumes and Dice to truth per
member; per factor the minimum pairwise Dice (the anchor paper's stability metric), the majority
vote's Dice, significant bits of volumes (and of probabilities when saved), a per-region summary,
the correlation of per-region instability between factors, voxel-wise label entropy maps and two
figures.
New beside every stability number: the member count, the Dice to truth, and 95% bootstrap
intervals over subjects (``stability_summary.tsv``); the minimum pairwise Dice also at a matched
member count (the smallest of all factors, mean over member subsets), because a minimum over more
pairs is smaller; and the partial correlation of per-region instability controlling for region
size (:mod:`harness.ensemble.stability`).
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from harness.ensemble import stability
from harness.ensemble.layout import (
    BASELINE,
    analysis_dir,
    list_members,
    member_dir,
    member_factor,
    prediction_path,
    probabilities_path,
)
from harness.errors import InputError
from harness.metrics import (
    dice_per_label,
    label_entropy,
    min_over_pairs,
    pairwise_dice,
    significant_bits,
)
from harness.runs import RunDir, RunKind, catalogue


def _load_labels(cohort: Path) -> pd.DataFrame:
    path = catalogue.LABELS.path(cohort)
    if not path.exists():
        raise InputError(f"cohort {cohort} has no {catalogue.LABELS.name}")
    table = pd.read_csv(path, sep="\t")
    missing = {"label", "name", "kind"} - set(table.columns)
    if missing:
        raise InputError(f"{path} lacks columns {sorted(missing)}")
    return table[table["kind"] != "background"].reset_index(drop=True)


def _truth_path(cohort: Path, subject: str) -> Path:
    return catalogue.DSEG.path(cohort, subject=subject)


def _load_seg(path: Path):
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for unreadable files
        raise InputError(f"cannot read segmentation {path}: {exc}") from None
    voxel_mm3 = float(abs(np.linalg.det(img.affine[:3, :3])))
    return data.astype(np.int32), img.affine, voxel_mm3


def _subjects(ens: Path, members: list[str]) -> list[str]:
    sets = []
    for member in members:
        found = catalogue.PREDICTION.glob(member_dir(ens, member))
        sets.append({catalogue.PREDICTION.parse(p)["subject"] for p in found})
    common = sorted(set.intersection(*sets)) if sets else []
    if not common:
        raise InputError(f"no subject has predictions from every member in {ens}")
    return common


def _volumes(seg, labels, voxel_mm3) -> np.ndarray:
    counts = np.array([(seg == lab).sum() for lab in labels], dtype=np.float64)
    return counts * voxel_mm3


#: bootstrap resamples of the subjects for every confidence interval
N_BOOT = 1000
#: at most this many member subsets per factor for the matched-size minimum
MAX_SUBSETS = 100
#: regions needed for a partial correlation (one control variable): fewer leave <= 2 degrees
#: of freedom and give |r| ~ 1 by construction
MIN_PARTIAL_REGIONS = 6


def analyze_ensemble(
    ens: str | Path,
    cohort: str | Path,
    *,
    entropy_maps: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Compute every agreement table of an ensemble; returns the analysis directory.

    ``seed`` seeds the bootstrap resamples and the random member subsets (the tables are a
    deterministic function of the predictions and the seed). A subject without a ground-truth
    label map in the cohort (a user's scan) gets the stability tables only: no
    ``dice_to_truth.tsv`` / ``majority_vote.tsv`` rows, Dice to truth NaN in the summaries.
    """
    ens, cohort = Path(ens), Path(cohort)
    members = list_members(ens)
    if BASELINE not in members:
        raise InputError(f"ensemble {ens} has no 'baseline' member (the unperturbed model)")
    factors: dict[str, list[str]] = {}
    for m in members:
        if m != BASELINE:
            factors.setdefault(member_factor(m), []).append(m)
    if not factors:
        raise InputError(f"ensemble {ens} has only the baseline member; nothing to compare")
    labels_table = _load_labels(cohort)
    labels = labels_table["label"].to_numpy()
    names = dict(zip(labels_table["label"], labels_table["name"], strict=True))
    kinds = dict(zip(labels_table["label"], labels_table["kind"], strict=True))
    subjects = _subjects(ens, members)
    rng = np.random.default_rng(seed)
    matched = min(len(names_f) for names_f in factors.values())
    subsets = {
        f: stability.member_subsets(len(m), matched, rng, MAX_SUBSETS)
        for f, m in factors.items() if len(m) >= 2 and matched >= 2
    }  # fmt: skip

    out = analysis_dir(ens)
    run = RunDir(out, kind=RunKind.ENSEMBLE_ANALYSIS)
    run.start("harness ensemble analyze", {"ensemble": str(ens), "cohort": str(cohort)})
    rows = {k: [] for k in ("vol", "dice", "minpd", "major", "volbits", "probbits", "truth")}

    def region_cols(i):
        lab = int(labels[i])
        return {"label": lab, "region": names[lab], "kind": kinds[lab]}

    for subject in tqdm(
        subjects, desc="analyze", unit="subject", leave=False, disable=not progress
    ):
        truth = None
        if _truth_path(cohort, subject).exists():
            truth, affine, voxel_mm3 = _load_seg(_truth_path(cohort, subject))
        else:
            _, affine, voxel_mm3 = _load_seg(prediction_path(ens, BASELINE, subject))
        segs = {}
        for m in members:
            seg, _, _ = _load_seg(prediction_path(ens, m, subject))
            if truth is not None and seg.shape != truth.shape:
                raise InputError(
                    f"prediction of {m} for {subject} has shape {seg.shape}, truth has {truth.shape}"
                )
            segs[m] = seg
        volumes = {m: _volumes(segs[m], labels, voxel_mm3) for m in members}
        if truth is not None:
            truth_volume = _volumes(truth, labels, voxel_mm3)
            rows["truth"] += [{"subject": subject, "label": int(lab), "truth_volume_mm3": v}
                              for lab, v in zip(labels, truth_volume, strict=True)]  # fmt: skip
        for m in members:
            d = dice_per_label(segs[m], truth, labels) if truth is not None else None
            for i in range(len(labels)):
                base = {"member": m, "factor": member_factor(m), "subject": subject} | region_cols(
                    i
                )
                rows["vol"].append(base | {"volume_mm3": volumes[m][i]})
                if d is not None:
                    rows["dice"].append(base | {"dice": d[i]})
        base_dice = dice_per_label(segs[BASELINE], truth, labels) if truth is not None else None
        for factor, names_f in factors.items():
            stack = np.stack([segs[m] for m in names_f])
            if len(names_f) >= 2:
                pairs = pairwise_dice(stack, labels)
                mpd = min_over_pairs(pairs)
                mmd = (
                    stability.matched_min_dice(pairs, subsets[factor])
                    if factor in subsets else np.full(len(labels), np.nan)
                )  # fmt: skip
                vbits = significant_bits(
                    np.stack([volumes[m] for m in names_f]), volumes[BASELINE], error="relative"
                )
                for i in range(len(labels)):
                    key = {"factor": factor, "subject": subject} | region_cols(i)
                    rows["minpd"].append(key | {
                        "n_members": len(names_f), "min_dice": mpd[i], "matched_size": matched,
                        "matched_min_dice": mmd[i],
                    })  # fmt: skip
                    rows["volbits"].append(key | {"sig_bits": vbits[i]})
            if truth is not None:
                dm = dice_per_label(_majority_vote(stack), truth, labels)
                for i in range(len(labels)):
                    key = {"factor": factor, "subject": subject} | region_cols(i)
                    rows["major"].append(
                        key | {"dice_majority": dm[i], "dice_baseline": base_dice[i]}
                    )
            if entropy_maps:
                entropy = catalogue.ENTROPY_MAP.path(out, factor=factor, subject=subject)
                _save_entropy(entropy, stack, affine)
            prob = _prob_bits(ens, names_f, BASELINE, subject)
            if prob is not None:
                rows["probbits"].append({"factor": factor, "subject": subject} | prob)

    tables = {
        catalogue.VOLUMES: pd.DataFrame(rows["vol"]),
        catalogue.DICE_TO_TRUTH: _frame(rows["dice"], catalogue.DICE_TO_TRUTH),
        catalogue.MIN_PAIRWISE_DICE: _frame(rows["minpd"], catalogue.MIN_PAIRWISE_DICE),
        catalogue.MAJORITY_VOTE: pd.DataFrame(rows["major"]),
        catalogue.VOLUME_SIG_BITS: pd.DataFrame(rows["volbits"]),
    }
    if rows["probbits"]:
        tables[catalogue.PROB_SIG_BITS] = pd.DataFrame(rows["probbits"])
    summary = region_summary(
        tables[catalogue.MIN_PAIRWISE_DICE], tables[catalogue.DICE_TO_TRUTH],
        pd.DataFrame(rows["truth"]),
    )  # fmt: skip
    tables[catalogue.REGION_SUMMARY] = summary
    indices = stability.bootstrap_indices(len(subjects), N_BOOT, rng)
    tables[catalogue.STABILITY_SUMMARY] = stability_summary(
        tables[catalogue.MIN_PAIRWISE_DICE], tables[catalogue.DICE_TO_TRUTH], subjects, indices
    )
    tables[catalogue.FACTOR_CORRELATION] = factor_correlation(summary)
    if not rows["dice"]:  # no subject has a ground truth: no tables against it
        del tables[catalogue.DICE_TO_TRUTH], tables[catalogue.MAJORITY_VOTE]
    for artifact, frame in tables.items():
        run.write_table(artifact, frame)
    _figures(out, summary)
    run.finish(
        subjects=subjects, members=members, factors=sorted(factors),
        n_members={f: len(m) for f, m in sorted(factors.items())}, matched_size=matched,
        bootstrap={"resamples": N_BOOT, "seed": seed, "unit": "subject", "level": 0.95},
    )  # fmt: skip
    return out


def _frame(rows: list[dict], artifact) -> pd.DataFrame:
    """The rows as a table; with no rows, an empty table with the artifact's columns."""
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(artifact.columns))


def majority_vote(stack: np.ndarray) -> np.ndarray:
    """Voxel-wise most frequent label of a (M, ...) stack (ties: the smallest label)."""
    return _majority_vote(stack)


def _majority_vote(stack: np.ndarray) -> np.ndarray:
    values = np.unique(stack)
    counts = np.stack([(stack == v).sum(axis=0) for v in values])
    return values[np.argmax(counts, axis=0)].astype(np.int32)


def _save_entropy(path: Path, stack: np.ndarray, affine) -> None:
    import nibabel as nib

    from harness.runs import atomic_path

    with atomic_path(path) as tmp:
        nib.save(nib.Nifti1Image(label_entropy(stack).astype(np.float32), affine), str(tmp))


def _prob_bits(ens: Path, members: list[str], baseline: str, subject: str) -> dict | None:
    paths = [probabilities_path(ens, m, subject) for m in members]
    ref_path = probabilities_path(ens, baseline, subject)
    if len(members) < 2 or not ref_path.exists() or not all(p.exists() for p in paths):
        return None
    samples = np.stack([np.load(p, allow_pickle=False) for p in paths]).astype(np.float64)
    reference = np.load(ref_path, allow_pickle=False).astype(np.float64)
    bits = significant_bits(samples, reference)
    bits = bits[np.isfinite(bits)]
    return {"sig_bits_median": float(np.median(bits)), "sig_bits_mean": float(np.mean(bits))}


def region_summary(
    min_pd: pd.DataFrame, dice_truth: pd.DataFrame, truth_volumes: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per factor and region, means over subjects: minimum pairwise Dice (all members and at
    the matched size), members' Dice to truth, and the region's true volume."""
    keys = ["factor", "label", "region", "kind"]
    stab = min_pd.groupby(keys, as_index=False).agg(
        n_members=("n_members", "first"), mean_min_dice=("min_dice", "mean"),
        mean_matched_min_dice=("matched_min_dice", "mean"),
    )  # fmt: skip
    acc = (
        dice_truth.groupby(keys, as_index=False)["dice"]
        .mean()
        .rename(columns={"dice": "mean_dice_to_truth"})
    )
    if len(acc):
        out = acc.merge(stab, on=keys, how="left")
    else:  # no ground truth: the stability columns only
        out = stab.assign(mean_dice_to_truth=np.nan)[
            [*keys, "mean_dice_to_truth", *stab.columns[4:]]
        ]
    if truth_volumes is not None and len(truth_volumes):
        size = truth_volumes.groupby("label", as_index=False)["truth_volume_mm3"].mean()
        out = out.merge(size, on="label", how="left")
    return out


def _kinds(table: pd.DataFrame) -> list[str]:
    return ["all", *sorted(table["kind"].unique())]


def _matrix(frame: pd.DataFrame, column: str, subjects: list[str]) -> np.ndarray:
    """(S, L) values of ``column``, subjects in ``subjects`` order."""
    pivot = frame.pivot_table(index="subject", columns="label", values=column, dropna=False)
    return pivot.reindex(subjects).to_numpy(float)


def stability_summary(
    min_pd: pd.DataFrame, dice_truth: pd.DataFrame, subjects: list[str], indices: np.ndarray
) -> pd.DataFrame:
    """Median over regions of per-region subject means, with bootstrap intervals over subjects,
    per factor and tissue kind: stability at full and matched size, and Dice to truth."""
    rows = []
    for (factor, kind), sub in _by_factor_kind(min_pd):
        truth = dice_truth[(dice_truth["factor"] == factor) & dice_truth["label"].isin(
            sub["label"].unique())]  # fmt: skip
        truth = truth.groupby(["subject", "label"], as_index=False)["dice"].mean()
        truth = truth if len(truth) else None  # no ground truth: NaN below
        row = {
            "factor": factor, "kind": kind, "n_members": int(sub["n_members"].iloc[0]),
            "matched_size": int(sub["matched_size"].iloc[0]), "n_subjects": len(subjects),
            "n_regions": int(sub["label"].nunique()),
        }  # fmt: skip
        for name, frame, column in (
            ("min_dice", sub, "min_dice"),
            ("matched_min_dice", sub, "matched_min_dice"),
            ("dice_to_truth", truth, "dice"),
        ):
            if frame is None:
                row |= {name: np.nan, f"{name}_low": np.nan, f"{name}_high": np.nan}
                continue
            value, low, high = stability.bootstrap_region_median(
                _matrix(frame, column, subjects), indices
            )
            row |= {name: value, f"{name}_low": low, f"{name}_high": high}
        rows.append(row)
    return pd.DataFrame(rows)


def _by_factor_kind(min_pd: pd.DataFrame):
    for factor, table in min_pd.groupby("factor", sort=True):
        for kind in _kinds(table):
            yield (factor, kind), table if kind == "all" else table[table["kind"] == kind]


def factor_correlation(summary: pd.DataFrame) -> pd.DataFrame:
    """Between factors, Pearson r of per-region instability (1 - mean minimum pairwise Dice at
    the matched size) and its partial correlation controlling for log region size."""
    columns = ["factor_a", "factor_b", "kind", "n_members_a", "n_members_b", "pearson_r",
               "partial_r", "n_regions"]  # fmt: skip
    rows = []
    value = "mean_matched_min_dice"
    if value not in summary or summary[value].isna().all():
        value = "mean_min_dice"
    table = summary.dropna(subset=[value])
    factors = sorted(set(table["factor"]) - {BASELINE})
    count = table.groupby("factor")["n_members"].first() if "n_members" in table else {}
    for a, b in combinations(factors, 2):
        for kind in _kinds(table):
            sub = table if kind == "all" else table[table["kind"] == kind]
            pivot = sub.pivot_table(index="label", columns="factor", values=value)
            if a not in pivot or b not in pivot:
                continue
            pair = pivot[[a, b]].dropna()
            r = partial = float("nan")
            if len(pair) >= 3:
                r = stability.pearson(1 - pair[a], 1 - pair[b])
                if "truth_volume_mm3" in sub and len(pair) >= MIN_PARTIAL_REGIONS:
                    size = sub.groupby("label")["truth_volume_mm3"].first().reindex(pair.index)
                    if (size > 0).all():
                        partial = stability.partial_correlation(
                            1 - pair[a], 1 - pair[b], np.log(size.to_numpy(float))
                        )
            rows.append({
                "factor_a": a, "factor_b": b, "kind": kind,
                "n_members_a": int(count.get(a, 0)), "n_members_b": int(count.get(b, 0)),
                "pearson_r": r, "partial_r": partial, "n_regions": len(pair),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _figures(out: Path, summary: pd.DataFrame) -> None:
    from harness.plotting import new_figure
    from harness.runs import atomic_write_bytes

    catalogue.STABILITY_FIGURE.path(out).parent.mkdir(parents=True, exist_ok=True)
    table = summary.dropna(subset=["mean_min_dice"])
    if table.empty:
        return
    pivot = table.pivot_table(index="region", columns="factor", values="mean_min_dice").sort_values(
        by=list(table["factor"].unique())[0]
    )
    fig, ax = new_figure(figsize=(8, max(3, 0.18 * len(pivot))))
    pivot.plot.barh(ax=ax, width=0.8)
    ax.set_xlabel("mean minimum pairwise Dice (stability)")
    ax.set_xlim(0, 1)
    fig.tight_layout()
    atomic_write_bytes(catalogue.STABILITY_FIGURE.path(out), _png(fig))
    factors = list(pivot.columns)
    if len(factors) >= 2:
        fig, ax = new_figure(figsize=(4.5, 4.5))
        ax.scatter(1 - pivot[factors[0]], 1 - pivot[factors[1]], s=12)
        ax.set_xlabel(f"instability, {factors[0]}")
        ax.set_ylabel(f"instability, {factors[1]}")
        fig.tight_layout()
        atomic_write_bytes(catalogue.INSTABILITY_SCATTER.path(out), _png(fig))


def _png(fig) -> bytes:
    from harness.plotting import png_bytes

    return png_bytes(fig, dpi=110)
