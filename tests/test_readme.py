import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_is_assembled_from_sections():
    result = subprocess.run([sys.executable, str(ROOT / "tools/build_readme.py"), "--check"])
    assert result.returncode == 0, "README.md is stale: run python tools/build_readme.py"
