"""Assemble README.md from docs/readme/head.md, docs/sections/*.md (in ORDER) and docs/readme/tail.md.

Run after editing any section: ``python tools/build_readme.py``. tests/test_readme.py fails when
README.md is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = [
    "perturb", "metrics", "kernels", "data", "models", "train", "ensemble", "introspect",
    "brainage", "store", "report", "demo",
]


def build() -> str:
    parts = [(ROOT / "docs/readme/head.md").read_text()]
    sections = ROOT / "docs/sections"
    known = {p.stem for p in sections.glob("*.md")}
    for name in ORDER + sorted(known - set(ORDER)):
        path = sections / f"{name}.md"
        if path.exists():
            parts.append(path.read_text())
    parts.append((ROOT / "docs/readme/tail.md").read_text())
    return "\n".join(p.rstrip() + "\n" for p in parts)


if __name__ == "__main__":
    text = build()
    if "--check" in sys.argv:
        sys.exit(0 if (ROOT / "README.md").read_text() == text else 1)
    (ROOT / "README.md").write_text(text)
