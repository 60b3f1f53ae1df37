"""Agreement analysis of an ensemble's segmentations (``harness ensemble analyze``).

Inputs: ``ENS/members/<member>/predictions/<subject>_seg.nii.gz`` (integer label maps on the cohort's
grid, FreeSurfer ids) and the cohort (ground truth ``*_dseg.nii.gz``, ``labels.tsv``). Optionally
``<subject>_prob.npy`` (float, shape (C, ...)) per member for significant bits of probabilities.

Outputs in ``ENS/analysis/`` (TSV unless noted):

- ``volumes.tsv`` — member, factor, subject, label, region, volume_mm3
- ``dice_to_truth.tsv`` — member, factor, subject, label, region, dice
- ``min_pairwise_dice.tsv`` — factor, subject, label, region, kind, min_dice (anchor stability metric)
- ``majority_vote.tsv`` — factor, subject, label, region, dice_majority, dice_baseline
- ``volume_sig_bits.tsv`` — factor, subject, label, region, sig_bits (members vs baseline volume)
- ``prob_sig_bits.tsv`` — factor, subject, sig_bits_median, sig_bits_mean (when probabilities exist)
- ``region_summary.tsv`` — factor, label, region, kind, mean_min_dice, mean_dice_to_truth
- ``factor_correlation.tsv`` — factor_a, factor_b, kind, pearson_r, n_regions (per-region instability)
- ``entropy_<factor>_<subject>.nii.gz`` — voxel-wise label entropy (bits)
- ``figures/*.png`` — per-region minimum Dice per factor; instability of one factor vs another
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from harness.ensemble.layout import (
    BASELINE,
    analysis_dir,
    list_members,
    member_factor,
    prediction_path,
)
from harness.errors import InputError
from harness.metrics import (
    dice_per_label,
    label_entropy,
    min_pairwise_dice,
    significant_bits,
)
from harness.store import RunDir


def _load_labels(cohort: Path) -> pd.DataFrame:
    path = Path(cohort) / "labels.tsv"
    if not path.exists():
        raise InputError(f"cohort {cohort} has no labels.tsv")
    table = pd.read_csv(path, sep="\t")
    missing = {"label", "name", "kind"} - set(table.columns)
    if missing:
        raise InputError(f"{path} lacks columns {sorted(missing)}")
    return table[table["kind"] != "background"].reset_index(drop=True)


def _truth_path(cohort: Path, subject: str) -> Path:
    return Path(cohort) / subject / "anat" / f"{subject}_dseg.nii.gz"


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
        folder = Path(ens) / "members" / member / "predictions"
        sets.append({p.name[: -len("_seg.nii.gz")] for p in folder.glob("*_seg.nii.gz")})
    common = sorted(set.intersection(*sets)) if sets else []
    if not common:
        raise InputError(f"no subject has predictions from every member in {ens}")
    return common


def _volumes(seg, labels, voxel_mm3) -> np.ndarray:
    counts = np.array([(seg == lab).sum() for lab in labels], dtype=np.float64)
    return counts * voxel_mm3


def analyze_ensemble(ens: str | Path, cohort: str | Path, *, entropy_maps: bool = True) -> Path:
    """Compute every agreement table of an ensemble; returns the analysis directory."""
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

    out = analysis_dir(ens)
    run = RunDir(out, kind="ensemble-analysis")
    run.start("harness ensemble analyze", {"ensemble": str(ens), "cohort": str(cohort)})
    rows = {k: [] for k in ("vol", "dice", "minpd", "major", "volbits", "probbits")}

    def region_cols(i):
        lab = int(labels[i])
        return {"label": lab, "region": names[lab], "kind": kinds[lab]}

    for subject in tqdm(subjects, desc="analyze", unit="subject", leave=False):
        truth, affine, voxel_mm3 = _load_seg(_truth_path(cohort, subject))
        segs = {}
        for m in members:
            seg, _, _ = _load_seg(prediction_path(ens, m, subject))
            if seg.shape != truth.shape:
                raise InputError(
                    f"prediction of {m} for {subject} has shape {seg.shape}, truth has {truth.shape}"
                )
            segs[m] = seg
        volumes = {m: _volumes(segs[m], labels, voxel_mm3) for m in members}
        for m in members:
            d = dice_per_label(segs[m], truth, labels)
            for i in range(len(labels)):
                base = {"member": m, "factor": member_factor(m), "subject": subject} | region_cols(
                    i
                )
                rows["vol"].append(base | {"volume_mm3": volumes[m][i]})
                rows["dice"].append(base | {"dice": d[i]})
        base_dice = dice_per_label(segs[BASELINE], truth, labels)
        for factor, names_f in factors.items():
            stack = np.stack([segs[m] for m in names_f])
            if len(names_f) >= 2:
                mpd = min_pairwise_dice(stack, labels)
                vbits = significant_bits(
                    np.stack([volumes[m] for m in names_f]), volumes[BASELINE], error="relative"
                )
                for i in range(len(labels)):
                    key = {"factor": factor, "subject": subject} | region_cols(i)
                    rows["minpd"].append(key | {"min_dice": mpd[i]})
                    rows["volbits"].append(key | {"sig_bits": vbits[i]})
            majority = _majority_vote(stack)
            dm = dice_per_label(majority, truth, labels)
            for i in range(len(labels)):
                key = {"factor": factor, "subject": subject} | region_cols(i)
                rows["major"].append(key | {"dice_majority": dm[i], "dice_baseline": base_dice[i]})
            if entropy_maps:
                _save_entropy(out / f"entropy_{factor}_{subject}.nii.gz", stack, affine)
            prob = _prob_bits(ens, names_f, BASELINE, subject)
            if prob is not None:
                rows["probbits"].append({"factor": factor, "subject": subject} | prob)

    tables = {
        "volumes.tsv": pd.DataFrame(rows["vol"]),
        "dice_to_truth.tsv": pd.DataFrame(rows["dice"]),
        "min_pairwise_dice.tsv": pd.DataFrame(rows["minpd"]),
        "majority_vote.tsv": pd.DataFrame(rows["major"]),
        "volume_sig_bits.tsv": pd.DataFrame(rows["volbits"]),
    }
    if rows["probbits"]:
        tables["prob_sig_bits.tsv"] = pd.DataFrame(rows["probbits"])
    tables["region_summary.tsv"] = region_summary(
        tables["min_pairwise_dice.tsv"], tables["dice_to_truth.tsv"]
    )
    tables["factor_correlation.tsv"] = factor_correlation(tables["region_summary.tsv"])
    for name, frame in tables.items():
        run.write_table(name, frame)
    _figures(out / "figures", tables["region_summary.tsv"])
    run.finish(subjects=subjects, members=members, factors=sorted(factors))
    return out


def _majority_vote(stack: np.ndarray) -> np.ndarray:
    values = np.unique(stack)
    counts = np.stack([(stack == v).sum(axis=0) for v in values])
    return values[np.argmax(counts, axis=0)].astype(np.int32)


def _save_entropy(path: Path, stack: np.ndarray, affine) -> None:
    import nibabel as nib

    from harness.store import atomic_path

    with atomic_path(path) as tmp:
        nib.save(nib.Nifti1Image(label_entropy(stack).astype(np.float32), affine), str(tmp))


def _prob_bits(ens: Path, members: list[str], baseline: str, subject: str) -> dict | None:
    paths = [Path(ens) / "members" / m / "predictions" / f"{subject}_prob.npy" for m in members]
    ref_path = Path(ens) / "members" / baseline / "predictions" / f"{subject}_prob.npy"
    if len(members) < 2 or not ref_path.exists() or not all(p.exists() for p in paths):
        return None
    samples = np.stack([np.load(p, allow_pickle=False) for p in paths]).astype(np.float64)
    reference = np.load(ref_path, allow_pickle=False).astype(np.float64)
    bits = significant_bits(samples, reference)
    bits = bits[np.isfinite(bits)]
    return {"sig_bits_median": float(np.median(bits)), "sig_bits_mean": float(np.mean(bits))}


def region_summary(min_pd: pd.DataFrame, dice_truth: pd.DataFrame) -> pd.DataFrame:
    """Mean over subjects of the per-region minimum pairwise Dice and Dice to truth, per factor."""
    keys = ["factor", "label", "region", "kind"]
    stab = (
        min_pd.groupby(keys, as_index=False)["min_dice"]
        .mean()
        .rename(columns={"min_dice": "mean_min_dice"})
    )
    acc = (
        dice_truth.groupby(keys, as_index=False)["dice"]
        .mean()
        .rename(columns={"dice": "mean_dice_to_truth"})
    )
    return acc.merge(stab, on=keys, how="left")


def factor_correlation(summary: pd.DataFrame) -> pd.DataFrame:
    """Pearson r between factors of per-region instability (1 - mean minimum pairwise Dice)."""
    rows = []
    table = summary.dropna(subset=["mean_min_dice"])
    factors = sorted(set(table["factor"]) - {BASELINE})
    for a, b in combinations(factors, 2):
        for kind in ["all", *sorted(table["kind"].unique())]:
            sub = table if kind == "all" else table[table["kind"] == kind]
            pivot = sub.pivot_table(index="label", columns="factor", values="mean_min_dice")
            if a not in pivot or b not in pivot:
                continue
            pair = pivot[[a, b]].dropna()
            r = (
                float(np.corrcoef(1 - pair[a], 1 - pair[b])[0, 1])
                if len(pair) >= 3
                else float("nan")
            )
            rows.append(
                {"factor_a": a, "factor_b": b, "kind": kind, "pearson_r": r, "n_regions": len(pair)}
            )
    return pd.DataFrame(rows, columns=["factor_a", "factor_b", "kind", "pearson_r", "n_regions"])


def _figures(folder: Path, summary: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.store import atomic_write_bytes

    folder.mkdir(parents=True, exist_ok=True)
    table = summary.dropna(subset=["mean_min_dice"])
    if table.empty:
        return
    pivot = table.pivot_table(index="region", columns="factor", values="mean_min_dice").sort_values(
        by=list(table["factor"].unique())[0]
    )
    fig, ax = plt.subplots(figsize=(8, max(3, 0.18 * len(pivot))))
    pivot.plot.barh(ax=ax, width=0.8)
    ax.set_xlabel("mean minimum pairwise Dice (stability)")
    ax.set_xlim(0, 1)
    fig.tight_layout()
    atomic_write_bytes(folder / "min_pairwise_dice.png", _png(fig))
    plt.close(fig)
    factors = list(pivot.columns)
    if len(factors) >= 2:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.scatter(1 - pivot[factors[0]], 1 - pivot[factors[1]], s=12)
        ax.set_xlabel(f"instability, {factors[0]}")
        ax.set_ylabel(f"instability, {factors[1]}")
        fig.tight_layout()
        atomic_write_bytes(folder / "instability_scatter.png", _png(fig))
        plt.close(fig)


def _png(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()
