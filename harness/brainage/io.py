"""Readers for brain-age inputs, all ending in one validated :class:`BrainAgeData`.

Four sources are accepted:

* one wide table (or several joined on subject), e.g. FreeSurfer's ``asegstats2table`` output,
  with features declared (:mod:`harness.brainage.tables`): :func:`read_table`;
* an ensemble directory (``ENS/analysis/volumes.tsv`` per docs/CONTRACTS.md), ages from a
  ``participants.tsv`` given explicitly or found through ``ENS/manifest.json`` ``config.cohort``;
* plain tables, one TSV/CSV per member (rows subjects, columns regions, plus a subject id column);
* FreeSurfer/FastSurfer ``aseg.stats`` files, one per member per subject.

Shape letters: M members (baseline first), S subjects, R regions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from harness.brainage.tables import (
    SUBJECT_COLUMNS,
    FeatureSpec,
    TableColumns,
    finite_column,
    index_by_subject,
    metadata_roles,
    normalise_id,
    read_delimited,
    read_wide,
    select_features,
)
from harness.errors import InputError
from harness.runs import BASELINE, catalogue
from harness.runs.layout import analysis_dir

ETIV_KEYS = ("EstimatedTotalIntraCranialVol", "eTIV")
ASEG_CANDIDATES = ("aseg.stats", "stats/aseg.stats")


@dataclass(frozen=True)
class BrainAgeData:
    """Regional volumes of every member for every subject, with ages.

    Attributes
    ----------
    members : tuple of str
        Member names, ``"baseline"`` first.
    subjects : tuple of str
        Subject ids, in the order of ``ages`` and of axis 1 of ``volumes``.
    regions : tuple of str
        Region names, axis 2 of ``volumes``.
    volumes : ndarray, shape (M, S, R)
        Volumes in mm^3.
    ages : ndarray, shape (S,)
        Chronological ages in years.
    etiv : ndarray, shape (M, S), optional
        Estimated total intracranial volume per member and subject (aseg.stats eTIV measure or
        a table's ICV column), else None.
    metadata : DataFrame, optional
        Per-subject metadata indexed like ``subjects``: columns ``site`` and/or ``sex`` (strings).
    icv_source : str, optional
        Where ``etiv`` came from (``"aseg.stats eTIV measure"`` or ``"column eTIV"``).
    excluded : dict
        Numeric input columns not used as features, with the reason (wide tables).
    """

    members: tuple[str, ...]
    subjects: tuple[str, ...]
    regions: tuple[str, ...]
    volumes: np.ndarray
    ages: np.ndarray
    etiv: np.ndarray | None = None
    metadata: pd.DataFrame | None = None
    icv_source: str | None = None
    excluded: dict = field(default_factory=dict)

    @property
    def perturbed_members(self) -> tuple[str, ...]:
        """Members other than the baseline."""
        return self.members[1:]

    def select_members(self, count: int | None) -> BrainAgeData:
        """Keep the baseline and the first ``count`` perturbed members (in name order)."""
        if count is None or count >= len(self.perturbed_members):
            return self
        if count < 1:
            raise InputError(f"max_members must be >= 1, got {count!r}")
        keep = slice(0, count + 1)
        etiv = None if self.etiv is None else self.etiv[keep]
        return replace(self, members=self.members[keep], volumes=self.volumes[keep], etiv=etiv)


_normalise_id = normalise_id
_read_delimited = read_delimited


def read_participants(path: str | Path, age_column: str = "age") -> pd.Series:
    """Read ``participants.tsv`` (or .csv) and return ages indexed by normalised subject id.

    Parameters
    ----------
    path : path-like
        Table with columns ``participant_id`` and ``age`` (``sex`` and ``group`` are optional).
    age_column : str
        Name of the age column.

    Returns
    -------
    pandas.Series
        Age in years, indexed by subject id without a ``sub-`` prefix.
    """
    path = Path(path)
    frame = _read_delimited(path, "participants table")
    id_column = next((c for c in SUBJECT_COLUMNS if c in frame.columns), None)
    if id_column is None or age_column not in frame.columns:
        raise InputError(
            f"participants table {path} must have columns participant_id and {age_column} "
            f"(or another id column of {list(SUBJECT_COLUMNS)}); found {list(frame.columns)}"
        )
    ids = frame[id_column].map(_normalise_id)
    if ids.duplicated().any():
        raise InputError(
            f"participants table {path}: {id_column} must be unique, "
            f"duplicated {sorted(set(ids[ids.duplicated()]))[:5]}"
        )
    ages = pd.to_numeric(frame[age_column], errors="coerce")
    bad = ids[~np.isfinite(ages.to_numpy(dtype=float))]
    if len(bad):
        raise InputError(
            f"participants table {path}: {age_column} must be a finite number for every "
            f"participant, missing or invalid for {list(bad)[:5]}"
        )
    return pd.Series(ages.to_numpy(dtype=float), index=ids.to_numpy(), name="age")


def build_dataset(
    long: pd.DataFrame, ages: pd.Series, etiv: pd.DataFrame | None = None, source: str = "input"
) -> BrainAgeData:
    """Validate a long table of volumes and pivot it into :class:`BrainAgeData`.

    Parameters
    ----------
    long : DataFrame
        Columns ``member``, ``subject``, ``region``, ``volume``.
    ages : Series
        Ages indexed by normalised subject id (see :func:`read_participants`).
    etiv : DataFrame, optional
        Columns ``member``, ``subject``, ``etiv``.
    source : str
        Name of the input, used in error messages.
    """
    long = long.assign(
        member=long["member"].astype(str),
        subject=long["subject"].map(_normalise_id),
        region=long["region"].astype(str),
        volume=pd.to_numeric(long["volume"], errors="coerce"),
    )
    members = sorted(set(long["member"]))
    if BASELINE not in members:
        raise InputError(
            f"{source}: a member named {BASELINE!r} (the unperturbed model) is required; "
            f"found members {members[:10]}"
        )
    perturbed = [m for m in members if m != BASELINE]
    if not np.isfinite(long["volume"].to_numpy(dtype=float)).all():
        bad = long[~np.isfinite(long["volume"].to_numpy(dtype=float))].iloc[0]
        raise InputError(
            f"{source}: volumes must be finite numbers; member {bad['member']!r} subject "
            f"{bad['subject']!r} region {bad['region']!r} has {bad['volume']!r}"
        )
    if (long["volume"] < 0).any():
        raise InputError(f"{source}: volumes must be non-negative, found {long['volume'].min()!r}")
    dup = long.duplicated(["member", "subject", "region"])
    if dup.any():
        row = long[dup].iloc[0]
        raise InputError(
            f"{source}: each (member, subject, region) must appear once; duplicated "
            f"({row['member']!r}, {row['subject']!r}, {row['region']!r})"
        )
    order = [BASELINE, *perturbed]
    subjects, regions = _check_same_grid(long, order, source)
    _check_ages(subjects, ages, source)
    cube = (
        long.set_index(["member", "subject", "region"])["volume"]
        .unstack("region")
        .reindex(columns=regions)
    )
    volumes = np.stack([cube.loc[m].reindex(subjects).to_numpy(dtype=float) for m in order])
    etiv_arr = None
    if etiv is not None:
        etiv = etiv.assign(subject=etiv["subject"].map(_normalise_id))
        table = etiv.pivot(index="member", columns="subject", values="etiv")
        etiv_arr = table.reindex(index=order, columns=subjects).to_numpy(dtype=float)
        if not (np.isfinite(etiv_arr).all() and (etiv_arr > 0).all()):
            etiv_arr = None  # eTIV must be present everywhere to be used
    return BrainAgeData(
        tuple(order),
        tuple(subjects),
        tuple(regions),
        volumes,
        ages.reindex(subjects).to_numpy(dtype=float),
        etiv_arr,
        icv_source=None if etiv_arr is None else "aseg.stats eTIV measure",
    )


def _check_same_grid(long: pd.DataFrame, order: list[str], source: str):
    base = long[long["member"] == BASELINE]
    subjects = sorted(set(base["subject"]))
    regions = sorted(set(base["region"]))
    expected = len(subjects) * len(regions)
    for member in order:
        rows = long[long["member"] == member]
        got_s, got_r = set(rows["subject"]), set(rows["region"])
        if got_s != set(subjects):
            diff = sorted(set(subjects) ^ got_s)[:5]
            raise InputError(
                f"{source}: every member must have the same subjects as {BASELINE!r}; "
                f"member {member!r} differs in {diff}"
            )
        if got_r != set(regions):
            diff = sorted(set(regions) ^ got_r)[:5]
            raise InputError(
                f"{source}: every member must have the same regions as {BASELINE!r}; "
                f"member {member!r} differs in {diff}"
            )
        if len(rows) != expected:
            raise InputError(
                f"{source}: member {member!r} must have a volume for every subject and region "
                f"({expected} rows), has {len(rows)}"
            )
    return subjects, regions


def _check_ages(subjects: Iterable[str], ages: pd.Series, source: str) -> None:
    missing = [s for s in subjects if s not in ages.index]
    if missing:
        raise InputError(
            f"{source}: every subject needs an age in participants.tsv; missing for "
            f"{len(missing)} subject(s), e.g. {missing[:5]}"
        )


# --- ensemble directory -------------------------------------------------------------------------


def find_participants(ensemble_dir: str | Path) -> Path:
    """Locate ``participants.tsv`` through ``ENS/manifest.json`` ``config.cohort``."""
    from harness.runs import read_manifest

    ensemble_dir = Path(ensemble_dir)
    manifest_path = catalogue.MANIFEST.path(ensemble_dir)
    cohort = (read_manifest(manifest_path).get("config") or {}).get("cohort")
    if not cohort:
        raise InputError(
            f"participants: {manifest_path} has no config.cohort; "
            "pass --participants explicitly"
        )
    for root in (Path(cohort), ensemble_dir / cohort):
        if catalogue.PARTICIPANTS.path(root).is_file():
            return catalogue.PARTICIPANTS.path(root)
    raise InputError(
        f"participants: no {catalogue.PARTICIPANTS.name} in cohort {cohort!r} named by the ensemble"
    )


def read_ensemble(
    ensemble_dir: str | Path, participants: str | Path | None = None, factor: str | None = None
) -> BrainAgeData:
    """Read ``ENS/analysis/volumes.tsv`` (member, factor, subject, label, region, volume_mm3).

    Parameters
    ----------
    ensemble_dir : path-like
        Ensemble directory.
    participants : path-like, optional
        ``participants.tsv``; found through the ensemble manifest when omitted.
    factor : str, optional
        Keep only perturbed members of this factor (the baseline is always kept).

    Notes
    -----
    Rows with label 0 (background) are dropped: background is not a brain region.
    """
    ensemble_dir = Path(ensemble_dir)
    path = catalogue.VOLUMES.path(analysis_dir(ensemble_dir))
    frame = _read_delimited(path, "ensemble volumes table")
    need = ["member", "factor", "subject", "label", "region", "volume_mm3"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InputError(f"{path} must have columns {need}; missing {missing}")
    frame = frame[pd.to_numeric(frame["label"], errors="coerce") != 0]
    if factor is not None:
        factors = sorted(set(frame.loc[frame["member"] != BASELINE, "factor"].astype(str)))
        if factor not in factors:
            raise InputError(f"factor must be one of {factors}, got {factor!r}")
        frame = frame[(frame["member"] == BASELINE) | (frame["factor"].astype(str) == factor)]
    ages = read_participants(participants or find_participants(ensemble_dir))
    long = frame.rename(columns={"volume_mm3": "volume"})[["member", "subject", "region", "volume"]]
    return build_dataset(long, ages, source=str(path))


# --- plain tables -------------------------------------------------------------------------------


def read_member_tables(
    tables_dir: str | Path,
    participants: str | Path,
    features: FeatureSpec | None = None,
    columns: TableColumns | None = None,
) -> BrainAgeData:
    """Read one table per member: ``DIR/<member>.tsv`` or ``DIR/<member>.csv``.

    Each table has one row per subject, a subject id column (see ``SUBJECT_COLUMNS``) and the
    feature columns (FreeSurfer region names, or those declared in ``features``; other numeric
    columns are excluded, see :func:`harness.brainage.tables.select_features`).
    ``DIR/baseline.tsv`` (or .csv) is the unperturbed model and may be the only table.
    ``participants.*`` files and the ``participants`` table itself are not member tables.
    An ICV column (``columns.icv``, else ``eTIV`` ...) in every member table gives ``etiv``.
    """
    features = features or FeatureSpec()
    columns = columns or TableColumns()
    tables_dir = Path(tables_dir)
    if not tables_dir.is_dir():
        raise InputError(f"tables must be a directory, got {str(tables_dir)!r}")
    participants = Path(participants)
    paths = sorted(
        p
        for p in tables_dir.iterdir()
        if p.suffix.lower() in (".tsv", ".csv")
        and p.stem != "participants"
        and p.resolve() != participants.resolve()
    )
    if not paths:
        raise InputError(f"tables: no .tsv or .csv member tables in {tables_dir}")
    pieces, etivs, excluded, icv_names = [], [], {}, set()
    for path in paths:
        frame = index_by_subject(read_delimited(path, "member table"), columns.subject, str(path))
        roles = metadata_roles(frame, columns, str(path), require_age=False)
        selection = select_features(frame, features, roles, str(path))
        excluded.update(selection.excluded)
        long = frame[list(selection.features)].rename_axis("subject").reset_index()
        long = long.melt(id_vars=["subject"], var_name="region", value_name="volume")
        pieces.append(long.assign(member=path.stem))
        icv = next((c for c, role in roles.items() if role == "icv"), None)
        icv_names.add(icv)
        values = frame[icv] if icv else pd.Series(np.nan, index=frame.index)
        etivs.append(pd.DataFrame({"member": path.stem, "subject": frame.index, "etiv": values}))
    ages = read_participants(participants, columns.age)
    data = build_dataset(
        pd.concat(pieces, ignore_index=True), ages, pd.concat(etivs), source=str(tables_dir)
    )
    icv_source = f"column {icv_names.pop()}" if len(icv_names) == 1 and None not in icv_names else None
    return replace(
        data,
        metadata=participant_metadata(participants, data.subjects, columns),
        icv_source=icv_source if data.etiv is not None else None,
        excluded=excluded,
    )


def participant_metadata(
    path: str | Path, subjects, columns: TableColumns | None = None
) -> pd.DataFrame | None:
    """Site and sex of ``subjects`` from a participants file, or None when it has neither."""
    frame = index_by_subject(read_delimited(path, "participants table"), None, str(path))
    roles = metadata_roles(frame, columns or TableColumns(), str(path))
    return _metadata(frame.reindex(list(subjects)), roles)


def _metadata(frame: pd.DataFrame, roles: dict[str, str]) -> pd.DataFrame | None:
    chosen = {role: column for column, role in roles.items() if role in ("site", "sex")}
    if not chosen:
        return None
    return pd.DataFrame(
        {role: frame[column].astype(str).to_numpy() for role, column in chosen.items()},
        index=pd.Index(frame.index, name="subject"),
    )


def read_table(
    paths,
    participants: str | Path | None = None,
    features: FeatureSpec | None = None,
    columns: TableColumns | None = None,
) -> BrainAgeData:
    """Read one wide table, or several joined on subject, as a single-member :class:`BrainAgeData`.

    Parameters
    ----------
    paths : path-like or list of path-like
        ``asegstats2table``/``aparcstats2table`` outputs, a BIDS participants-style table or any
        CSV/TSV (tab, comma or space separated), one row per subject.
    participants : path-like, optional
        A table of ages (and site/sex) per subject (``participant_id`` or another id column),
        joined on subject; not needed when the table has the age column itself.
    features : FeatureSpec, optional
        Declared features; default: the columns named like FreeSurfer regions.
    columns : TableColumns, optional
        Names of the subject, age, site, sex and ICV columns.

    Returns
    -------
    BrainAgeData
        One member (``baseline``), ``etiv`` from the ICV column when there is one, ``metadata``
        with site/sex, ``excluded`` naming every numeric column not used and why.
    """
    features = features or FeatureSpec()
    columns = columns or TableColumns()
    names = [str(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    source = " + ".join(names)
    return table_data(read_wide(paths, participants, columns, source), features, columns, source)


def table_data(
    frame: pd.DataFrame, features: FeatureSpec, columns: TableColumns, source: str
) -> BrainAgeData:
    """A single-member :class:`BrainAgeData` from a wide frame indexed by subject id."""
    roles = metadata_roles(frame, columns, source)
    selection = select_features(frame, features, roles, source)
    ages = finite_column(frame, columns.age, source)
    volumes = np.stack([finite_column(frame, c, source) for c in selection.features], axis=-1)
    if (volumes < 0).any():
        column = selection.features[int(np.argwhere(volumes < 0)[0, 1])]
        raise InputError(f"{source}: feature values must be non-negative; {column} has negatives")
    icv = next((c for c, role in roles.items() if role == "icv"), None)
    etiv = None if icv is None else finite_column(frame, icv, source, positive=True)[None]
    return BrainAgeData(
        members=(BASELINE,),
        subjects=tuple(map(str, frame.index)),
        regions=selection.features,
        volumes=volumes[None],
        ages=ages,
        etiv=etiv,
        metadata=_metadata(frame, roles),
        icv_source=None if icv is None else f"column {icv}",
        excluded=selection.excluded,
    )


# --- aseg.stats ---------------------------------------------------------------------------------


def parse_aseg_stats(path: str | Path) -> tuple[pd.DataFrame, dict[str, float]]:
    """Parse a FreeSurfer/FastSurfer ``aseg.stats`` file.

    Parameters
    ----------
    path : path-like
        File with a ``# ColHeaders ...`` line naming at least ``StructName`` and ``Volume_mm3``,
        whitespace-separated rows below it, and optional ``# Measure key, short, description,
        value, unit`` lines.

    Returns
    -------
    table : DataFrame
        One row per structure, columns as in ColHeaders (numeric where possible).
    measures : dict
        ``{key: value}`` and ``{short name: value}`` of every ``# Measure`` line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"aseg.stats file not found: {path}")
    headers: list[str] | None = None
    rows: list[list[str]] = []
    measures: dict[str, float] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            if body.startswith("ColHeaders"):
                headers = body.split()[1:]
            elif body.startswith("Measure"):
                measures.update(_parse_measure(body, path, number))
            continue
        if headers is None:
            raise InputError(f"{path}:{number}: data row before the '# ColHeaders' line")
        fields = stripped.split()
        if len(fields) != len(headers):
            raise InputError(
                f"{path}:{number}: row must have {len(headers)} fields like ColHeaders, "
                f"has {len(fields)}"
            )
        rows.append(fields)
    if headers is None or not {"StructName", "Volume_mm3"} <= set(headers):
        raise InputError(
            f"{path}: needs a '# ColHeaders' line naming StructName and Volume_mm3, got {headers}"
        )
    if not rows:
        raise InputError(f"{path}: no structure rows below '# ColHeaders'")
    table = pd.DataFrame(rows, columns=headers)
    for column in table.columns:
        if column != "StructName":
            table[column] = pd.to_numeric(table[column], errors="coerce")
    return table, measures


def _parse_measure(body: str, path: Path, number: int) -> dict[str, float]:
    parts = [p.strip() for p in body[len("Measure") :].split(",")]
    if len(parts) < 4:
        raise InputError(
            f"{path}:{number}: '# Measure' line must be 'key, short, description, value, unit'"
        )
    try:
        value = float(parts[3])
    except ValueError:
        raise InputError(
            f"{path}:{number}: measure value must be a number, got {parts[3]!r}"
        ) from None
    return {parts[0]: value, parts[1]: value}


def _aseg_files(member_dir: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for entry in sorted(member_dir.iterdir()):
        if entry.is_file() and entry.name.endswith(".stats"):
            subject = entry.name[: -len(".stats")]
            found[subject.removesuffix(".aseg").removesuffix("_aseg")] = entry
        elif entry.is_dir():
            for candidate in ASEG_CANDIDATES:
                if (entry / candidate).is_file():
                    found[entry.name] = entry / candidate
                    break
    return found


def read_aseg_dir(stats_dir: str | Path, participants: str | Path) -> BrainAgeData:
    """Read ``aseg.stats`` files laid out per member and subject.

    Accepted layouts (``<member>`` includes ``baseline``)::

        DIR/<member>/<subject>.stats
        DIR/<member>/<subject>/aseg.stats
        DIR/<member>/<subject>/stats/aseg.stats     (a FreeSurfer/FastSurfer subject directory)

    Volumes come from ``Volume_mm3`` per ``StructName``; eTIV from the
    ``EstimatedTotalIntraCranialVol`` (or ``eTIV``) measure when every file has it.
    """
    stats_dir = Path(stats_dir)
    if not stats_dir.is_dir():
        raise InputError(f"aseg_stats must be a directory, got {str(stats_dir)!r}")
    pieces, etivs = [], []
    for member_dir in sorted(p for p in stats_dir.iterdir() if p.is_dir()):
        files = _aseg_files(member_dir)
        if not files:
            raise InputError(f"aseg_stats: no *.stats or <subject>/aseg.stats in {member_dir}")
        for subject, path in files.items():
            table, measures = parse_aseg_stats(path)
            pieces.append(
                pd.DataFrame(
                    {
                        "member": member_dir.name,
                        "subject": subject,
                        "region": table["StructName"],
                        "volume": table["Volume_mm3"],
                    }
                )
            )
            etiv = next((measures[k] for k in ETIV_KEYS if k in measures), np.nan)
            etivs.append({"member": member_dir.name, "subject": subject, "etiv": etiv})
    if not pieces:
        raise InputError(f"aseg_stats: no member directories in {stats_dir}")
    ages = read_participants(participants)
    return build_dataset(
        pd.concat(pieces, ignore_index=True), ages, pd.DataFrame(etivs), source=str(stats_dir)
    )
