"""Wide subject tables as users have them: declared features, metadata columns, ICV from the table.

A wide table has one row per subject and one column per measure: FreeSurfer's
``asegstats2table`` / ``aparcstats2table`` output (first column ``Measure:volume`` or
``lh.aparc.volume``, eTIV and ratio columns mixed in), a BIDS ``participants.tsv``
(``participant_id``, ``age``, ``sex``, ...), or any CSV/TSV. Features are never guessed from
"every numeric column": they are the columns named like FreeSurfer regions
(:mod:`harness.brainage.regions`), or the columns a user declares; every other numeric column is
excluded and reported with its reason.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.brainage.regions import ColumnRole, classify_column, icv_column
from harness.errors import InputError

#: subject-id column names tried, in order, when none is given
SUBJECT_COLUMNS = ("subject", "participant_id", "subject_id", "sub_id", "Subject", "ID", "id")
#: first-column headers of asegstats2table / aparcstats2table (their values are subject ids)
_FREESURFER_ID = re.compile(r"^(Measure:\w+|[lr]h\.aparc[\w.]*\.\w+)$")


def normalise_id(subject: object) -> str:
    """Subject id without a leading ``sub-`` (BIDS) so tables and participants files match."""
    text = str(subject).strip()
    return text[4:] if text.startswith("sub-") else text


def _separator(path: Path) -> str:
    with path.open(errors="replace") as handle:
        header = handle.readline()
    if "\t" in header:
        return "\t"
    if "," in header:
        return ","
    if " " in header.strip():
        return r"\s+"  # asegstats2table --delimiter space
    return "," if path.suffix.lower() == ".csv" else "\t"


def read_delimited(path: str | Path, what: str) -> pd.DataFrame:
    """Read a tab-, comma- or space-separated table, or raise :class:`InputError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    try:
        return pd.read_csv(path, sep=_separator(path))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {path} is not a readable table: {exc}") from None


@dataclass(frozen=True)
class TableColumns:
    """Names of the metadata columns (None: found by the documented defaults).

    Parameters
    ----------
    subject : str, optional
        Subject ids; default the asegstats2table/aparcstats2table first column, else the first
        of :data:`SUBJECT_COLUMNS` present.
    age : str
        Chronological age in years.
    site, sex : str, optional
        Metadata kept, reported and usable for stratification; default ``site`` / ``sex`` when
        present.
    icv : str, optional
        Intracranial volume; default the first of
        :data:`harness.brainage.regions.ICV_COLUMNS` present.
    """

    subject: str | None = None
    age: str = "age"
    site: str | None = None
    sex: str | None = None
    icv: str | None = None


def parse_column_list(text: str | None, what: str) -> tuple[str, ...] | None:
    """``COLS`` (comma-separated names or glob patterns) or ``FILE`` (one per line, ``#`` comments)."""
    if text is None:
        return None
    path = Path(str(text))
    if path.is_file():
        lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
        names = [line for line in lines if line]
    else:
        names = [part.strip() for part in str(text).split(",") if part.strip()]
    if not names:
        raise InputError(f"{what} must name at least one column (COLS or FILE), got {text!r}")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class FeatureSpec:
    """How features are declared.

    Parameters
    ----------
    features : tuple of str, optional
        Feature columns (exact names or glob patterns such as ``lh_*_thickness``); None: the
        columns named like FreeSurfer regions.
    include : tuple of str
        Further columns (names or patterns) added as features, e.g. ``eTIV`` or ``sex``.
    """

    features: tuple[str, ...] | None = None
    include: tuple[str, ...] = ()

    @classmethod
    def parse(cls, features: str | None = None, include: str | None = None) -> FeatureSpec:
        """Build from the CLI strings ``--features COLS|FILE`` and ``--include-columns COLS|FILE``."""
        return cls(
            parse_column_list(features, "features"),
            parse_column_list(include, "include_columns") or (),
        )


@dataclass(frozen=True)
class FeatureSelection:
    """Features chosen from a table and every numeric column left out, with the reason."""

    features: tuple[str, ...]
    excluded: dict[str, str] = field(default_factory=dict)

    def message(self) -> str:
        """One line for the user: how many features, and what was excluded and why."""
        text = f"{len(self.features)} feature columns"
        if not self.excluded:
            return text
        by_reason: dict[str, list[str]] = {}
        for column, reason in self.excluded.items():
            by_reason.setdefault(reason, []).append(column)
        parts = [f"{reason}: {', '.join(cols)}" for reason, cols in by_reason.items()]
        return f"{text}; not used as features ({'; '.join(parts)})"


_ROLE_LABELS = {"icv": "ICV"}


def _resolve(patterns: tuple[str, ...], columns: list[str], what: str, source: str) -> list[str]:
    chosen: list[str] = []
    unmatched = []
    for pattern in patterns:
        hits = [c for c in columns if c == pattern or fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            unmatched.append(pattern)
        chosen.extend(hits)
    if unmatched:
        raise InputError(
            f"{source}: {what} {unmatched} match no column; columns are {columns[:12]}"
            + (" ..." if len(columns) > 12 else "")
        )
    return list(dict.fromkeys(chosen))


def select_features(
    frame: pd.DataFrame, spec: FeatureSpec, roles: dict[str, str], source: str
) -> FeatureSelection:
    """Choose the feature columns of ``frame``.

    Parameters
    ----------
    frame : DataFrame
        The table.
    spec : FeatureSpec
        Declared features, or None for the FreeSurfer region names.
    roles : dict
        ``{column: role}`` of the metadata columns (``subject``, ``age``, ``site``, ``sex``,
        ``icv``); the age column is never a feature.
    source : str
        Name of the input, for messages.

    Raises
    ------
    InputError
        A declared column is missing or not numeric, the age column is declared as a feature, or
        no feature is left.
    """
    columns = [str(c) for c in frame.columns]
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c])]
    if spec.features is not None:
        chosen = _resolve(spec.features, columns, "features", source)
    else:
        chosen = [c for c in numeric if c not in roles and classify_column(c) is ColumnRole.REGION]
    chosen += [
        c for c in _resolve(spec.include, columns, "include_columns", source) if c not in chosen
    ]
    age = [c for c in chosen if roles.get(c) in ("age", "subject")]
    if age:
        raise InputError(
            f"{source}: column {age[0]!r} is the {roles[age[0]]} column and cannot be a feature"
        )
    not_numeric = [c for c in chosen if c not in numeric]
    if not_numeric:
        raise InputError(f"{source}: feature columns must be numeric; {not_numeric} are not")
    excluded = {
        c: f"{_ROLE_LABELS.get(roles[c], roles[c])} column"
        if c in roles
        else classify_column(c).value
        for c in numeric
        if c not in chosen
    }
    if not chosen:
        candidates = [c for c in excluded if c not in roles]
        raise InputError(
            f"{source}: no feature columns: none of the numeric columns {candidates[:12]} is "
            "a FreeSurfer region name (aseg/aparc spellings); declare features with "
            "--features COLS|FILE or add columns with --include-columns COLS"
        )
    return FeatureSelection(tuple(chosen), excluded)


def subject_column(frame: pd.DataFrame, given: str | None, source: str) -> str:
    """The subject-id column: ``given``, the FreeSurfer first column, or a conventional name."""
    columns = [str(c) for c in frame.columns]
    if given is not None:
        if given not in columns:
            raise InputError(f"{source}: subject_column {given!r} not in columns {columns[:12]}")
        return given
    if columns and _FREESURFER_ID.match(columns[0]):
        return columns[0]
    for name in SUBJECT_COLUMNS:
        if name in columns:
            return name
    raise InputError(
        f"{source} needs a subject id column named one of {list(SUBJECT_COLUMNS)} (or an "
        f"asegstats2table/aparcstats2table first column), or --subject-column; "
        f"found {columns[:8]}"
    )


def index_by_subject(frame: pd.DataFrame, given: str | None, source: str) -> pd.DataFrame:
    """``frame`` indexed by normalised subject id (unique), the id column dropped."""
    column = subject_column(frame, given, source)
    ids = frame[column].map(normalise_id)
    if ids.duplicated().any():
        raise InputError(
            f"{source}: subject ids must be unique, duplicated {sorted(set(ids[ids.duplicated()]))[:5]}"
        )
    return frame.drop(columns=[column]).set_index(pd.Index(ids.to_numpy(), name="subject"))


def _join(tables: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Join tables of the same subjects column-wise; a column in several must agree."""
    name0, joined = tables[0]
    for name, frame in tables[1:]:
        if set(frame.index) != set(joined.index):
            diff = sorted(set(frame.index) ^ set(joined.index))[:5]
            raise InputError(
                f"tables {name0} and {name} must have the same subjects; differ in {diff}"
            )
        frame = frame.reindex(joined.index)
        for column in [c for c in frame.columns if c in joined.columns]:
            if not _same(joined[column], frame[column]):
                raise InputError(
                    f"column {column!r} is in {name0} and {name} with different values; "
                    "rename or drop one"
                )
        joined = joined.join(frame[[c for c in frame.columns if c not in joined.columns]])
    return joined


def _same(a: pd.Series, b: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        return bool(
            np.allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=0, equal_nan=True)
        )
    return bool((a.astype(str) == b.astype(str)).all())


def read_wide(
    paths, participants: str | Path | None, columns: TableColumns, source: str
) -> pd.DataFrame:
    """Read one or more wide tables (joined on subject) and an optional participants file.

    Returns the joined frame indexed by normalised subject id; the participants' columns are
    added for the table's subjects (shared columns must agree).
    """
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    tables = [
        (str(p), index_by_subject(read_delimited(p, "table"), columns.subject, str(p)))
        for p in paths
    ]
    frame = _join(tables)
    if participants is not None:
        people = index_by_subject(
            read_delimited(participants, "participants table"), None, str(participants)
        )
        missing = [s for s in frame.index if s not in people.index]
        if missing:
            raise InputError(
                f"{source}: every subject needs a row in {participants}; missing for "
                f"{len(missing)} subject(s), e.g. {missing[:5]}"
            )
        frame = _join([(source, frame), (str(participants), people.reindex(frame.index))])
    return frame


def metadata_roles(
    frame: pd.DataFrame, columns: TableColumns, source: str, require_age: bool = True
) -> dict[str, str]:
    """``{column: role}`` of the age, site, sex and ICV columns present in ``frame``."""
    present = [str(c) for c in frame.columns]
    if require_age and columns.age not in present:
        raise InputError(
            f"{source}: age column {columns.age!r} not found (set --age-column, or give a "
            f"participants file); columns are {present[:12]}"
        )
    roles = {columns.age: "age"} if columns.age in present else {}
    for role, given in (("site", columns.site), ("sex", columns.sex)):
        if given is not None and given not in present:
            if not require_age:
                continue  # a member table: metadata lives in the participants file
            raise InputError(f"{source}: {role}_column {given!r} not in columns {present[:12]}")
        name = given if given is not None else (role if role in present else None)
        if name is not None:
            roles[name] = role
    if columns.icv is not None and columns.icv not in present:
        raise InputError(f"{source}: icv_column {columns.icv!r} not in columns {present[:12]}")
    icv = columns.icv or icv_column(present)
    if icv is not None:
        roles.setdefault(icv, "icv")
    return roles


def finite_column(
    frame: pd.DataFrame, column: str, source: str, positive: bool = False
) -> np.ndarray:
    """``frame[column]`` as floats; :class:`InputError` naming the subjects where it is not finite."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | ((values <= 0) if positive else False)
    if bad.any():
        rule = "a finite positive number" if positive else "a finite number"
        raise InputError(
            f"{source}: {column} must be {rule} for every subject, not for "
            f"{list(frame.index[bad])[:5]}"
        )
    return values
