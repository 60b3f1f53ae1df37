"""Stability reports: one self-contained HTML file plus a Markdown summary (``harness report``).

>>> html_path, md_path = build_report(["results/", "demo-out/"], "report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import InputError


def _as_list(paths) -> list:
    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)


def build_report(
    paths,
    out_html: str | os.PathLike,
    *,
    title: str = "harness stability report",
    now: datetime | None = None,
    skip_bad: bool = False,
    warnings: list[str] | None = None,
) -> tuple[Path, Path]:
    """Build ``out_html`` and ``report.md`` beside it from run directories, result roots or
    benchmark JSON files.

    Parameters
    ----------
    paths : path-like or list of path-like
        Inputs; every run directory (``manifest.json``) and pytest-benchmark JSON under them is used.
    out_html : path-like
        The HTML file to write (must end in ``.html``); ``report.md`` goes in the same folder.
    title : str
        Heading of the report.
    now : datetime, optional
        Time stamp printed in the report (default: the current UTC time; fixed in tests).
    skip_bad : bool
        Leave out run manifests that cannot be read (corrupt, unknown schema) instead of raising
        :class:`InputError` naming them.
    warnings : list, optional
        Filled with one line per manifest left out.

    Returns
    -------
    (Path, Path)
        The HTML and Markdown files written.
    """
    from harness.report.model import Report
    from harness.report.render import to_html, to_markdown_report
    from harness.report.sections import BUILDERS
    from harness.runs import atomic_write_text
    from harness.runs.catalogue import REPORT_MD
    from harness.store.db import load_results

    out_html = Path(out_html)
    if out_html.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"report output must end in .html, got {out_html.name!r}")
    paths = _as_list(paths)
    now = now or datetime.now(timezone.utc)
    with load_results(paths, skip_bad=skip_bad) as db:
        sections = [s for build in BUILDERS if (s := build(db)) is not None]
        if warnings is not None:
            warnings[:] = db.warnings
    report = Report(
        title=title,
        generated=now.strftime("%Y-%m-%d %H:%M UTC"),
        inputs=[str(p) for p in paths],
        sections=sections,
    )
    md_path = out_html.with_name(REPORT_MD.name)
    atomic_write_text(out_html, to_html(report))
    atomic_write_text(md_path, to_markdown_report(report, out_html.name))
    return out_html, md_path


__all__ = ["build_report"]
