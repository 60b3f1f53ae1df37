"""The README is the front door and docs/ the manual: links resolve, commands exist, it stays short.

These tests read the Markdown as text; each one fails on a concrete defect (a dead link, a
command the CLI does not have, a README that grew back into a manual, a set-up command that
drifted from CI's, prose about how the project was developed rather than what it does).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import click
import pytest

from harness.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_README_LINES = 250

# Pages written on other branches at the same time as this one. Until they are merged a link to
# them cannot resolve; once merged, delete this allowance (the test then checks them like any other).
PENDING_PAGES = frozenset(
    {
        "docs/containers.md",
        "docs/verificarlo.md",
        "docs/ensembles.md",
        "docs/brainage.md",
    }
)

# Phrases that describe how the project was built instead of what it does (case-insensitive,
# whole words): pointers to a design file outside the repository, and talk of who worked where.
FORBIDDEN_PHRASES = (
    r"design\.md §",
    r"this session",
    r"a session",
    r"was lent",
    r"device tool",
    r"development session",
    r"development machine",
    r"no GPU was available",
    r"no GPU here",
    r"this task",
)


def word_pattern(phrase: str) -> str:
    """``phrase`` as a regex that matches whole words only (no match inside a longer word)."""
    end = r"\b" if phrase[-1].isalnum() else ""
    return rf"\b{phrase}{end}"


FORBIDDEN = re.compile("|".join(map(word_pattern, FORBIDDEN_PHRASES)), re.IGNORECASE)

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
COMMAND_IN_CODE = re.compile(
    r"^(?:\$\s+)?(?:\S*/)?harness\s+([a-z][a-z0-9-]*)(?:\s+([a-z][a-z0-9-]*))?"
)


def doc_files() -> list[Path]:
    """README.md, CONTRIBUTING.md, every Markdown page under docs/ and the results' README."""
    pages = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [*pages, ROOT / "results/README.md"]


def strip_code(text: str) -> str:
    """Text outside fenced blocks and inline code, where links are live Markdown."""
    lines, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append(INLINE_CODE.sub("", line))
    return "\n".join(lines)


def code_snippets(text: str) -> list[str]:
    """Lines of fenced blocks and the content of inline code spans."""
    out, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            out.append(line.strip())
        else:
            out.extend(m.group(1).strip() for m in INLINE_CODE.finditer(line))
    return out


def links(path: Path) -> list[str]:
    """Relative link targets of one Markdown file (external and mail links left out)."""
    targets = [m.group(1) for m in LINK.finditer(strip_code(path.read_text()))]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading).strip().lower()
    text = "".join(c for c in text if c in " -" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Anchors of every heading of a Markdown file, with GitHub's -1, -2 suffixes on repeats."""
    seen: dict[str, int] = {}
    out = set()
    in_fence = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (m := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)):
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def resolve(source: Path, target: str) -> tuple[Path, str]:
    """The file a link points to and its #fragment ('' when none)."""
    file_part, _, fragment = target.partition("#")
    path = source if not file_part else (source.parent / file_part).resolve()
    return path, fragment


def relative(path: Path) -> str:
    return path.resolve().relative_to(ROOT).as_posix()


@pytest.mark.parametrize("page", doc_files(), ids=relative)
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        path, fragment = resolve(page, target)
        try:
            name = relative(path)
        except ValueError:
            broken.append(f"{target} (outside the repository)")
            continue
        if name in PENDING_PAGES:
            continue
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and path.suffix == ".md" and fragment not in anchors(path):
            broken.append(f"{target} (no heading with anchor #{fragment} in {name})")
    assert not broken, f"{relative(page)}: broken links: {broken}"


def test_every_doc_page_is_reachable_from_the_readme():
    reached, todo = set(), [README.resolve()]
    while todo:
        page = todo.pop()
        if page in reached or not page.exists():
            continue
        reached.add(page)
        todo.extend(p for p, _ in (resolve(page, t) for t in links(page)) if p.suffix == ".md")
    unreached = [relative(p) for p in doc_files() if p.resolve() not in reached]
    assert not unreached, f"pages no link path from README.md reaches: {unreached}"


def named_commands(text: str) -> list[tuple[str, str | None]]:
    """``(command, next word)`` for every ``harness <command>`` written as code."""
    found = []
    for snippet in code_snippets(text):
        for part in re.split(r"\s*(?:&&|\||;)\s*", snippet):
            if m := COMMAND_IN_CODE.match(part):
                found.append((m.group(1), m.group(2)))
    return found


@pytest.mark.parametrize("page", doc_files(), ids=relative)
def test_every_command_a_page_names_exists(page):
    commands = named_commands(page.read_text())
    if page == README:
        assert commands, "the README names no harness command"
    ctx = click.Context(cli)
    problems = []
    for name, sub in commands:
        if name not in COMMANDS:
            problems.append(f"harness {name}: not a command")
            continue
        command = cli.get_command(ctx, name)
        if isinstance(command, click.Group) and sub is not None and sub not in command.commands:
            problems.append(f"harness {name} {sub}: {name} has no sub-command {sub}")
    assert not problems, f"{relative(page)}: {problems}"


def test_readme_names_every_command():
    named = {name for name, _ in named_commands(README.read_text())}
    missing = sorted(set(COMMANDS) - named)
    assert not missing, f"commands the README's command table does not list: {missing}"


def test_readme_is_a_short_front_door():
    lines = README.read_text().count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines (at most {MAX_README_LINES})"


def test_readme_set_up_and_test_commands_are_the_ci_ones():
    ci = (ROOT / ".ci/run").read_text().splitlines()
    setup = [
        re.sub(r"\s+-q\b", "", line).strip()
        for line in ci
        if re.match(r"\s*(python3 -m venv|\.venv/bin/python -m pip install)", line)
    ]
    tests = [line.strip() for line in ci if re.match(r"\s*\.venv/bin/python -m pytest", line)]
    assert setup and tests, ".ci/run has no set-up or test line to compare with"
    readme = {re.sub(r"\s+#.*$", "", line) for line in code_snippets(README.read_text())}
    missing = [line for line in setup + tests if line not in readme]
    assert not missing, f"README lacks CI's set-up/test commands (without -q): {missing}"


@pytest.mark.parametrize("page", doc_files(), ids=relative)
def test_docs_describe_the_product_not_its_development(page):
    found = sorted({m.group(0) for m in FORBIDDEN.finditer(page.read_text())})
    assert not found, f"{relative(page)} mentions {found}"


def test_readme_keeps_the_report_screenshot():
    assert "docs/report-screenshot.png" in links(README)
    assert (ROOT / "docs/report-screenshot.png").exists()
